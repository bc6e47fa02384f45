"""Definitions and references of source files through tree-sitter grammar wheels.

Each grammar wheel ships a tags query (the one GitHub's code navigation uses): it marks
``@definition.*`` and ``@reference.*`` nodes and their ``@name``. On top of the tags we read, per
definition, its signature (the text before its body), its docstring (Python) or the comment block
right above it (other languages), its enclosing definition, and the start lines of its body's
statements, which are the places where a chunk may be cut without splitting a statement.
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

#: File suffix -> language name.
LANGUAGE_OF_SUFFIX = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
}
_WHEELS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}
_CONTAINER_KINDS = {"class", "interface", "module", "impl", "trait", "struct", "enum", "type", "object"}
_COMMENT_TYPES = {"comment", "line_comment", "block_comment"}
_MAX_SIGNATURE_CHARS = 400


@dataclass
class Definition:
    name: str
    kind: str  # class, function, method, interface, module, constant, ...
    start_line: int  # 1-based, inclusive
    end_line: int
    signature: str
    doc: str = ""
    parent: str | None = None  # qualified name of the enclosing definition
    cuts: list[int] = field(default_factory=list)  # lines where body statements start

    @property
    def qualified(self) -> str:
        return f"{self.parent}.{self.name}" if self.parent else self.name


@dataclass
class FileAnalysis:
    lang: str
    definitions: list[Definition]
    references: Counter[str]


def language_for(path: str) -> str | None:
    return LANGUAGE_OF_SUFFIX.get(Path(path).suffix.lower())


def _tags_query_text(lang: str) -> str:
    module = importlib.import_module(_WHEELS[lang][0])
    own = getattr(module, "TAGS_QUERY", None)
    if own is None:
        # tree-sitter-typescript keeps its tags in queries/tags.scm, and they only add TS-specific
        # patterns to the JavaScript ones, which the grammar also understands.
        own = (Path(module.__file__).parent / "queries" / "tags.scm").read_text(encoding="utf-8")
    if lang in ("typescript", "tsx"):
        own = importlib.import_module("tree_sitter_javascript").TAGS_QUERY + "\n" + own
    return own


@cache
def _language(lang: str) -> tuple[Any, Any]:
    import tree_sitter as ts

    module_name, attr = _WHEELS[lang]
    language = ts.Language(getattr(importlib.import_module(module_name), attr)())
    return language, ts.Query(language, _tags_query_text(lang))


_local = threading.local()  # parsers are not thread-safe; one per thread and language


def _parser(lang: str) -> Any:
    import tree_sitter as ts

    parsers = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    if lang not in parsers:
        parsers[lang] = ts.Parser(_language(lang)[0])
    return parsers[lang]


def _node_text(source: bytes, node: Any) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _body(node: Any) -> Any | None:
    body = node.child_by_field_name("body")
    if body is None and node.type in ("lexical_declaration", "variable_declaration", "variable_declarator"):
        # const f = () => {...}: the body belongs to the arrow function
        for child in node.named_children:
            found = _body(child) if child.type != "arrow_function" else child.child_by_field_name("body")
            if found is not None:
                return found
    return body


def _signature(source: bytes, node: Any, body: Any | None) -> str:
    end = body.start_byte if body is not None else node.end_byte
    text = source[node.start_byte : end].decode("utf-8", errors="replace")
    if body is None:
        text = text.split("\n", 1)[0]
    text = " ".join(text.split()).rstrip("{: ").strip()
    return text[:_MAX_SIGNATURE_CHARS]


def _python_docstring(source: bytes, body: Any | None) -> str:
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        raw = _node_text(source, first.named_children[0])
        return raw.strip("rRbBuU").strip("\"'").strip()
    return ""


def _comment_above(source: bytes, node: Any) -> str:
    lines: list[str] = []
    prev = node.prev_named_sibling
    expected_row = node.start_point[0]
    while prev is not None and prev.type in _COMMENT_TYPES and prev.end_point[0] >= expected_row - 1:
        lines.insert(0, _node_text(source, prev))
        expected_row = prev.start_point[0]
        prev = prev.prev_named_sibling
    cleaned = [ln.strip().lstrip("/*#!").rstrip("*/").strip() for text in lines for ln in text.splitlines()]
    return "\n".join(c for c in cleaned if c)


def _outer_statement(node: Any) -> Any:
    """The node whose lines a definition occupies: decorators and export wrappers included."""
    while node.parent is not None and node.parent.type in (
        "decorated_definition", "export_statement", "lexical_declaration", "variable_declaration",
    ):
        node = node.parent
    return node


def analyze(path: str, text: str, lang: str | None = None) -> FileAnalysis | None:
    """Definitions and reference counts of one file, or None for a language without a grammar."""
    lang = lang or language_for(path)
    if lang is None:
        return None
    source = text.encode("utf-8", errors="replace")
    tree = _parser(lang).parse(source)
    import tree_sitter as ts

    cursor = ts.QueryCursor(_language(lang)[1])
    found: dict[tuple[int, int], Definition] = {}
    references: Counter[str] = Counter()
    for _, captures in cursor.matches(tree.root_node):
        names = captures.get("name")
        if not names:
            continue
        name = _node_text(source, names[0])
        for capture, nodes in captures.items():
            if capture.startswith("reference."):
                references[name] += 1
            elif capture.startswith("definition."):
                node = nodes[0]
                kind = capture.split(".", 1)[1]
                outer = _outer_statement(node)
                key = (outer.start_byte, outer.end_byte)
                if key in found:
                    continue
                body = _body(node)
                doc = _python_docstring(source, body) if lang == "python" else _comment_above(source, outer)
                cuts = [c.start_point[0] + 1 for c in body.named_children] if body is not None else []
                found[key] = Definition(
                    name=name, kind=kind, start_line=outer.start_point[0] + 1, end_line=outer.end_point[0] + 1,
                    signature=_signature(source, node, body), doc=doc[:1000], cuts=cuts,
                )
    definitions = sorted(found.values(), key=lambda d: (d.start_line, -d.end_line))
    _link_parents(definitions)
    return FileAnalysis(lang=lang, definitions=definitions, references=references)


def _link_parents(definitions: list[Definition]) -> None:
    stack: list[Definition] = []
    for d in definitions:
        while stack and not (stack[-1].start_line <= d.start_line and d.end_line <= stack[-1].end_line):
            stack.pop()
        if stack and stack[-1] is not d:
            parent = stack[-1]
            d.parent = parent.qualified
            if d.kind == "function" and parent.kind in _CONTAINER_KINDS:
                d.kind = "method"
        stack.append(d)

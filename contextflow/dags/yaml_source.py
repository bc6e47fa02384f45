"""YAML parsing that remembers where every key and value came from.

PyYAML's constructors drop source positions. Here the document is composed into nodes with a
SafeLoader-family loader (libyaml's ``CSafeLoader`` when compiled in, the pure ``SafeLoader``
otherwise: both use ``SafeConstructor``, so no tag can build arbitrary Python objects) and walked
once, building plain Python data and a :class:`SourceMap` keyed by paths such as
``("nodes", 3, "prompt")``. The walk also reports duplicate mapping keys, which PyYAML accepts
silently (keeping the last one).
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from contextflow.dags.problems import Problem

PathKey = tuple[Any, ...]
Position = tuple[int, int]

_FastSafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class PositionLoader(_FastSafeLoader):  # type: ignore[misc, valid-type]
    """A safe loader whose node tree :func:`parse_yaml` walks to record positions."""


class PurePositionLoader(yaml.SafeLoader):
    """The pure-Python safe loader, for platforms without libyaml."""


@dataclass
class SourceMap:
    """Source positions (1-based line, column) of keys and values, by path."""

    file: str | None = None
    text: str = ""
    keys: dict[PathKey, Position] = field(default_factory=dict)
    values: dict[PathKey, Position] = field(default_factory=dict)
    # Character spans of scalars that hold template syntax, to place a reference exactly.
    spans: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    _line_starts: list[int] | None = None

    def key(self, path: PathKey) -> Position:
        """Where the key of ``path`` is written (the item itself for list elements)."""
        path = tuple(path)
        while path:
            pos = self.keys.get(path) or self.values.get(path)
            if pos:
                return pos
            path = path[:-1]
        return self.values.get((), (1, 1))

    def value(self, path: PathKey) -> Position:
        """Where the value of ``path`` starts, or the nearest enclosing position known."""
        path = tuple(path)
        while path:
            pos = self.values.get(path) or self.keys.get(path)
            if pos:
                return pos
            path = path[:-1]
        return self.values.get((), (1, 1))

    def in_value(self, path: PathKey, value: str, offset: int, end: int) -> Position:
        """Position of ``value[offset:end]`` (a reference) inside the scalar at ``path``.

        Quoting, escapes and block folding change columns, so the reference's own text is
        searched for in the scalar's source span (the n-th occurrence for the n-th in the value).
        """
        path = tuple(path)
        span = self.spans.get(path)
        needle = value[offset:end]
        if span is None or not needle:
            return self.value(path)
        nth = value.count(needle, 0, offset)
        start, stop = span
        found = start - 1
        for _ in range(nth + 1):
            found = self.text.find(needle, found + 1, stop)
            if found < 0:
                return self.value(path)
        return self._position_of(found)

    def _position_of(self, index: int) -> Position:
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        line = bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    def index_of(self, line0: int, column0: int) -> int:
        self._position_of(0)
        assert self._line_starts is not None
        if line0 >= len(self._line_starts):
            return len(self.text)
        return self._line_starts[line0] + column0


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large document.

    Loading allocates many objects and no garbage cycles; with the collector on, its full passes
    over an ever larger heap make loading superlinear (10x the nodes took 45x the time with
    libyaml at 1k -> 10k nodes). Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class ParsedYaml:
    data: Any
    source: SourceMap
    problems: list[Problem]


def parse_yaml(text: str, *, file: str | None = None, pure: bool = False) -> ParsedYaml:
    """Parse one YAML document into plain data plus its source map; never raises on bad YAML."""
    source = SourceMap(file=file, text=text)
    loader_cls = PurePositionLoader if pure else PositionLoader
    loader = loader_cls(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        return ParsedYaml(None, source, [_syntax_problem(exc, file, text)])
    except yaml.YAMLError as exc:
        return ParsedYaml(None, source, [Problem("yaml-syntax", str(exc), file=file, line=1, column=1)])
    try:
        if root is None:
            return ParsedYaml(None, source, [])
        walker = _Walker(loader, source, file)
        data = walker.build(root, ())
        return ParsedYaml(data, source, walker.problems)
    except yaml.MarkedYAMLError as exc:  # a bad scalar (timestamp, merge) found while building
        return ParsedYaml(None, source, [_syntax_problem(exc, file, text)])
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str | None, text: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or "invalid YAML"
    if "end of stream" in what and exc.context_mark is not None:
        mark = exc.context_mark  # an unclosed quote or bracket: point at where it opened
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if exc.context:
        what = f"{what} ({exc.context})"
    hint = "check the indentation and quoting around this position"
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]:
        hint = "YAML does not allow tab characters for indentation; use spaces"
    elif "quoted scalar" in what:
        hint = "this quote is never closed; add the closing quote"
    return Problem("yaml-syntax", what, hint=hint, file=file, line=line, column=column)


_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})


class _Walker:
    def __init__(self, loader: Any, source: SourceMap, file: str | None) -> None:
        self.loader = loader
        self.source = source
        self.file = file
        self.problems: list[Problem] = []
        self._built: dict[int, Any] = {}  # aliases share one object, as PyYAML does

    def build(self, node: Node, path: PathKey) -> Any:
        mark = node.start_mark
        self.source.values[path] = (mark.line + 1, mark.column + 1)
        done = self._built.get(id(node))
        if done is not None:
            return done
        if isinstance(node, ScalarNode):
            value = self.loader.construct_object(node)
            if isinstance(value, str) and ("${" in value or "{{" in value):
                end = node.end_mark
                self.source.spans[path] = (
                    self.source.index_of(mark.line, mark.column),
                    self.source.index_of(end.line, end.column),
                )
            return value
        if node.tag not in _PLAIN_TAGS:
            raise yaml.constructor.ConstructorError(
                None, None, f"the tag {node.tag} is not allowed (only plain YAML data)", mark)
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            self._built[id(node)] = items
            for index, child in enumerate(node.value):
                items.append(self.build(child, (*path, index)))
            return items
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        raise yaml.MarkedYAMLError(problem=f"unexpected node {node.tag}", problem_mark=mark)

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves '<<' merge keys in place
        result: dict[Any, Any] = {}
        self._built[id(node)] = result
        first_seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            kmark = key_node.start_mark
            key_pos = (kmark.line + 1, kmark.column + 1)
            try:
                hash(key)
            except TypeError:
                self.problems.append(
                    Problem("wrong-type", "a mapping key must be a plain value, not a list or mapping",
                            file=self.file, line=key_pos[0], column=key_pos[1])
                )
                continue
            if key in first_seen:
                line, col = first_seen[key]
                self.problems.append(
                    Problem(
                        "duplicate-key",
                        f"key '{key}' appears twice in this mapping; YAML would keep only the last one",
                        hint=f"the first '{key}' is at line {line}, column {col}; remove or rename one",
                        file=self.file, line=key_pos[0], column=key_pos[1],
                    )
                )
            first_seen[key] = key_pos
            child_path = (*path, key)
            self.source.keys[child_path] = key_pos
            result[key] = self.build(value_node, child_path)
        return result

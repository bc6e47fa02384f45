"""What a static check reports: a :class:`Problem` with a stable code, a position and a hint.

Codes are stable strings (tests, editors and CI filters match on them); messages are prose and
may change. Positions are 1-based line and column, the convention of editors and compilers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

from contextflow.core.errors import UserError

#: Every code a check can report, with a one-line meaning (``contextflow validate --codes`` lists them).
PROBLEM_CODES: dict[str, str] = {
    "file-not-found": "the pipeline file does not exist",
    "file-unreadable": "the pipeline file cannot be read as UTF-8 text",
    "yaml-syntax": "the file is not valid YAML",
    "yaml-too-deep": "mappings and lists nest deeper than the loader allows (aliases included)",
    "yaml-too-many-aliases": "more alias uses than the loader allows",
    "yaml-alias-expansion": "aliases would expand the document far beyond its written size",
    "yaml-alias-cycle": "an alias inside the mapping or list it refers to",
    "duplicate-key": "a mapping repeats a key (YAML keeps only one of them)",
    "wrong-type": "a value has the wrong type for its key",
    "unknown-key": "a key the pipeline format does not define",
    "missing-key": "a required key is absent",
    "invalid-value": "a value outside what the key accepts",
    "invalid-id": "a node id that is not an identifier",
    "unknown-node-kind": "a node kind other than llm, retrieve, python, tool, map",
    "duplicate-node": "two nodes share an id",
    "unknown-node-ref": "a reference or depends_on names a node that does not exist",
    "unknown-input-ref": "a reference names a pipeline input that is not declared",
    "unknown-field-ref": "a reference names a field the producer's output does not have",
    "cycle": "nodes depend on each other in a loop",
    "type-mismatch": "a producer's output type differs from what the consumer expects",
    "unresolved-template-var": "a template variable that resolves to nothing",
    "invalid-expression": "a when: condition that is not a safe expression",
    "invalid-schema": "an output_schema that is not a usable JSON Schema",
    "unknown-model": "a model name neither litellm's map nor a declaration knows",
    "missing-model": "an llm node with no model and no default model",
    "context-overflow": "a prompt that cannot fit the model's context window",
    "import-not-allowed": "a python/tool import path outside the allowlist",
    "import-not-found": "an allowlisted import path whose module or function does not exist",
    "unknown-argument": "a python or tool node argument the function or tool does not accept",
    "missing-argument": "a required parameter of a python node's function or a tool is not supplied",
    "missing-prompt": "an llm node with no user message (no prompt, no user turn in messages)",
    "unknown-tool": "a tool node naming neither a built-in tool nor an import path",
    "budget-unmeetable": "the run budget is below what the cheapest model choices need",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline. ``line``/``column`` are 1-based; 0 when unknown.
    ``node``: the id of the node the problem is in, if any (the location when there is no line)."""

    code: str
    message: str
    hint: str | None = None
    file: str | None = None
    line: int = 0
    column: int = 0
    node: str | None = None

    @property
    def location(self) -> str:
        where = self.file or "<pipeline>"
        if self.line and self.column:
            return f"{where}:{self.line}:{self.column}"
        if self.line:  # a Python declaration: the line of the call that declared the node
            return f"{where}:{self.line}"
        return f"{where}, node '{self.node}'" if self.node else where

    def format(self) -> str:
        text = f"{self.location}: {self.code}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "node": self.node,
        }


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file or "", p.line, p.column, p.code, p.message))


class PipelineError(UserError):
    """A pipeline that failed its checks; ``problems`` holds every one of them, not only the first."""

    def __init__(self, problems: Sequence[Problem], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        head = f"{source or 'pipeline'}: {count} problem{'s' if count != 1 else ''}"
        body = "\n".join(p.format() for p in self.problems)
        super().__init__(f"{head}\n{body}", hint=None)


def did_you_mean(word: str, candidates: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> list[str]:
    """Close spellings of ``word``; called only for names already known to be wrong."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=cutoff)


def suggestion_hint(word: str, candidates: Iterable[str], *, fmt: str = "'{}'") -> str | None:
    matches = did_you_mean(word, candidates)
    if not matches:
        return None
    return "did you mean " + " or ".join(fmt.format(m) for m in matches) + "?"

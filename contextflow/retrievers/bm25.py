"""Lexical retrieval: BM25 (the ``bm25s`` library) over chunks with code-aware tokens.

Identifiers are kept whole *and* split (``parseHttpResponse`` -> ``parsehttpresponse``, ``parse``,
``http``, ``response``; ``max_retries`` -> ``max_retries``, ``max``, ``retries``), so an issue that
says "max retries" and one that says ``max_retries`` both reach the code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+")
_STOPWORDS = frozenset(
    """a an and are as at be but by for from has have if in into is it its of on or that the this to was
    were will with not no do does did can could should would we you he she they i me my our your their them
    there then than so such which what when where who how all any each some more most other also just only
    self cls def return none true false null var let const function class import from new pass else elif
    end fn func pub use""".split()
)


def split_identifier(identifier: str) -> list[str]:
    """``getHTTPResponse_code`` -> ``['get', 'http', 'response', 'code']``."""
    parts: list[str] = []
    for piece in identifier.split("_"):
        parts.extend(m.group(0).lower() for m in _CAMEL.finditer(piece))
    return [p for p in parts if p]


def code_tokens(text: str) -> list[str]:
    """Lower-cased identifiers plus their camelCase/snake_case parts, without stop words."""
    tokens: list[str] = []
    for match in _IDENTIFIER.finditer(text):
        ident = match.group(0)
        low = ident.lower()
        if len(low) > 1 and low not in _STOPWORDS:
            tokens.append(low)
        parts = split_identifier(ident)
        if len(parts) > 1:
            tokens.extend(p for p in parts if len(p) > 1 and p not in _STOPWORDS and p != low)
    return tokens


class BM25Index:
    """A BM25 index over chunk ids; built from token lists, saved next to the repository's meta db."""

    def __init__(self, ids: list[str], retriever: object | None) -> None:
        self.ids = ids
        self._retriever = retriever

    @classmethod
    def build(cls, ids: list[str], token_lists: list[list[str]]) -> "BM25Index":
        if not ids:
            return cls([], None)
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(token_lists, show_progress=False)
        return cls(list(ids), retriever)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")
        if self._retriever is not None:
            self._retriever.save(str(folder), show_progress=False)  # type: ignore[attr-defined]

    @classmethod
    def load(cls, folder: Path) -> "BM25Index | None":
        ids_file = folder / "ids.json"
        if not ids_file.is_file():
            return None
        ids = json.loads(ids_file.read_text(encoding="utf-8"))
        if not ids:
            return cls([], None)
        import bm25s

        return cls(ids, bm25s.BM25.load(str(folder), show_progress=False))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (in ``self.ids`` order) for ``query``."""
        if self._retriever is None:
            return np.zeros(0, dtype=np.float32)
        vocab = self._retriever.vocab_dict  # type: ignore[attr-defined]
        terms = [t for t in dict.fromkeys(code_tokens(query)) if t in vocab]
        if not terms:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)  # type: ignore[attr-defined]

    def search(self, query: str, k: int = 50) -> list[tuple[str, float]]:
        scores = self.scores(query)
        if scores.size == 0:
            return []
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

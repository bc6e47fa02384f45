"""Combine the retrievers' rankings, then expand from the strongest hits.

Fusion is weighted reciprocal rank fusion: a chunk's score is the sum over retrievers of
``weight / (k + rank)``; it needs no calibration between BM25 scores and cosine similarities.
Expansion follows two kinds of edges from the top hits: the symbol graph (a definition that a hit
calls or uses, found in another file) and co-change (a file that historically changes together
with a hit's file). Expanded chunks enter with a fraction of their parent's score and say why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from contextflow.retrievers.index import RepoIndex
from contextflow.retrievers.rankers import Hit

DEFAULT_WEIGHTS = {"bm25": 1.0, "embeddings": 0.5, "ast": 1.0, "git": 0.6}
RRF_K = 20
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")


@dataclass
class Candidate:
    chunk_id: str
    score: float
    contributions: dict[str, float] = field(default_factory=dict)  # source -> share of the score
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return sorted(self.contributions, key=lambda s: -self.contributions[s])

    @property
    def source(self) -> str:
        return self.sources[0]

    def reason(self) -> str:
        parts = [f"{s}: {self.reasons[s]}" for s in self.sources if s in self.reasons]
        if "prior" in self.reasons:
            parts.append(self.reasons["prior"])
        return "; ".join(parts)


def reciprocal_rank_fusion(
    rankings: Mapping[str, list[Hit]], weights: Mapping[str, float] | None = None, k: int = RRF_K
) -> list[Candidate]:
    """Candidates by fused score, normalised so the best is 1.0."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    fused: dict[str, Candidate] = {}
    for source, hits in rankings.items():
        w = weights.get(source, 1.0)
        for rank, hit in enumerate(hits):
            cand = fused.setdefault(hit.chunk_id, Candidate(hit.chunk_id, 0.0))
            share = w / (k + rank + 1)
            cand.score += share
            cand.contributions[source] = cand.contributions.get(source, 0.0) + share
            cand.reasons.setdefault(source, f"rank {rank + 1}, {hit.reason}")
    ranked = sorted(fused.values(), key=lambda c: -c.score)
    if ranked:
        top = ranked[0].score
        for c in ranked:
            c.score /= top
            c.contributions = {s: v / top for s, v in c.contributions.items()}
    return ranked


_TEST_DIRS = {"test", "tests", "testing", "__tests__", "spec", "specs", "fixtures", "testdata"}
_TEST_FILE = re.compile(r"(^test_.*|.*_test|.*_tests|.*\.(test|spec))\.[A-Za-z0-9]+$|^conftest\.py$")
#: A query that asks for tests to be written or fixed, or names a test file, wants test files.
_ASKS_ABOUT_TESTS = re.compile(r"\b(add|write|fix|update)\w* (a |the |some |unit |more )?tests?\b"
                               r"|\b[\w/.-]*(test_\w+|\w+_test|\w+\.(test|spec))\.[a-z]{1,4}\b", re.I)


def is_test_path(path: str) -> bool:
    """True for files that test code rather than implement it (by folder or file-name convention)."""
    parts = path.split("/")
    return any(p.lower() in _TEST_DIRS for p in parts[:-1]) or bool(_TEST_FILE.match(parts[-1]))


def apply_path_prior(ranked: list[Candidate], chunks: Mapping[str, object], query: str,
                     test_factor: float = 0.4) -> list[Candidate]:
    """Scale down test files' chunks unless the query asks for tests or names a test file.

    An issue usually quotes the failing behaviour, and test files quote the same code and names, so
    they outrank the implementation lexically while rarely being what has to be read or changed.
    """
    if test_factor == 1.0 or _ASKS_ABOUT_TESTS.search(query):
        return ranked
    for cand in ranked:
        chunk = chunks.get(cand.chunk_id)
        if chunk is not None and is_test_path(chunk.path):  # type: ignore[attr-defined]
            cand.score *= test_factor
            cand.contributions = {s: v * test_factor for s, v in cand.contributions.items()}
            cand.reasons.setdefault("prior", f"test file, weighted x{test_factor}")
    return sorted(ranked, key=lambda c: -c.score)


def apply_file_focus(ranked: list[Candidate], chunks: Mapping[str, object], strength: float = 0.5,
                     top_chunks: int = 3, pool: int = 100) -> list[Candidate]:
    """Raise chunks of the files that the evidence points to most, as a whole.

    A fix usually touches one or two files, and several chunks of the same file ranking well is
    stronger evidence for that file than one stray hit elsewhere. Each file's evidence is the sum of
    its best ``top_chunks`` scores among the top ``pool`` candidates (normalised so the best file is
    1.0); every candidate of that file is scaled by ``1 + strength * evidence``, so the budget goes to
    more definitions of the likely files instead of spreading thin. ``strength=0`` turns it off.
    """
    if strength <= 0 or not ranked:
        return ranked
    per_file: dict[str, list[float]] = {}
    for cand in ranked[:pool]:
        chunk = chunks.get(cand.chunk_id)
        if chunk is not None:
            per_file.setdefault(chunk.path, []).append(cand.score)  # type: ignore[attr-defined]
    evidence = {p: sum(sorted(v, reverse=True)[:top_chunks]) for p, v in per_file.items()}
    best = max(evidence.values(), default=0.0) or 1.0
    for cand in ranked:
        chunk = chunks.get(cand.chunk_id)
        share = evidence.get(chunk.path, 0.0) / best if chunk is not None else 0.0  # type: ignore[attr-defined]
        if share > 0:
            factor = 1.0 + strength * share
            cand.score *= factor
            cand.contributions = {s: v * factor for s, v in cand.contributions.items()}
    ranked = sorted(ranked, key=lambda c: -c.score)
    # Back to "the best is 1.0", as fusion left it (a uniform scale: no order changes).
    top = ranked[0].score or 1.0
    for cand in ranked:
        cand.score /= top
        cand.contributions = {s: v / top for s, v in cand.contributions.items()}
    return ranked


def expand(
    index: RepoIndex,
    ranked: list[Candidate],
    *,
    co_change: Mapping[str, list[tuple[str, int]]] | None = None,
    bm25_position: Mapping[str, float] | None = None,
    seeds: int = 5,
    per_seed: int = 3,
    factor: float = 0.5,
) -> list[Candidate]:
    """``ranked`` plus chunks reached from its top ``seeds`` along symbol and co-change edges."""
    by_id = {c.chunk_id: c for c in ranked}
    chunks = index.chunks
    added: list[Candidate] = []
    definers = None
    for seed in ranked[:seeds]:
        chunk = chunks.get(seed.chunk_id)
        if chunk is None:
            continue
        if definers is None:
            definers = index.definer_counts()
        own = set(chunk.symbols)
        names = [n for n in dict.fromkeys(_IDENT.findall(chunk.text))
                 if n not in own and 0 < definers.get(n, 0) <= 2 and n.split(".")[-1] not in own]
        reached = 0
        for name, path, kind, start, _end, _sig in index.definitions_named(names[:200]):
            if reached >= per_seed or path == chunk.path:
                continue
            target = index.chunk_at(path, start)
            if target is None:
                continue
            reason = f"defines {kind} `{name}` used by {chunk.path}:{chunk.start_line}"
            if _offer(by_id, added, target.id, seed.score * factor, "graph", reason):
                reached += 1
        for partner, count in (co_change or {}).get(chunk.path, [])[:per_seed]:
            partner_chunks = index.chunks_of(partner)
            if not partner_chunks:
                continue
            best = max(partner_chunks, key=lambda c: (bm25_position or {}).get(c.id, 0.0))
            reason = f"{partner} changed together with {chunk.path} in {count} commits"
            _offer(by_id, added, best.id, seed.score * factor * 0.8, "cochange", reason)
    return sorted(list(by_id.values()), key=lambda c: -c.score)


def _offer(by_id: dict[str, Candidate], added: list[Candidate], chunk_id: str, score: float, source: str,
           reason: str) -> bool:
    existing = by_id.get(chunk_id)
    if existing is not None:
        if source in existing.contributions:
            return False
        # Already retrieved: the edge is extra evidence, worth a smaller bonus than a fresh hit.
        existing.score += score * 0.25
        existing.contributions[source] = score * 0.25
        existing.reasons[source] = reason
        return True
    cand = Candidate(chunk_id, score, {source: score}, {source: reason})
    by_id[chunk_id] = cand
    added.append(cand)
    return True

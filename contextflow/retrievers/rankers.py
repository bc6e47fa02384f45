"""The four retrievers, each turning a query into a ranked list of chunk hits with a reason.

- ``bm25``: lexical match over chunk text (identifiers split and kept).
- ``embeddings``: cosine similarity of the query and chunk vectors.
- ``ast``: definitions whose names the query mentions, files whose paths it mentions, ranked
  with the file graph's PageRank as a tie-breaker.
- ``git``: uncommitted changes (staged and unstaged hunks) and files of recent commits whose
  messages match the query.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from contextflow.retrievers.bm25 import code_tokens, split_identifier
from contextflow.retrievers.index import RepoIndex
from contextflow.retrievers.git import GitHistory

RETRIEVERS = ("bm25", "ast", "git", "embeddings")
#: Only this many top lexical hits get the matched terms spelled out (the rest rarely reach a window).
_EXPLAINED = 30


@dataclass
class Hit:
    chunk_id: str
    score: float
    reason: str


def bm25_hits(index: RepoIndex, query: str, k: int = 100) -> list[Hit]:
    chunks = index.chunks
    hits = []
    query_terms = set(code_tokens(query))
    for rank, (cid, score) in enumerate(index.bm25.search(query, k)):
        chunk = chunks.get(cid)
        if chunk is None:
            continue
        if rank >= _EXPLAINED:
            hits.append(Hit(cid, score, f"BM25 {score:.2f}"))
            continue
        matched = [t for t in dict.fromkeys(code_tokens(chunk.text)) if t in query_terms][:5]
        hits.append(Hit(cid, score, f"BM25 {score:.2f} on terms {', '.join(matched) or '(path)'}"))
    return hits


def embedding_hits(index: RepoIndex, query: str, k: int = 100, model: str | None = None) -> list[Hit]:
    store = index.embedding_store(model)
    chunks = index.chunks
    return [Hit(cid, sim, f"embedding similarity {sim:.3f}") for cid, sim in store.search(query, k) if cid in chunks]


_CODE_SPAN = re.compile(r"`([^`\n]{1,120})`")
_CALL_LIKE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_DOTTED = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\b")
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")
_PATHLIKE = re.compile(r"[\w./-]+\.[A-Za-z]{1,5}\b")


def _query_names(query: str) -> dict[str, float]:
    """Names the query mentions, with how sure we are they are code (backticks, calls, dotted, casing)."""
    names: dict[str, float] = defaultdict(float)
    for span in _CODE_SPAN.findall(query):
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span):
            names[word] = max(names[word], 1.0)
    for word in _CALL_LIKE.findall(query):
        names[word] = max(names[word], 0.9)
    for dotted in _DOTTED.findall(query):
        for word in dotted.split("."):
            names[word] = max(names[word], 0.7)
    for word in _WORD.findall(query):
        codeish = "_" in word or (any(c.isupper() for c in word[1:]) and any(c.islower() for c in word))
        names[word] = max(names[word], 0.6 if codeish else 0.25)
    return names


def ast_hits(index: RepoIndex, query: str, k: int = 100) -> list[Hit]:
    names = _query_names(query)
    scores: dict[str, float] = defaultdict(float)
    reasons: dict[str, str] = {}
    if names:
        definers = index.definer_counts()
        total_files = max(1, len(index.file_paths()))
        graph = index.graph
        for name, path, kind, start, end, signature in index.definitions_named(list(names)):
            spread = definers.get(name, 1)
            idf = math.log(1 + total_files / spread)
            rank = graph.nodes[path].get("pagerank", 0.0) if path in graph else 0.0
            chunk = index.chunk_at(path, start)
            if chunk is None:
                continue
            value = names[name] * idf * (1.0 + 5.0 * rank) / (1 + 0.2 * max(0, len(split_identifier(name)) == 1))
            if value > scores[chunk.id]:
                reasons[chunk.id] = f"defines {kind} `{name}` ({signature[:80]}) named in the query"
            scores[chunk.id] = max(scores[chunk.id], value)
    # Files the query names by path ("requests/sessions.py" or just "sessions.py").
    mentioned = {m.strip("./") for m in _PATHLIKE.findall(query)}
    if mentioned:
        for path in index.file_paths():
            if any(path == m or path.endswith("/" + m) for m in mentioned):
                for chunk in index.chunks_of(path)[:20]:
                    scores[chunk.id] += 1.0
                    reasons.setdefault(chunk.id, f"in {path}, which the query names")
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
    return [Hit(cid, s, reasons[cid]) for cid, s in ranked]


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)
_DIFF_FILE = re.compile(r"^\+\+\+ b/(.+)$", re.M)


def changed_line_ranges(diff: str) -> dict[str, list[tuple[int, int]]]:
    """New-side line ranges per file of a unified diff."""
    ranges: dict[str, list[tuple[int, int]]] = defaultdict(list)
    current = None
    for line in diff.splitlines():
        m = _DIFF_FILE.match(line)
        if m:
            current = m.group(1)
            continue
        h = _HUNK.match(line)
        if h and current is not None:
            start, count = int(h.group(1)), int(h.group(2) or 1)
            ranges[current].append((start, start + max(count, 1) - 1))
    return ranges


def git_hits(index: RepoIndex, query: str, k: int = 100, *, max_commits: int = 200, since: str | None = None) -> list[Hit]:
    history = GitHistory.open(index.root, index.runner)
    if history is None:
        return []
    scores: dict[str, float] = defaultdict(float)
    reasons: dict[str, str] = {}
    for kind, diff in (("staged", history.staged_diff()), ("unstaged", history.working_diff())):
        for path, spans in changed_line_ranges(diff).items():
            local = history._local(path)
            if local is None:
                continue
            for lo, hi in spans:
                for chunk in index.chunks_of(local):
                    if chunk.start_line <= hi and lo <= chunk.end_line:
                        scores[chunk.id] += 3.0
                        reasons.setdefault(chunk.id, f"{kind} change at lines {lo}-{hi}")
    terms = set(code_tokens(query))
    if terms:
        bm25_scores = index.bm25.scores(query)
        position = {cid: i for i, cid in enumerate(index.bm25.ids)}
        for age, commit in enumerate(history.recent_commits(since=since, max_commits=max_commits)):
            overlap = terms & set(code_tokens(commit.message))
            if not overlap:
                continue
            weight = len(overlap) / math.sqrt(len(terms)) / (1 + 0.05 * age)
            for stat in commit.files:
                candidates = index.chunks_of(stat.path)
                if not candidates:
                    continue
                # The commit points at a file; its chunks that also match the query words stand for it.
                best = sorted(candidates, key=lambda c: -float(bm25_scores[position[c.id]]) if c.id in position else 0)[:2]
                for chunk in best:
                    scores[chunk.id] += weight
                    reasons.setdefault(chunk.id, f"file changed by {commit.sha[:8]} \"{commit.subject[:60]}\"")
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:k]
    return [Hit(cid, s, reasons[cid]) for cid, s in ranked]

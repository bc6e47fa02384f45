"""Pack candidates into a token budget.

Greedy by value per token (a knapsack heuristic): candidates are taken in order of
``score / max(tokens, floor)``, so a small strong excerpt beats a large middling one but a
one-line fragment does not win on size alone. Each retriever's items may take at most its quota of
the budget when several retrievers contribute, unless budget would otherwise stay unused that a
whole held-back item fills. A candidate that does not fit whole is cut at a
syntactic boundary (between body statements) when its head still carries value. The chosen items
are put in reading order (file, then line), rendered, and the whole rendering is counted: the
result never exceeds the budget.
"""

from __future__ import annotations

from collections.abc import Mapping

from contextflow.context.fusion import Candidate
from contextflow.core.tokens import count_tokens
from contextflow.context.window import ContextItem, Format, frame, render_item, render_items
from contextflow.retrievers.index import ChunkRecord

#: Below this many tokens an excerpt counts as this many when ranking by value per token.
TOKEN_FLOOR = 80
#: Share of the budget one retriever's items may take, when more than one retriever contributed.
DEFAULT_QUOTA = 0.7
#: Cutting a chunk shorter than this is not worth it.
_MIN_CUT_TOKENS = 40


def _item(cand: Candidate, chunk: ChunkRecord, end_line: int | None = None) -> ContextItem:
    end = chunk.end_line if end_line is None else end_line
    text = chunk.text if end_line is None else "\n".join(chunk.text.split("\n")[: end - chunk.start_line + 1])
    return ContextItem(
        path=chunk.path, start_line=chunk.start_line, end_line=end, source=cand.source, sources=cand.sources,
        score=round(cand.score, 6), tokens=0, reason=cand.reason(), text=text,
        symbol=chunk.symbols[0] if chunk.symbols else "", header=chunk.header, lang=chunk.lang,
        truncated=end_line is not None,
    )


def _cost(item: ContextItem, fmt: Format, model: str | None) -> int:
    return count_tokens(render_item(item, fmt) + "\n", model)


def _cut_to_fit(cand: Candidate, chunk: ChunkRecord, room: int, fmt: Format, model: str | None) -> ContextItem | None:
    """The longest head of ``chunk`` ending before one of its cut points that fits in ``room``."""
    cuts = [c for c in chunk.cuts if chunk.start_line < c <= chunk.end_line]
    lo, hi, best = 0, len(cuts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        item = _item(cand, chunk, cuts[mid] - 1)
        item.tokens = _cost(item, fmt, model)
        if item.tokens <= room:
            best, lo = item, mid + 1
        else:
            hi = mid - 1
    return best


def pack(
    candidates: list[Candidate],
    chunks: Mapping[str, ChunkRecord],
    *,
    budget_tokens: int,
    model: str | None = None,
    fmt: Format = "markdown",
    quotas: Mapping[str, float] | None = None,
    max_candidates: int = 400,
) -> tuple[list[ContextItem], int]:
    """Items in reading order and the token count of their full rendering (<= ``budget_tokens``)."""
    opening, closing = frame(fmt)
    overhead = count_tokens(opening + "\n" + "\n" + closing + "\n", model)
    room = budget_tokens - overhead
    if room <= 0:
        return [], 0
    pool = []
    for cand in candidates[:max_candidates]:
        chunk = chunks.get(cand.chunk_id)
        if chunk is None:
            continue
        item = _item(cand, chunk)
        item.tokens = _cost(item, fmt, model)
        pool.append((cand, chunk, item))
    sources = {c.source for c, _, _ in pool}
    limits = {s: (quotas or {}).get(s, DEFAULT_QUOTA) * room for s in sources} if len(sources) > 1 else {}
    spent: dict[str, int] = {}
    chosen: list[ContextItem] = []
    pool.sort(key=lambda t: -t[0].score / max(t[2].tokens, TOKEN_FLOOR))
    held_by_quota: list[ContextItem] = []
    for cand, chunk, item in pool:
        if room < _MIN_CUT_TOKENS:
            break
        limit = limits.get(cand.source)
        allowance = room if limit is None else min(room, int(limit - spent.get(cand.source, 0)))
        if item.tokens > allowance:
            if item.tokens <= room:
                held_by_quota.append(item)  # fits whole; only its retriever's quota stopped it
            if allowance < _MIN_CUT_TOKENS:
                continue
            cut = _cut_to_fit(cand, chunk, allowance, fmt, model)
            if cut is None:
                continue
            if held_by_quota and held_by_quota[-1] is item:
                held_by_quota.pop()
            item = cut
        chosen.append(item)
        room -= item.tokens
        spent[cand.source] = spent.get(cand.source, 0) + item.tokens
    # Quotas keep one retriever from crowding out the others, not from using budget nobody else
    # wants: whole items a quota held back still go in, best first, while they fit.
    for item in held_by_quota:
        if item.tokens <= room:
            chosen.append(item)
            room -= item.tokens
    chosen.sort(key=lambda i: (i.path, i.start_line))
    used = count_tokens(render_items(chosen, fmt), model)
    # Token counts of parts need not add up exactly (merges across joins): drop the weakest until it fits.
    while chosen and used > budget_tokens:
        weakest = min(chosen, key=lambda i: i.score / max(i.tokens, TOKEN_FLOOR))
        chosen.remove(weakest)
        used = count_tokens(render_items(chosen, fmt), model)
    if used > budget_tokens:
        return [], used
    return chosen, used

"""Packing under quotas: diversity first, but never budget left unused that a whole item fills."""

from __future__ import annotations

from contextflow.context.fusion import Candidate
from contextflow.context.packing import pack
from contextflow.context.window import render_items
from contextflow.core.tokens import count_tokens
from contextflow.retrievers.index import ChunkRecord


def _chunk(chunk_id: str, path: str, lines: int, *, cuts: list[int] | None = None) -> ChunkRecord:
    text = "\n".join(f"value_{chunk_id}_{i} = compute_{i}(alpha, beta, gamma)" for i in range(lines))
    return ChunkRecord(id=chunk_id, path=path, start_line=1, end_line=lines, kind="block", symbols=[],
                       header="", text=text, cuts=cuts or [], lang="python")


def _cand(chunk_id: str, source: str, score: float) -> Candidate:
    return Candidate(chunk_id, score, contributions={source: 1.0}, reasons={source: "matched"})


def test_a_whole_item_that_fits_is_packed_even_when_its_quota_is_smaller() -> None:
    big = _chunk("a", "a.py", 12)
    other = _chunk("b", "b.py", 12)
    chunks = {"a": big, "b": other}
    candidates = [_cand("a", "bm25", 0.9), _cand("b", "ast", 0.5)]
    alone, _ = pack([candidates[0]], chunks, budget_tokens=10_000)
    item_tokens = alone[0].tokens
    # A budget that holds exactly one whole item (with the window's frame) but not two, and where
    # the item is above its retriever's 70% quota of the budget.
    budget = count_tokens(render_items(alone, "markdown")) + 5
    assert item_tokens > 0.7 * budget
    chosen, used = pack(candidates, chunks, budget_tokens=budget)
    assert [i.path for i in chosen] == ["a.py"], "the best item fits whole and must not be refused by its quota"
    assert used <= budget


def test_quotas_still_share_the_budget_between_retrievers() -> None:
    chunks = {f"a{i}": _chunk(f"a{i}", f"a{i}.py", 3) for i in range(10)}
    chunks.update({f"b{i}": _chunk(f"b{i}", f"b{i}.py", 3) for i in range(10)})
    candidates = [_cand(f"a{i}", "bm25", 0.9 - i * 0.01) for i in range(10)]
    candidates += [_cand(f"b{i}", "ast", 0.3 - i * 0.01) for i in range(10)]
    one, _ = pack([candidates[0]], chunks, budget_tokens=10_000)
    budget = one[0].tokens * 6
    chosen, used = pack(candidates, chunks, budget_tokens=budget)
    by_source = {s: sum(i.tokens for i in chosen if i.source == s) for s in ("bm25", "ast")}
    assert by_source["ast"] > 0, "the weaker retriever keeps its share"
    assert used <= budget
    assert sum(by_source.values()) <= budget

"""Streaming a run: event order, token deltas, exact accounting, cancel and resume, warnings, tools."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import runtime_helpers as rh
from contextflow import astream, stream
from contextflow.api import aresume, arun
from contextflow.core import events as ev
from contextflow.core.errors import UserError
from contextflow.providers import simulated
from contextflow.runtime.memory_store import MemoryRunStore
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime import streaming as engine_streaming
from contextflow.trace import TraceStore

SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}, "score": {"type": "integer"}},
          "required": ["verdict", "score"]}


def _chain(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "streamed",
        "nodes": [
            {"id": "a", "kind": "llm", "model": model, "prompt": "one two three four five six", "max_output_tokens": 40},
            {"id": "b", "kind": "llm", "model": model, "prompt": "seven eight ${a}", "max_output_tokens": 40},
            {"id": "j", "kind": "llm", "model": model, "prompt": "judge ${b}", "output_schema": SCHEMA,
             "max_output_tokens": 40},
        ],
        **extra,
    }


async def _collect(pipeline: Any, **options: Any) -> tuple[list[ev.Event], Any]:
    async with astream(pipeline, **options) as events:
        seen = [event async for event in events]
    return seen, events


async def test_token_deltas_come_before_their_node_finishes_and_run_finished_is_last(state_home, sim_model):
    model = sim_model(chunk_delay_ms=1)
    seen, events = await _collect(_chain(model), cache=False)
    assert isinstance(seen[0], ev.RunStarted) and isinstance(seen[-1], ev.RunFinished)
    assert seen[-1].status == "succeeded" and events.result.status == "succeeded"
    assert events.finished is seen[-1]
    for node_id in ("a", "b", "j"):
        started = next(i for i, e in enumerate(seen) if isinstance(e, ev.NodeStarted) and e.node_id == node_id)
        finished = next(i for i, e in enumerate(seen) if isinstance(e, ev.NodeFinished) and e.node_id == node_id)
        deltas = [i for i, e in enumerate(seen) if isinstance(e, ev.TokenDelta) and e.node_id == node_id]
        assert len(deltas) > 1, node_id  # the reply came in pieces
        assert started < min(deltas) and max(deltas) < finished
        text = "".join(seen[i].text for i in deltas)
        value = events.result.nodes[node_id].value
        assert text == (value if isinstance(value, str) else seen[finished - 1].attempt.response)
        attempt = next(e.attempt for e in seen if isinstance(e, ev.AttemptFinished) and e.node_id == node_id)
        assert attempt.time_to_first_token_s is not None and attempt.response == text
    assert events.result.nodes["j"].value == {"verdict": "simulated", "score": 1}  # validated once complete
    attempts = [s for s in TraceStore(state_home / "traces.db").spans(events.result.run_id) if s["kind"] == "attempt"]
    assert len(attempts) == 3 and all(s["attributes"]["gen_ai.server.time_to_first_token"] > 0 for s in attempts)


async def test_streamed_text_usage_and_cost_equal_a_run_that_does_not_stream(state_home, sim_model):
    # A provider-stated price (per-call override) and a catalog price: both must come out the same.
    model = sim_model(input_cost_per_token=2e-6, output_cost_per_token=7e-6)
    spec = _chain(model)
    spec["nodes"][1]["params"] = {"sim": {"input_cost_per_token": 1e-5}}
    plain_attempts: list = []
    plain = await arun(spec, cache=False, trace=False,
                       sinks=[lambda e: plain_attempts.append(e.attempt) if isinstance(e, ev.AttemptFinished) else None])
    seen, events = await _collect(spec, cache=False, trace=False)
    streamed = events.result
    assert plain.status == streamed.status == "succeeded"
    assert streamed.cost_usd == pytest.approx(plain.cost_usd, rel=1e-12) and plain.cost_usd > 0
    assert streamed.usage == plain.usage
    for node_id in ("a", "b", "j"):
        p, s = plain.nodes[node_id], streamed.nodes[node_id]
        assert (s.value, s.usage, s.cost_usd, s.model) == (p.value, p.usage, p.cost_usd, p.model)
    streamed_attempts = [e.attempt for e in seen if isinstance(e, ev.AttemptFinished)]
    assert [(a.response, a.usage, a.cost_usd, a.cost_source, a.response_model) for a in streamed_attempts] == \
        [(a.response, a.usage, a.cost_usd, a.cost_source, a.response_model) for a in plain_attempts]
    assert all(a.time_to_first_token_s is None for a in plain_attempts)  # nobody read deltas: no stream


async def test_breaking_out_cancels_the_run_and_resume_finishes_it(state_home, sim_model):
    fast, slow = sim_model(), sim_model(latency_ms=60_000)
    spec = {"name": "cut", "nodes": [
        {"id": "a", "kind": "llm", "model": fast, "prompt": "first"},
        {"id": "b", "kind": "llm", "model": slow, "prompt": "then ${a}"},
    ]}
    async with astream(spec, cache=False) as events:
        async for event in events:
            if isinstance(event, ev.AttemptStarted) and event.node_id == "b":
                break
    assert events.finished is not None and events.finished.status == "cancelled"
    run_id = events.finished.run_id
    with SQLiteRunStore(state_home / "runs.db") as store:
        assert store.get_run(run_id).status == "cancelled"
        saved = store.load_nodes(run_id)
    assert saved["a"].status == "succeeded" and not (saved.get("b") and saved["b"].finished)
    calls_of_a = simulated.stats(fast).calls
    simulated.configure(slow, latency_ms=0)
    resumed = await aresume(run_id)
    assert resumed.status == "succeeded"
    assert resumed.nodes["b"].value == "then first"
    assert simulated.stats(fast).calls == calls_of_a  # a was not asked again


async def test_a_stream_dropped_without_closing_cancels_its_run(state_home, sim_model):
    slow = sim_model(latency_ms=60_000)
    events = astream({"name": "dropped", "nodes": [{"id": "a", "kind": "llm", "model": slow, "prompt": "x"}]})
    async for event in events:
        if isinstance(event, ev.AttemptStarted):
            break
    task = events._task
    del events, event
    gc.collect()
    await asyncio.wait([task], timeout=30)
    assert task.done()


def test_the_sync_stream_yields_the_same_events_and_a_break_cancels(state_home, sim_model):
    model = sim_model()
    kinds = [type(e).__name__ for e in stream(_chain(model), cache=False, trace=False)]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert kinds.count("NodeFinished") == 3 and "TokenDelta" in kinds
    slow = sim_model(latency_ms=60_000)
    spec = {"name": "sync-cut", "nodes": [{"id": "a", "kind": "llm", "model": model, "prompt": "x"},
                                          {"id": "b", "kind": "llm", "model": slow, "prompt": "${a}"}]}
    run_id = None
    for event in stream(spec, cache=False, trace=False):
        run_id = event.run_id
        if isinstance(event, ev.AttemptStarted) and event.node_id == "b":
            break  # the generator is closed here: the run is cancelled and has saved a
    with SQLiteRunStore(state_home / "runs.db") as store:
        assert store.get_run(run_id).status == "cancelled"
        assert store.load_nodes(run_id)["a"].status == "succeeded"


async def test_bad_input_is_raised_from_the_iterator(state_home, sim_model):
    spec = {"name": "in", "inputs": {"q": {"type": "string"}},
            "nodes": [{"id": "a", "kind": "llm", "model": sim_model(), "prompt": "${inputs.q}"}]}
    with pytest.raises(UserError, match="missing required input 'q'"):
        async with engine_streaming.astream(spec, {}, trace=False, store=MemoryRunStore()) as events:
            async for _ in events:
                pass


async def test_a_budget_warning_is_sent_once_a_cap_is_80_percent_spent(state_home, sim_model):
    model = sim_model(output_tokens=5)
    prompt = "word " * 200  # long, so a call's worst case is close to what it uses
    nodes = [{"id": f"n{i}", "kind": "llm", "model": model, "prompt": prompt + str(i), "max_output_tokens": 5}
             for i in range(2)]
    probe = (await arun({"name": "probe", "nodes": nodes[:1]}, cache=False, trace=False)).nodes["n0"].usage.total_tokens
    # Room for the second call's worst case; after the first call about 47% is spent, after both over 90%.
    cap = probe * 2 + 30
    spec = {"name": "warn", "defaults": {"budget": {"max_tokens": cap}, "max_concurrency": 1}, "nodes": nodes}
    seen, events = await _collect(spec, cache=False, trace=False)
    assert events.result.status == "succeeded", events.result.error
    warnings = [e for e in seen if isinstance(e, ev.BudgetWarning)]
    assert len(warnings) == 1, [type(e).__name__ for e in seen]
    warning = warnings[0]
    assert warning.kind == "tokens" and warning.limit == cap and warning.spent >= 0.8 * cap
    assert warning.fraction == pytest.approx(warning.spent / cap)
    at = seen.index(warning)
    finished_calls = [e for e in seen[:at] if isinstance(e, ev.AttemptFinished)]
    assert len(finished_calls) == 2  # sent after the call that crossed the mark, not before
    assert sum(e.attempt.usage.total_tokens for e in finished_calls) == warning.spent
    assert isinstance(seen[-1], ev.RunFinished)


async def test_a_wall_budget_warning_is_sent_before_the_cap(state_home):
    spec = rh.pipeline([{"id": "wait", "kind": "python", "function": f"{rh.PREFIX}:nap", "args": {"seconds": 0.6}}],
                       defaults={"budget": {"max_wall_s": 0.5}})
    seen, _ = await _collect(spec, cache=False, trace=False)
    warnings = [e for e in seen if isinstance(e, ev.BudgetWarning)]
    assert [w.kind for w in warnings] == ["wall"] and warnings[0].limit == 0.5
    assert warnings[0].spent >= 0.8 * 0.5


async def test_tool_calls_are_reported_with_their_arguments_and_result(state_home, tmp_path):
    spec = rh.pipeline([
        {"id": "w", "kind": "tool", "tool": "write_file", "args": {"path": "out.txt", "content": "hi"}},
        {"id": "bad", "kind": "tool", "tool": "read_file", "args": {"path": "missing.txt"}, "retry": {"attempts": 1}},
    ])
    seen, events = await _collect(spec, cache=False, trace=False, workdir=tmp_path)
    started = {e.node_id: e for e in seen if isinstance(e, ev.ToolCallStarted)}
    finished = {e.node_id: e for e in seen if isinstance(e, ev.ToolCallFinished)}
    assert started["w"].tool == "write_file" and started["w"].arguments == {"path": "out.txt", "content": "hi"}
    assert finished["w"].ok and finished["w"].result["path"] == "out.txt"
    assert seen.index(started["w"]) < seen.index(finished["w"])
    assert not finished["bad"].ok and "missing.txt" in finished["bad"].error
    assert events.result.nodes["bad"].status == "failed"


async def test_an_approval_gate_shows_as_node_waiting_before_the_run_finishes_waiting(state_home, tmp_path):
    spec = rh.pipeline([{"id": "w", "kind": "tool", "tool": "write_file", "approval": "always",
                         "args": {"path": "out.txt", "content": "hi"}}])
    seen, events = await _collect(spec, cache=False, trace=False, workdir=tmp_path)
    waiting = [e for e in seen if isinstance(e, ev.NodeWaiting)]
    assert [w.node_id for w in waiting] == ["w"] and seen.index(waiting[0]) < len(seen) - 1
    assert seen[-1].status == "waiting" and events.result.status == "waiting"
    assert not any(isinstance(e, ev.ToolCallStarted) for e in seen)  # nothing ran before the decision
    assert not (tmp_path / "out.txt").exists()


async def test_each_map_element_streams_under_its_own_item(state_home, sim_model):
    model = sim_model()
    spec = rh.pipeline([
        {"id": "items", "kind": "python", "function": f"{rh.PREFIX}:listing", "args": {"n": 3}},
        {"id": "each", "kind": "map", "over": "${items}", "as": "x",
         "node": {"id": "inner", "kind": "llm", "model": model, "prompt": "item number ${x}"}},
    ])
    seen, events = await _collect(spec, cache=False, trace=False)
    by_item: dict[int, str] = {}
    for event in seen:
        if isinstance(event, ev.TokenDelta):
            assert event.node_id == "each"
            by_item[event.item] = by_item.get(event.item, "") + event.text
    assert by_item == {0: "item number 0", 1: "item number 1", 2: "item number 2"}
    assert events.result.nodes["each"].value == [by_item[0], by_item[1], by_item[2]]

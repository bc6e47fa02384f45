"""Scheduling: parallelism, limits, when: skipping, failures, map nodes, events, tools."""

from __future__ import annotations

import time

import pytest

import runtime_helpers as rh
from contextflow.providers import simulated
from contextflow.api import arun
from contextflow.core.events import AttemptFinished, NodeFinished, NodeStarted, RunFinished, RunStarted

NAP = f"{rh.PREFIX}:nap"


async def test_independent_nodes_overlap(state_home, sim_model):
    model = sim_model(latency_ms=300)
    spec = rh.pipeline(
        [
            {"id": "a", "kind": "llm", "model": model, "prompt": "first"},
            {"id": "b", "kind": "llm", "model": model, "prompt": "second"},
            {"id": "c", "kind": "python", "function": NAP, "args": {"seconds": 0.3}},
            {"id": "d", "kind": "python", "function": f"{rh.PREFIX}:blocking_nap", "args": {"seconds": 0.3}},
        ]
    )
    await arun(spec, trace=False)  # warm litellm's first-call setup out of the measurement
    simulated.reset(model)
    start = time.monotonic()
    result = await arun(spec, trace=False, cache=False)
    wall = time.monotonic() - start
    assert result.status == "succeeded"
    assert simulated.stats(model).peak_in_flight == 2
    assert wall < 0.6, f"four 0.3 s nodes took {wall:.2f} s: they did not overlap"


async def test_dependent_nodes_wait_for_inputs(state_home):
    spec = rh.pipeline(
        [
            {"id": "a", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": 1, "b": 2}},
            {"id": "b", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": "${a}", "b": 10}},
            {"id": "c", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": "${b}", "b": "${a}"}},
        ],
        outputs={"total": "${c}"},
    )
    result = await arun(spec, trace=False)
    assert result.outputs == {"total": 16}


async def test_global_concurrency_limit(state_home):
    rh.reset_peak()
    nodes = [{"id": f"n{i}", "kind": "python", "function": NAP, "args": {"seconds": 0.05}} for i in range(12)]
    spec = rh.pipeline(nodes, defaults={"max_concurrency": 3})
    result = await arun(spec, trace=False)
    assert result.status == "succeeded"
    assert rh.peak_active == 3


async def test_per_provider_and_per_model_limits(state_home, sim_model):
    limited = sim_model(latency_ms=60)
    other = sim_model(latency_ms=60)
    nodes = [{"id": f"a{i}", "kind": "llm", "model": limited, "prompt": f"p{i}"} for i in range(6)]
    nodes += [{"id": f"b{i}", "kind": "llm", "model": other, "prompt": f"q{i}"} for i in range(6)]
    spec = rh.pipeline(nodes, defaults={"provider_limits": {limited: 2, "sim": 3}, "max_concurrency": 32})
    await arun(rh.pipeline(nodes[:1]), trace=False, cache=False)  # litellm's first-call setup
    simulated.reset(limited)
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "succeeded"
    assert simulated.stats(limited).peak_in_flight == 2  # the model's own limit
    assert simulated.provider_stats().peak_in_flight == 3  # the provider-wide limit
    assert simulated.provider_stats().calls == 12


async def test_an_attempts_latency_excludes_time_queued_behind_a_limit(state_home, sim_model):
    model = sim_model(latency_ms=100)
    nodes = [{"id": f"n{i}", "kind": "llm", "model": model, "prompt": f"p{i}"} for i in range(3)]
    await arun(rh.pipeline(nodes[:1]), trace=False, cache=False)  # litellm's first-call setup
    events: list = []
    result = await arun(rh.pipeline(nodes, defaults={"provider_limits": {model: 1}}), trace=False, cache=False,
                        sinks=[events.append])
    assert result.status == "succeeded"
    latencies = sorted(e.attempt.latency_s for e in events if isinstance(e, AttemptFinished))
    assert len(latencies) == 3
    # Run one at a time, the third call queued ~0.2 s; its own span still covers only its call.
    assert latencies[-1] < 0.19, latencies
    durations = sorted(r.duration_s for r in result.nodes.values())
    assert durations[-1] >= 0.28, durations  # the node's own span does include the wait


async def test_when_false_skips_node_and_what_only_depends_on_it(state_home):
    add = f"{rh.PREFIX}:add"
    spec = rh.pipeline(
        [
            {"id": "a", "kind": "python", "function": add, "args": {"a": 1}},
            {"id": "gated", "kind": "python", "function": add, "args": {"a": "${a}"}, "when": "${a} > 5"},
            {"id": "only_gated", "kind": "python", "function": add, "args": {"a": "${gated}"}},
            {"id": "after_only", "kind": "python", "function": add, "args": {"a": "${only_gated}"}},
            {"id": "mixed", "kind": "python", "function": add, "args": {"a": "${a}"}, "depends_on": ["gated"]},
            {"id": "runs", "kind": "python", "function": add, "args": {"a": "${a}", "b": 1}, "when": "${a} == 1"},
        ]
    )
    result = await arun(spec, trace=False)
    status = {n: r.status for n, r in result.nodes.items()}
    assert status == {
        "a": "succeeded", "gated": "skipped", "only_gated": "skipped", "after_only": "skipped",
        "mixed": "succeeded", "runs": "succeeded",
    }
    assert result.status == "succeeded"
    assert result.nodes["runs"].value == 2


async def test_failure_blocks_dependents_but_not_other_branches(state_home):
    spec = rh.pipeline(
        [
            {"id": "bad", "kind": "python", "function": f"{rh.PREFIX}:boom", "args": {"message": "kaput"}},
            {"id": "after_bad", "kind": "python", "function": NAP, "args": {"seconds": 0, "value": "${bad}"}},
            {"id": "fine", "kind": "python", "function": NAP, "args": {"seconds": 0.01, "value": 7}},
        ]
    )
    result = await arun(spec, trace=False)
    assert result.status == "failed"
    assert result.nodes["bad"].status == "failed"
    assert "kaput" in (result.nodes["bad"].error or "")
    assert result.nodes["after_bad"].status == "pending"
    assert result.nodes["fine"].status == "succeeded"


async def test_retryable_python_error_is_retried(state_home, tmp_path):
    spec = rh.pipeline(
        [{"id": "f", "kind": "python", "function": f"{rh.PREFIX}:flaky_connection",
          "args": {"counter": str(tmp_path / "count")}, "retry": {"attempts": 2, "backoff_s": 0.01}}]
    )
    result = await arun(spec, trace=False)
    assert result.status == "succeeded"
    assert [a.ok for a in result.nodes["f"].attempts] == [False, True]


async def test_map_fans_out_concurrently_and_keeps_order(state_home, sim_model):
    model = sim_model(latency_ms=100)
    spec = rh.pipeline(
        [
            {"id": "items", "kind": "python", "function": f"{rh.PREFIX}:listing", "args": {"n": 6}},
            {"id": "each", "kind": "map", "over": "${items}", "as": "x", "max_concurrency": 3,
             "node": {"id": "inner", "kind": "llm", "model": model, "prompt": "item ${x}"}},
        ],
        outputs={"all": "${each}"},
    )
    start = time.monotonic()
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "succeeded"
    assert result.outputs["all"] == [f"item {i}" for i in range(6)]
    assert simulated.stats(model).peak_in_flight == 3
    assert time.monotonic() - start < 1.0
    assert result.nodes["each"].cost_usd > 0
    assert sorted(a.item for a in result.nodes["each"].attempts) == list(range(6))


async def test_events_describe_the_run(state_home, sim_model):
    model = sim_model()
    events: list = []
    spec = rh.pipeline([{"id": "ask", "kind": "llm", "model": model, "prompt": "hello"}])
    result = await arun(spec, sinks=[events.append], trace=False, cache=False)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert kinds.index("NodeStarted") < kinds.index("AttemptStarted") < kinds.index("AttemptFinished")
    assert kinds.index("AttemptFinished") < kinds.index("NodeFinished")
    attempt = next(e for e in events if isinstance(e, AttemptFinished)).attempt
    assert attempt.ok and attempt.usage.input_tokens > 0 and attempt.cost_usd > 0
    finished = next(e for e in events if isinstance(e, NodeFinished))
    assert finished.cost_usd == pytest.approx(result.cost_usd)
    run_finished = events[-1]
    assert isinstance(run_finished, RunFinished) and run_finished.status == "succeeded"
    assert isinstance(events[0], RunStarted) and events[0].node_ids == ["ask"]
    assert sum(isinstance(e, NodeStarted) for e in events) == 1


async def test_write_file_tool_is_confined_to_the_working_tree(state_home, tmp_path):
    spec = rh.pipeline(
        [
            {"id": "inside", "kind": "tool", "tool": "write_file", "args": {"path": "out/a.txt", "content": "hi"}},
            {"id": "outside", "kind": "tool", "tool": "write_file", "args": {"path": "../escape.txt", "content": "x"}},
        ]
    )
    work = tmp_path / "tree"
    work.mkdir()
    result = await arun(spec, trace=False, workdir=work)
    assert (work / "out" / "a.txt").read_text() == "hi"
    assert result.nodes["outside"].status == "failed"
    assert "outside the working tree" in (result.nodes["outside"].error or "")
    assert not (tmp_path / "escape.txt").exists()


async def test_unknown_input_and_missing_input_are_user_errors(state_home):
    from contextflow.core.errors import UserError

    spec = rh.pipeline(
        [{"id": "a", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": "${inputs.x}"}}],
        inputs={"x": {"type": "integer"}},
    )
    with pytest.raises(UserError, match="missing required input 'x'"):
        await arun(spec, trace=False)
    with pytest.raises(UserError, match="unknown input"):
        await arun(spec, {"x": 1, "y": 2}, trace=False)
    with pytest.raises(UserError, match="should be integer"):
        await arun(spec, {"x": "one"}, trace=False)


async def test_released_nodes_start_at_once_when_the_pool_is_full(state_home):
    # Width-8 chains, 3 deep, with exactly 8 workers: each finishing node must hand its slot to
    # its dependent right away (a regression: freed workers were counted late and dependents
    # waited for another node to finish).
    nodes = []
    for depth in range(3):
        for i in range(8):
            args = {"seconds": 0.15, "value": f"${{d{depth - 1}_{i}}}"} if depth else {"seconds": 0.15}
            nodes.append({"id": f"d{depth}_{i}", "kind": "python", "function": NAP, "args": args})
    spec = rh.pipeline(nodes, defaults={"max_concurrency": 8})
    start = time.monotonic()
    result = await arun(spec, trace=False)
    wall = time.monotonic() - start
    assert result.status == "succeeded"
    assert wall < 0.45 + 0.2, f"three 0.15 s layers took {wall:.2f} s"


async def test_blocking_python_nodes_run_in_parallel_threads(state_home):
    nodes = [{"id": f"b{i}", "kind": "python", "function": f"{rh.PREFIX}:blocking_nap", "args": {"seconds": 0.2}}
             for i in range(6)]
    start = time.monotonic()
    result = await arun(rh.pipeline(nodes), trace=False)
    assert result.status == "succeeded"
    assert time.monotonic() - start < 0.6  # six 0.2 s sleeps in threads, not one after another


def test_daemon_pool_spreads_a_burst_over_threads():
    import threading

    from contextflow.runtime.executor import DaemonThreadPool

    pool = DaemonThreadPool(4)
    barrier = threading.Barrier(4, timeout=5)
    futures = [pool.submit(barrier.wait) for _ in range(4)]  # deadlocks unless 4 threads run at once
    assert sorted(f.result(timeout=10) for f in futures) == [0, 1, 2, 3]
    pool.shutdown()

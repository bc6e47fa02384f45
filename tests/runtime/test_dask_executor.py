"""Pipelines on a local Dask cluster (2 worker processes, loopback only) behave like local runs."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from contextflow.api import arun  # noqa: E402
from contextflow.core.events import AttemptFinished  # noqa: E402
from contextflow.runtime.dask_executor import DaskExecutor  # noqa: E402

pytestmark = pytest.mark.slow


def _accounting(result):
    return (
        result.status,
        result.outputs,
        round(result.cost_usd, 12),
        result.usage.input_tokens,
        result.usage.output_tokens,
        {k: v.status for k, v in result.nodes.items()},
    )


SPEC = {
    "name": "fanout",
    # Declared prices live in the driver's catalog; the sim provider on a worker must charge them too.
    "models": {"sim/dask": {"input_cost_per_token": 3e-6, "output_cost_per_token": 7e-6}},
    "inputs": {"topic": {"type": "string"}},
    "nodes": [
        *[
            {"id": f"ask{i}", "kind": "llm", "model": "sim/dask", "prompt": f"question {i} on ${{inputs.topic}}",
             "params": {"sim": {"latency_ms": 50}}}
            for i in range(4)
        ],
        {"id": "cites", "kind": "python", "function": "contextflow.apps.repo_qa:find_citations",
         "args": {"text": "${ask0.output} see a.py:3-4"}, "resources": {"gpus": 1}},
        {"id": "joined", "kind": "llm", "model": "sim/dask",
         "prompt": "${ask0.output} ${ask1.output} ${ask2.output} ${ask3.output}"},
    ],
    "outputs": {"answer": "${joined.output}", "cites": "${cites.output}"},
}


@pytest.fixture(scope="module")
def cluster():
    executor = DaskExecutor(n_workers=2)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(executor.start())
    yield executor, loop
    loop.run_until_complete(executor.aclose())
    loop.close()


def test_same_results_and_accounting_as_the_local_executor(cluster, tmp_path: Path) -> None:
    executor, loop = cluster
    inputs = {"topic": "caching"}
    on_dask = loop.run_until_complete(arun(SPEC, inputs, project=tmp_path / "d", executor=executor, cache=False))
    local = loop.run_until_complete(arun(SPEC, inputs, project=tmp_path / "l", cache=False))
    assert on_dask.status == "succeeded"
    assert _accounting(on_dask) == _accounting(local)
    workers = executor.client.scheduler_info()
    assert all(w["host"] == "127.0.0.1" for w in workers["workers"].values())
    # The cluster has no GPU workers: the hint is dropped (and recorded), not left unschedulable.
    assert ("cites", {"GPU": 1.0}) in executor.dropped_resources


def test_a_killed_worker_loses_no_finished_node(cluster, tmp_path: Path) -> None:
    executor, loop = cluster
    marks = tmp_path / "marks"
    marks.mkdir()
    step = lambda name, seconds: {  # noqa: E731
        "id": name, "kind": "tool", "tool": "run_command",
        "args": {"command": f"sh -c 'echo {name} >> marks/{name}; sleep {seconds}'"},
    }
    spec = {
        "name": "killable",
        "nodes": [
            step("first", 0.1),
            {**step("slow_a", 3), "depends_on": ["first"]},
            {**step("slow_b", 3), "depends_on": ["first"]},
            {**step("last", 0.1), "depends_on": ["slow_a", "slow_b"]},
        ],
    }

    async def kill_one_worker_when_slow_steps_start() -> None:
        while not (marks / "slow_a").exists() or not (marks / "slow_b").exists():
            await asyncio.sleep(0.05)
        pids = await executor.client.run(os.getpid)
        os.kill(next(iter(pids.values())), signal.SIGKILL)

    async def scenario():
        killer = asyncio.ensure_future(kill_one_worker_when_slow_steps_start())
        result = await arun(spec, {}, project=tmp_path, workdir=tmp_path, executor=executor, cache=False)
        await killer
        return result

    result = loop.run_until_complete(asyncio.wait_for(scenario(), timeout=120))
    assert result.status == "succeeded", result.error
    assert (marks / "first").read_text().split() == ["first"]  # finished before the kill: never rerun
    assert (marks / "last").read_text().split() == ["last"]
    # One of the slow steps was on the killed worker and ran again elsewhere.
    reruns = len((marks / "slow_a").read_text().split()) + len((marks / "slow_b").read_text().split())
    assert reruns == 3


def _always_failing(fault: str) -> dict:
    return {
        "name": f"always-{fault}",
        "nodes": [{"id": "ask", "kind": "llm", "model": "sim/dask", "prompt": "anything",
                   "params": {"sim": {"failure_rates": {fault: 1.0}}},
                   "retry": {"attempts": 3, "backoff_s": 0.01, "jitter": 0}}],
    }


@pytest.mark.parametrize(("fault", "kind", "tries"), [("429", "rate_limit", 3), ("auth", "auth", 1)])
def test_provider_errors_from_workers_are_retried_like_local_ones(cluster, tmp_path: Path, fault, kind, tries) -> None:
    # litellm's errors do not unpickle on their own; if they reached the driver as bare
    # exceptions a rate limit would look permanent and never be retried.
    executor, loop = cluster
    spec = _always_failing(fault)
    on_dask = loop.run_until_complete(arun(spec, {}, project=tmp_path / "d", executor=executor, cache=False))
    local = loop.run_until_complete(arun(spec, {}, project=tmp_path / "l", cache=False))
    attempts = [(a.ok, a.error_type) for a in on_dask.nodes["ask"].attempts]
    assert attempts == [(False, kind)] * tries
    assert attempts == [(a.ok, a.error_type) for a in local.nodes["ask"].attempts]
    assert on_dask.status == local.status == "failed"


def test_cost_cap_holds_when_calls_run_on_several_workers(cluster, tmp_path: Path) -> None:
    executor, loop = cluster
    sim = {"latency_ms": 30, "latency_dist": "uniform", "latency_spread": 20, "output_tokens": 200,
           "failure_rates": {"429": 0.2, "500": 0.1}}
    cap = 0.03  # each call costs ~$0.002 and reserves ~$0.003: about a third of the nodes fit
    spec = {
        "name": "capped",
        "models": {"sim/capped": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5}},
        "defaults": {"max_concurrency": 48, "budget": {"max_cost_usd": cap}},
        "nodes": [{"id": f"n{i}", "kind": "llm", "model": "sim/capped", "prompt": f"question number {i}",
                   "max_output_tokens": 300, "params": {"sim": sim},
                   "retry": {"attempts": 4, "backoff_s": 0.01, "jitter": 0.5}} for i in range(32)],
    }
    events: list = []
    result = loop.run_until_complete(
        arun(spec, {}, project=tmp_path, executor=executor, cache=False, sinks=[events.append], trace=False)
    )
    spent = sum(e.attempt.cost_usd for e in events if isinstance(e, AttemptFinished))
    assert result.status == "budget_exceeded"
    assert spent <= cap
    assert result.cost_usd == pytest.approx(spent)
    done = [r for r in result.nodes.values() if r.status == "succeeded"]
    assert 3 < len(done) < 32
    assert any(r.error and "budget" in r.error for r in result.nodes.values())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "dask", "--address", "scheduler-without-port"], "is not a Dask scheduler address"),
        (["--executor", "dask", "--address", "http://127.0.0.1:8786"], "is not a Dask scheduler address"),
        (["--address", "tcp://127.0.0.1:8786"], "--address needs --executor dask"),
        (["--executor", "ray"], "unknown executor 'ray'"),
        (["--executor", "dask", "--address", "UNREACHABLE"], "could not reach the Dask scheduler"),
    ],
)
def test_cli_executor_errors_exit_2_without_a_traceback(state_home, tmp_path: Path, monkeypatch, capsys,
                                                        args, message) -> None:
    import sys

    from contextflow.cli import main
    from contextflow.runtime import dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT_S", 1.0)
    args = [a.replace("UNREACHABLE", f"tcp://127.0.0.1:{_free_port()}") for a in args]  # nothing listens there
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: p\nnodes:\n  - {id: ask, kind: llm, model: sim/echo, prompt: hi}\n")
    monkeypatch.setattr(sys, "argv", ["contextflow", "run", str(pipeline), "--json", "--no-trace", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def on_gpu_worker() -> bool:
    """A python node that reports whether the worker running it offers a GPU resource."""
    from distributed import get_worker

    return get_worker().state.total_resources.get("GPU", 0) > 0


async def test_gpu_hints_run_on_gpu_workers_only(tmp_path: Path) -> None:
    from distributed import LocalCluster, Worker

    # One worker advertises GPU=1, the other nothing (threads in this process: quick to start).
    async with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, resources={"GPU": 1},
                            host="127.0.0.1", protocol="tcp", dashboard_address=None, asynchronous=True) as cluster:
        async with Worker(cluster.scheduler_address, host="127.0.0.1", nthreads=2):
            executor = DaskExecutor(cluster.scheduler_address)
            nodes = [{"id": f"gpu{i}", "kind": "python", "function": f"{__name__}:on_gpu_worker",
                      "resources": {"gpus": 1}} for i in range(8)]
            nodes.append({"id": "tpu", "kind": "python", "function": f"{__name__}:on_gpu_worker",
                          "resources": {"tpus": 1}})
            try:
                result = await arun({"name": "placed", "nodes": nodes}, {}, project=tmp_path, executor=executor,
                                    allow_imports=[__name__], trace=False)
            finally:
                await executor.aclose()
    assert result.status == "succeeded", result.error
    assert all(result.nodes[f"gpu{i}"].value is True for i in range(8))
    assert executor.dropped_resources == [("tpu", {"TPUS": 1.0})]  # no worker has it: run anywhere


def test_a_budget_stopped_run_resumes_on_dask_without_rerunning_finished_nodes(cluster, tmp_path: Path) -> None:
    from contextflow.dags.spec import BudgetSpec
    from contextflow.api import aresume

    executor, loop = cluster
    spec = {
        "name": "stops",
        "models": {"sim/resumable": {"input_cost_per_token": 1e-5, "output_cost_per_token": 1e-5}},
        "defaults": {"max_concurrency": 1, "budget": {"max_cost_usd": 0.004}},
        "nodes": [{"id": f"n{i}", "kind": "llm", "model": "sim/resumable", "prompt": f"step {i} " * 20,
                   "max_output_tokens": 100, "params": {"sim": {"output_tokens": 100}},
                   **({"depends_on": [f"n{i - 1}"]} if i else {})} for i in range(4)],
    }
    first = loop.run_until_complete(arun(spec, {}, project=tmp_path, executor=executor, cache=False))
    assert first.status == "budget_exceeded"
    finished = {n for n, r in first.nodes.items() if r.status == "succeeded"}
    assert finished and len(finished) < 4
    resumed = loop.run_until_complete(
        aresume(first.run_id, project=tmp_path, executor=executor, budget=BudgetSpec(max_cost_usd=1.0))
    )
    assert resumed.status == "succeeded"
    for node_id in finished:  # kept from the first run, not called again
        assert resumed.nodes[node_id].attempts == first.nodes[node_id].attempts

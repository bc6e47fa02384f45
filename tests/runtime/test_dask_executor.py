"""Pipelines on a local Dask cluster (2 worker processes, loopback only) behave like local runs."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from contextflow.runtime import arun  # noqa: E402
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
    workers = loop.run_until_complete(executor.client.scheduler_info(n_workers=-1)) if False else executor.client.scheduler_info()
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

"""Many independent runs with simulated model latency: the local executor vs Dask, in one run.

Each run is a small pipeline (4 simulated model calls of ``--latency-ms`` in parallel, then a
joining call); ``--runs`` of them are started at once. The local executor runs everything in this
process; the Dask executor ships every call to a LocalCluster (2 worker processes on 127.0.0.1)
while scheduling, budgets and checkpoints stay here. The per-task overhead Dask adds is measured
separately on no-op work items submitted one after another.

    python benchmarks/distributed_scaling.py [--runs 40] [--latency-ms 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time

import contextflow  # noqa: F401  (offline settings)
from contextflow.api import arun
from contextflow.runtime.dask_executor import DaskExecutor
from contextflow.runtime.executor import LocalExecutor, Work


def pipeline(latency_ms: float) -> dict:
    sim = {"latency_ms": latency_ms}
    return {
        "name": "scaling",
        "inputs": {"n": {"type": "integer"}},
        "defaults": {"max_concurrency": 64},
        "nodes": [
            *[{"id": f"ask{i}", "kind": "llm", "model": "sim/scale", "prompt": f"part {i} of ${{inputs.n}}",
               "params": {"sim": sim}} for i in range(4)],
            {"id": "join", "kind": "llm", "model": "sim/scale", "params": {"sim": sim},
             "prompt": "${ask0.output} ${ask1.output} ${ask2.output} ${ask3.output}"},
        ],
        "outputs": {"answer": "${join.output}"},
    }


async def many_runs(runs: int, latency_ms: float, executor: object | None) -> float:
    spec = pipeline(latency_ms)
    with tempfile.TemporaryDirectory() as project:
        start = time.perf_counter()
        results = await asyncio.gather(*(
            arun(spec, {"n": i}, project=project, executor=executor, cache=False, trace=False) for i in range(runs)
        ))
        elapsed = time.perf_counter() - start
    assert all(r.status == "succeeded" for r in results), [r.error for r in results if r.status != "succeeded"]
    return elapsed


def noop() -> int:
    return 1


async def per_task_ms(executor: object, tasks: int) -> float:
    work = Work("noop", "python", noop)
    await executor.submit(work)  # warm
    start = time.perf_counter()
    for _ in range(tasks):
        await executor.submit(work)
    return (time.perf_counter() - start) / tasks * 1000


async def raw_client_ms(client: object, tasks: int) -> float:
    """Plain ``client.submit`` round trips: the share of the overhead that is Dask's own."""
    await client.submit(noop, pure=False)
    start = time.perf_counter()
    for _ in range(tasks):
        await client.submit(noop, pure=False)
    return (time.perf_counter() - start) / tasks * 1000


async def main_async(args: argparse.Namespace) -> dict:
    await many_runs(4, args.latency_ms, None)  # warm: litellm and the tokenizer load once, as on the workers
    local = await many_runs(args.runs, args.latency_ms, None)
    dask = DaskExecutor(n_workers=2, threads_per_worker=32)
    await dask.start()
    try:
        await many_runs(4, args.latency_ms, dask)  # warm: workers import litellm once
        remote = await many_runs(args.runs, args.latency_ms, dask)
        local_executor = LocalExecutor()
        local_ms = await per_task_ms(local_executor, args.tasks)
        await local_executor.aclose()
        dask_ms = await per_task_ms(dask, args.tasks)
        raw_ms = await raw_client_ms(dask.client, args.tasks)
    finally:
        await dask.aclose()
    calls = args.runs * 5
    figures = {
        "runs": args.runs, "latency_ms": args.latency_ms,
        "local_runs_per_s": round(args.runs / local, 2), "dask_runs_per_s": round(args.runs / remote, 2),
        "dask_over_local": round(local / remote, 3),
        "local_ms_per_task": round(local_ms, 3), "dask_ms_per_task": round(dask_ms, 3),
        "dask_overhead_ms_per_task": round(dask_ms - local_ms, 3),
        "dask_plain_client_ms_per_task": round(raw_ms, 3),
    }
    print(f"{args.runs} runs x 5 calls of {args.latency_ms:g} ms ({calls} calls; critical path 2 x {args.latency_ms:g} ms)")
    print(f"  local executor: {local:.2f} s -> {figures['local_runs_per_s']} runs/s")
    print(f"  dask executor : {remote:.2f} s -> {figures['dask_runs_per_s']} runs/s (ratio dask/local {figures['dask_over_local']})")
    print(f"  per no-op task: local {local_ms:.3f} ms, dask {dask_ms:.3f} ms -> Dask adds {figures['dask_overhead_ms_per_task']:.3f} ms")
    print(f"  plain client.submit round trip (no contextflow wrapper): {raw_ms:.3f} ms")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

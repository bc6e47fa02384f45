"""Per-node scheduler overhead on no-op DAGs of 1k nodes: contextflow vs LangGraph vs Hamilton.

Every node does nothing (an ``async def`` returning a constant for contextflow and LangGraph, a
plain function for Hamilton, which is synchronous), so the wall time of a run divided by its node
count is what each engine spends per node. Two shapes: a chain (each node depends on the previous
one) and a wide DAG (independent nodes). Graph construction/compilation is outside the timing
for all three; contextflow's timing includes everything ``arun`` does for a run (run-store row,
events, results).

contextflow runs with events on (a sink receives every event) in three checkpoint modes:
``off`` (no run store writes: the same work as the peers, which keep no checkpoints either),
``background`` and ``node`` (the default; one SQLite commit per event-loop turn before dependents
start). The headline ``us_per_node`` is the ``off`` figure, compared with the peers; the others
show what durability costs.

    python benchmarks/scheduler_overhead.py [--nodes 1000] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import scratch_dir

import contextflow  # noqa: F401  (offline settings)

SHAPES = ("chain", "wide")


async def _noop(x: Any = None) -> int:
    return 1


def _contextflow_plan(shape: str, n: int) -> Any:
    from contextflow.dags.imports import register_function
    from contextflow.dags.compiler import compile
    from contextflow.dags.spec import PipelineSpec

    register_function(_noop, "benchmarks.scheduler_overhead:noop")
    fn = "benchmarks.scheduler_overhead:noop"
    nodes: list[dict[str, Any]] = []
    for i in range(n):
        node: dict[str, Any] = {"id": f"n{i}", "kind": "python", "function": fn}
        if shape == "chain" and i:
            node["args"] = {"x": f"${{n{i - 1}}}"}
        nodes.append(node)
    return compile(PipelineSpec.model_validate({"name": f"noop-{shape}", "nodes": nodes}))


def time_contextflow(shape: str, n: int, repeats: int, checkpoint: str) -> float:
    from contextflow.api import arun

    plan = _contextflow_plan(shape, n)
    events: list[Any] = []

    async def once() -> float:
        events.clear()
        start = time.perf_counter()
        result = await arun(plan, sinks=[events.append], trace=False, cache=False, checkpoint=checkpoint)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        assert result.status == "succeeded", result.error
        assert len(events) >= 2 * n  # events really were on: started + finished per node
        return elapsed

    async def all_runs() -> list[float]:
        await once()  # warm-up
        return [await once() for _ in range(repeats)]

    return statistics.median(asyncio.run(all_runs())) / n * 1e6


def time_langgraph(shape: str, n: int, repeats: int) -> float:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        x: int

    async def noop(state: State) -> dict[str, Any]:
        return {}

    graph = StateGraph(State)
    for i in range(n):
        graph.add_node(f"n{i}", noop)
    if shape == "chain":
        graph.add_edge(START, "n0")
        for i in range(1, n):
            graph.add_edge(f"n{i - 1}", f"n{i}")
        graph.add_edge(f"n{n - 1}", END)
    else:
        for i in range(n):
            graph.add_edge(START, f"n{i}")
            graph.add_edge(f"n{i}", END)
    app = graph.compile()
    config = {"recursion_limit": n + 10}

    async def all_runs() -> list[float]:
        await app.ainvoke({"x": 0}, config)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            await app.ainvoke({"x": 0}, config)
            times.append(time.perf_counter() - start)
        return times

    return statistics.median(asyncio.run(all_runs())) / n * 1e6


def time_hamilton(shape: str, n: int, repeats: int) -> float:
    from hamilton import driver

    # Hamilton walks dependencies recursively: a 1k chain needs a deeper stack than the default.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * n))
    module = types.ModuleType(f"noop_{shape}_{n}")
    source = []
    for i in range(n):
        param = f"n{i - 1}: int" if shape == "chain" and i else ""
        source.append(f"def n{i}({param}) -> int:\n    return 1\n")
    exec("\n".join(source), module.__dict__)  # noqa: S102  (generated no-op functions)
    for i in range(n):
        getattr(module, f"n{i}").__module__ = module.__name__
    sys.modules[module.__name__] = module
    dr = driver.Builder().with_modules(module).build()
    wanted = [f"n{n - 1}"] if shape == "chain" else [f"n{i}" for i in range(n)]
    dr.execute(wanted)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dr.execute(wanted)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / n * 1e6


def _measure(label: str, fn: Callable[[], float]) -> float:
    value = fn()
    print(f"  {label:<34} {value:9.1f} us/node", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    home = str(scratch_dir("cf-bench-"))
    os.environ["CONTEXTFLOW_HOME"] = home  # the run store goes to a scratch folder
    n, repeats = args.nodes, args.repeats
    figures: dict[str, dict[str, float]] = {}
    for shape in SHAPES:
        print(f"{shape} DAG, {n} no-op nodes (median of {repeats} runs):", flush=True)
        figures[shape] = {
            "contextflow": _measure("contextflow (events on, no ckpt)", lambda: time_contextflow(shape, n, repeats, "off")),
            "contextflow_background": _measure(
                "contextflow (background ckpt)", lambda: time_contextflow(shape, n, repeats, "background")
            ),
            "contextflow_node": _measure(
                "contextflow (ckpt per turn, default)", lambda: time_contextflow(shape, n, repeats, "node")
            ),
            "langgraph": _measure("langgraph (ainvoke)", lambda: time_langgraph(shape, n, repeats)),
            "hamilton": _measure("hamilton (execute)", lambda: time_hamilton(shape, n, repeats)),
        }
        f = figures[shape]
        print(
            f"  ratios: langgraph/contextflow {f['langgraph'] / f['contextflow']:.1f}x,"
            f" hamilton/contextflow {f['hamilton'] / f['contextflow']:.1f}x", flush=True
        )

    def worst(key: str) -> float:
        return round(max(figures[s][key] for s in SHAPES), 2)

    summary = {
        "nodes": n,
        "us_per_node": worst("contextflow"),
        "us_per_node_checkpoint_background": worst("contextflow_background"),
        "us_per_node_checkpoint_node": worst("contextflow_node"),
        "langgraph_us_per_node": worst("langgraph"),
        "hamilton_us_per_node": worst("hamilton"),
        # per shape, then the least favourable: a ratio never mixes two shapes
        "speedup_vs_langgraph": round(min(figures[s]["langgraph"] / figures[s]["contextflow"] for s in SHAPES), 2),
        "speedup_vs_hamilton": round(min(figures[s]["hamilton"] / figures[s]["contextflow"] for s in SHAPES), 2),
        "by_shape": {s: {k: round(v, 2) for k, v in figures[s].items()} for s in SHAPES},
    }
    print(
        f"worst case: contextflow {summary['us_per_node']} us/node (target <= 20), "
        f"{summary['speedup_vs_langgraph']}x faster than LangGraph (target >= 5), "
        f"Hamilton/contextflow {summary['speedup_vs_hamilton']}x"
    )
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()

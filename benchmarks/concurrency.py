"""Concurrency: a width-64, depth-4 DAG of 100 ms simulated model calls, wall time vs critical path.

Every node is an ``llm`` node on ``sim/bench`` (the simulated provider, called through
``litellm.acompletion``, so litellm's own per-call work is included) with a fixed 100 ms latency.
Node i of layer k depends on nodes i and i+1 (mod 64) of layer k-1, so the critical path is
4 x 100 ms = 400 ms, and a scheduler that overlaps everything it may finishes close to it.

Baseline in the same run: the same calls made by hand-written asyncio, one ``asyncio.gather``
per layer (no retries, cache, budget, events or checkpoints). Also measured: how long litellm
occupies the process per call (a batch of zero-latency calls), and from it the floor that no
scheduler can beat under the GIL, depth x (latency + width x that time).

    python benchmarks/concurrency.py [--width 64] [--depth 4] [--latency-ms 100] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import scratch_dir

import contextflow  # noqa: F401  (offline settings)

MODEL = "sim/bench"


def _spec(width: int, depth: int) -> Any:
    from contextflow.dags.spec import PipelineSpec

    nodes: list[dict[str, Any]] = []
    for layer in range(depth):
        for i in range(width):
            prompt = f"layer {layer} item {i}"
            if layer:
                prompt += f" after ${{l{layer - 1}_{i}}} and ${{l{layer - 1}_{(i + 1) % width}}}"
            nodes.append({"id": f"l{layer}_{i}", "kind": "llm", "model": MODEL, "prompt": prompt,
                          "max_output_tokens": 16})
    return PipelineSpec.model_validate(
        {"name": "concurrency", "nodes": nodes, "defaults": {"max_concurrency": width, "cache": {"enabled": False}}}
    )


async def _contextflow_once(spec: Any) -> float:
    from contextflow.api import arun

    events: list[Any] = []
    start = time.perf_counter()
    result = await arun(spec, sinks=[events.append], trace=False, cache=False)
    elapsed = time.perf_counter() - start
    assert result.status == "succeeded", result.error
    return elapsed


async def _baseline_once(width: int, depth: int) -> float:
    from contextflow.runtime.calls import litellm_module

    litellm = litellm_module()
    start = time.perf_counter()
    previous: list[str] = [""] * width
    for layer in range(depth):
        calls = [
            litellm.acompletion(
                model=MODEL, max_tokens=16,
                messages=[{"role": "user", "content": f"layer {layer} item {i} {previous[i][:20]}"}],
            )
            for i in range(width)
        ]
        responses = await asyncio.gather(*calls)
        previous = [r.choices[0].message.content for r in responses]
    return time.perf_counter() - start


async def _litellm_cpu_per_call(calls: int = 256) -> float:
    """Seconds one call to a zero-latency sim model occupies the process, with calls made
    concurrently: with no latency to wait on, a batch's wall time is its CPU work serialised by
    the GIL (litellm's helper threads included), which is what a layer of calls pays in turn."""
    from contextflow.providers import simulated
    from contextflow.runtime.calls import litellm_module

    litellm = litellm_module()
    simulated.configure("sim/bench-zero", latency_ms=0.0, output_tokens=8)

    async def batch(n: int) -> None:
        await asyncio.gather(*(litellm.acompletion(model="sim/bench-zero", max_tokens=16,
                                                   messages=[{"role": "user", "content": f"item {i}"}])
                               for i in range(n)))

    await batch(32)
    start = time.perf_counter()
    await batch(calls)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    os.environ["CONTEXTFLOW_HOME"] = str(scratch_dir("cf-bench-"))

    from contextflow.providers import simulated
    from contextflow.runtime.calls import litellm_module

    litellm_module()
    simulated.configure(MODEL, latency_ms=args.latency_ms, output_tokens=8)
    spec = _spec(args.width, args.depth)
    critical = args.depth * args.latency_ms / 1000.0

    async def measure() -> tuple[list[float], list[float]]:
        await _baseline_once(args.width, 1)  # litellm's first-call setup
        ours, baseline = [], []
        for _ in range(args.repeats):
            ours.append(await _contextflow_once(spec))
            baseline.append(await _baseline_once(args.width, args.depth))
        return ours, baseline

    ours, baseline = asyncio.run(measure())
    cpu_per_call = asyncio.run(_litellm_cpu_per_call())
    # Under the GIL a layer's calls spend their CPU one after another, so no scheduler on one core
    # can finish before depth x (latency + width x CPU per call).
    floor = args.depth * (args.latency_ms / 1000.0 + args.width * cpu_per_call)
    wall, base = statistics.median(ours), statistics.median(baseline)
    calls = args.width * args.depth
    print(f"{args.width} x {args.depth} DAG, {calls} calls of {args.latency_ms:g} ms via litellm + sim provider")
    print(f"  critical path             {critical * 1000:8.1f} ms")
    print(f"  contextflow               {wall * 1000:8.1f} ms  ({wall / critical:.3f}x critical path; runs: "
          + ", ".join(f"{t * 1000:.0f}" for t in ours) + ")")
    print(f"  asyncio.gather per layer  {base * 1000:8.1f} ms  ({base / critical:.3f}x critical path)")
    print(f"  contextflow / hand-written asyncio: {wall / base:.3f}x (target: wall <= 1.1x critical path)")
    print(f"  litellm work per call {cpu_per_call * 1000:.3f} ms -> floor under the GIL {floor * 1000:.1f} ms"
          f" ({floor / critical:.3f}x critical path; contextflow at {wall / floor:.3f}x that floor)")
    if args.json:
        print(json.dumps({
            "width": args.width, "depth": args.depth, "latency_ms": args.latency_ms,
            "critical_path_s": critical, "wall_s": round(wall, 4), "wall_over_critical_path": round(wall / critical, 4),
            "baseline_gather_wall_s": round(base, 4), "baseline_over_critical_path": round(base / critical, 4),
            "contextflow_over_baseline": round(wall / base, 4),
            "litellm_ms_per_call": round(cpu_per_call * 1000, 4), "cpu_floor_over_critical_path": round(floor / critical, 4),
        }))


if __name__ == "__main__":
    main()

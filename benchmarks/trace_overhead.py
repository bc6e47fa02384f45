"""What tracing costs: scheduler overhead with the trace sink on vs off, and the viewer's render time.

1. The same 1k-node no-op DAGs as ``scheduler_overhead.py`` (chain and wide), run with default
   (durable, per-node) checkpoints, with tracing off and on (the SQLite trace sink subscribed);
   the ratio on/off is the overhead tracing adds to a run's wall time. Target: under 1.10.
   The sink's writer thread turns events into rows in the background; its CPU time is printed on
   its own (``*_writer_us_per_node``). The process CPU time of a run and its trace writing, on vs
   off, is ``cpu_overhead_ratio``: the cost if the writer could not overlap anything, and less
   sensitive than wall time to other load on the machine.
2. A recorded run of 2,000 spans (500 nodes with 3 model calls each, over a layered DAG) opened in
   Chromium through the live viewer: time from navigation to the page being drawn
   (DAG, waterfall, breakdowns). Target: under 1 s. The browser is ``--chromium PATH``, else
   ``$CONTEXTFLOW_BENCH_CHROMIUM``, else ``chromium`` on the PATH; without one the render figure is
   ``null`` and a ``render: skipped ...`` line says what to pass.

Every project folder is a private temporary folder, removed at exit. Exit code 0 after the figures.

    python benchmarks/trace_overhead.py [--nodes 1000] [--repeats 5] [--chromium PATH] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import scratch_dir
from scheduler_overhead import _contextflow_plan

import contextflow  # noqa: F401  (offline settings)

CHROMIUM_ENV = "CONTEXTFLOW_BENCH_CHROMIUM"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def time_runs(shape: str, n: int, repeats: int) -> dict[str, float]:
    """Median seconds per run with tracing off and on, interleaved so that load from other
    processes on the machine falls on both alike. Each mode has its own project folder, shared
    by its runs as a project's runs share it, so the stores exist after the warm-up run.

    The trace writer runs on its own thread, mostly after the sink is closed at the end of the
    run, overlapping the run's own finishing work; the wall figures include whatever it takes from
    the run. Its CPU time is measured on its own too (``writer_s``): the event stream of one extra,
    untimed run is replayed into a fresh sink, whose writer thread reports its CPU time."""
    import dataclasses

    from contextflow.api import arun
    from contextflow.trace import TraceSink
    from contextflow.trace.sink import drain

    plan = _contextflow_plan(shape, n)
    projects = {mode: str(scratch_dir(f"cf-trace-bench-{mode}-")) for mode in ("off", "on")}

    async def once(traced: bool, sinks: tuple = ()) -> tuple[float, float, float]:
        cpu_start, start = time.process_time(), time.perf_counter()
        result = await arun(plan, project=projects["on" if traced else "off"], trace=traced, cache=False, sinks=sinks)
        elapsed = time.perf_counter() - start
        assert result.status == "succeeded", result.error
        drain()  # so that one traced run's writer never overlaps the next run
        durable = time.perf_counter() - start  # until every span is in SQLite
        return elapsed, durable, time.process_time() - cpu_start  # CPU of the process, the writer's included

    async def all_runs() -> dict[str, list[float]]:
        await once(False)
        await once(True)
        times: dict[str, list[float]] = {"off": [], "on": [], "on_durable": [], "off_cpu": [], "on_cpu": []}
        for _ in range(repeats):
            for mode, traced in (("off", False), ("on", True)):
                wall, durable, cpu = await once(traced)
                times[mode].append(wall)
                times[mode + "_cpu"].append(cpu)
                if traced:
                    times["on_durable"].append(durable)
        return times

    times = asyncio.run(all_runs())
    recorded: list[Any] = []
    asyncio.run(once(True, sinks=(recorded.append,)))
    db = scratch_dir("cf-trace-bench-writer-") / "traces.db"
    cpu = []
    for copy in range(3):  # the first creates the database; the figure is the later ones' median
        sink = TraceSink(db)
        for event in recorded:
            sink(dataclasses.replace(event, run_id=f"replay-{copy}"))
        sink.close(wait=True)
        cpu.append(sink.writer_cpu_s)
    return {"off_s": statistics.median(times["off"]), "on_s": statistics.median(times["on"]),
            "on_durable_s": statistics.median(times["on_durable"]),
            "writer_s": statistics.median(cpu[1:]),
            "off_cpu_s": statistics.median(times["off_cpu"]),
            "cpu_ratio": statistics.median(times["on_cpu"]) / statistics.median(times["off_cpu"])}


def record_large_run(db: Path, nodes: int = 500, calls: int = 3) -> str:
    from contextflow.core import events as ev
    from contextflow.core.attempts import Attempt
    from contextflow.trace import TraceSink

    run_id = "bench-2000"
    ids = [f"n{i}" for i in range(nodes)]
    edges = [(f"n{i - 25}", f"n{i}") for i in range(25, nodes)]  # 20 layers of 25
    sink = TraceSink(db)
    t = 1000.0
    sink(ev.RunStarted(run_id, "bench", {}, ids, edges, ts=t))
    for i, node in enumerate(ids):
        start = t + (i // 25) * 0.5
        sink(ev.NodeStarted(run_id, node, "llm", ts=start))
        for a in range(1, calls + 1):
            sink(ev.AttemptStarted(run_id, node, a, "gpt-4o-mini", prompt=[{"role": "user", "content": f"prompt {node}"}], ts=start + a * 0.1))
            call = Attempt(a, a == calls, "gpt-4o-mini", usage=ev.Usage(200, 50), cost_usd=0.0001, latency_s=0.09,
                           response=f"reply {node}")
            sink(ev.AttemptFinished(run_id, node, call, ts=start + a * 0.1 + 0.09))
        sink(ev.NodeFinished(run_id, node, "succeeded", "ok", 0.0003, ev.Usage(600, 150), "gpt-4o-mini",
                             duration_s=0.4, ts=start + 0.4))
    sink(ev.RunFinished(run_id, "succeeded", {}, 0.15, ev.Usage(300000, 75000), ts=t + 10.5))
    sink.close()
    return run_id


def find_chromium(flag: str | None) -> Path | None:
    """The browser to drive: --chromium, else $CONTEXTFLOW_BENCH_CHROMIUM, else chromium on the PATH."""
    named = flag or os.environ.get(CHROMIUM_ENV) or shutil.which("chromium")
    return Path(named) if named and Path(named).is_file() else None


def time_render(spans_db_dir: Path, run_id: str, chromium: Path | None, repeats: int = 3) -> float | None:
    if chromium is None:
        print(f"render: skipped (no Chromium found: pass --chromium PATH or set {CHROMIUM_ENV})")
        return None
    import uvicorn
    from playwright.sync_api import sync_playwright

    from contextflow.core.state import StateDir
    from contextflow.ui.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(StateDir(spans_db_dir)), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    times = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")  # warm the browser and the server
            page.wait_for_selector("body[data-ready='1']")
            for _ in range(repeats):
                page.goto("about:blank")
                start = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/#/run/{run_id}")
                page.wait_for_selector("#waterfall")
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                times.append(time.perf_counter() - start)
            assert page.locator("#dag [data-node]").count() == 500
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chromium", default=None,
                        help=f"Chromium executable for the render timing (default ${CHROMIUM_ENV}, else chromium on the PATH)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    chromium = find_chromium(args.chromium)

    figures: dict[str, Any] = {}
    ratios = []
    durable_ratios = []
    cpu_ratios = []
    for shape in ("chain", "wide"):
        t = time_runs(shape, args.nodes, args.repeats)
        off, on, writer_s = t["off_s"], t["on_s"], t["writer_s"]
        ratios.append(on / off)
        durable_ratios.append(t["on_durable_s"] / off)
        figures[f"{shape}_durable_ratio"] = round(t["on_durable_s"] / off, 3)
        figures[f"{shape}_off_us_per_node"] = round(off / args.nodes * 1e6, 2)
        figures[f"{shape}_on_us_per_node"] = round(on / args.nodes * 1e6, 2)
        figures[f"{shape}_writer_us_per_node"] = round(writer_s / args.nodes * 1e6, 2)
        figures[f"{shape}_off_cpu_us_per_node"] = round(t["off_cpu_s"] / args.nodes * 1e6, 2)
        figures[f"{shape}_cpu_ratio"] = round(t["cpu_ratio"], 3)
        cpu_ratios.append(t["cpu_ratio"])
        print(f"{shape:>5}: tracing off {off / args.nodes * 1e6:7.1f} us/node, on {on / args.nodes * 1e6:7.1f} us/node,"
              f" ratio {on / off:.3f} ({t['on_durable_s'] / off:.3f} until the trace is on disk); trace writer thread CPU {writer_s / args.nodes * 1e6:5.1f} us/node;"
              f" process CPU on/off {t['cpu_ratio']:.3f}")
    figures["overhead_ratio"] = round(max(ratios), 3)
    figures["durable_overhead_ratio"] = round(max(durable_ratios), 3)
    figures["cpu_overhead_ratio"] = round(max(cpu_ratios), 3)
    print(f"overhead ratio (worst shape): {figures['overhead_ratio']:.3f}  (target < 1.10);"
          f" until the trace is on disk: {figures['durable_overhead_ratio']:.3f};"
          f" process CPU (run and trace writing) on/off: {figures['cpu_overhead_ratio']:.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp) / ".contextflow"  # the viewer serves a project's state folder
        state_dir.mkdir()
        run_id = record_large_run(state_dir / "traces.db")
        from contextflow.trace import TraceStore

        spans = len(TraceStore(state_dir / "traces.db").spans(run_id))
        render = time_render(state_dir, run_id, chromium)
    figures["spans"] = spans
    figures["render_2000_s"] = round(render, 3) if render is not None else None
    if render is not None:
        print(f"run page with {spans} spans rendered in {render:.3f} s (target < 1 s; ratio to target {render:.2f})")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

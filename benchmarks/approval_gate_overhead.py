"""What an active approval gate costs a run: the same DAG with no gate vs with the gate consulted
before and after every node.

A wide DAG of ``--nodes`` ``read_file`` tool nodes (no side effects, so none waits) plus one node
with ``approval: never`` (no gate: the baseline) or ``approval: always`` (the gate is active for
the whole run and that one node is left waiting). Best of ``--repeats`` runs each, checkpoints
on, tracing off. Printed as the ratio gated / ungated, for wall time and for
the process's CPU time (less sensitive to other load on the machine).

    python benchmarks/approval_gate_overhead.py [--nodes 400] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paths import scratch_dir

import contextflow  # noqa: F401


def _spec(nodes: int, gated: bool) -> dict[str, Any]:
    body = [{"id": f"n{i}", "kind": "tool", "tool": "read_file", "args": {"path": "f.txt"}} for i in range(nodes)]
    body.append({"id": "last", "kind": "tool", "tool": "read_file", "args": {"path": "f.txt"},
                 "approval": "always" if gated else "never"})
    return {"name": "gate-overhead", "nodes": body}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = scratch_dir("cf-gate-")
    os.environ["CONTEXTFLOW_HOME"] = str(folder / ".contextflow")
    (folder / "f.txt").write_text("x")
    from contextflow.api import run

    best: dict[bool, float] = {}
    cpu: dict[bool, float] = {}
    for _ in range(args.repeats):
        for gated in (False, True):
            started, cpu_started = time.perf_counter(), time.process_time()
            result = run(_spec(args.nodes, gated), workdir=folder, trace=False, cache=False)
            elapsed = time.perf_counter() - started
            cpu[gated] = min(cpu.get(gated, float("inf")), time.process_time() - cpu_started)
            expected = "waiting" if gated else "succeeded"
            if result.status != expected:
                raise SystemExit(f"run ended {result.status}, expected {expected}: {result.error}")
            best[gated] = min(best.get(gated, float("inf")), elapsed)
    ratio = best[True] / best[False]
    cpu_ratio = cpu[True] / cpu[False]
    print(f"{args.nodes + 1} nodes: no gate {best[False] * 1000:.0f} ms, gate active {best[True] * 1000:.0f} ms,"
          f" ratio {ratio:.2f} (process CPU ratio {cpu_ratio:.2f})")
    if args.json:
        print(json.dumps({"nodes": args.nodes + 1, "ungated_s": round(best[False], 4),
                          "gated_s": round(best[True], 4), "gate_overhead_ratio": round(ratio, 3),
                          "gate_cpu_overhead_ratio": round(cpu_ratio, 3)}))


if __name__ == "__main__":
    main()

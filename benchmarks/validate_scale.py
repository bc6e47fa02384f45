"""How pipeline validation scales: generated DAGs of 1k, 10k and 50k nodes.

For each size it times, best of ``--repeat`` runs:
  * load+validate: ``validate_text`` on the YAML text (positioned parse, pydantic, every check);
  * validate alone: ``validate_spec`` on an already-built spec (references, types, cycles, models);
  * baselines on the same pipeline: networkx building the graph and sorting it topologically,
    and plain ``yaml.load`` (libyaml) + ``PipelineSpec.model_validate`` (no positions, no checks).

It prints each ratio to its baseline and the growth exponent (the slope of log time against log
nodes; 1.0 is linear). With ``--json`` the last line is one JSON object with every figure.

The generated files use no anchors or aliases, so the loader's bounds on alias expansion, alias
count and nesting depth (``contextflow.dags.yaml_source.YamlLimits``: 1,000,000 characters or the
file's length, 10,000 aliases, 100 levels) never apply; they cap what aliases can add to this
linear cost, and ``docs/pipelines.md`` lists them.

    python benchmarks/validate_scale.py                 # 1k, 10k, 50k
    python benchmarks/validate_scale.py --sizes 1000 5000 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import time
from typing import Any, Callable

import contextflow  # noqa: F401  (offline defaults before litellm)

import networkx as nx
import yaml

from contextflow.dags.loader import dump_pipeline
from contextflow.dags.spec import PipelineSpec
from contextflow.dags.validate import validate_spec, validate_text
from contextflow.dags.yaml_source import gc_paused


def generate(nodes: int, seed: int = 0, fan_in: int = 3) -> tuple[PipelineSpec, list[tuple[str, str]]]:
    """A random DAG: each node references up to ``fan_in`` earlier nodes (prompt refs, output
    fields, depends_on or python args); a third of the llm nodes declare an output schema."""
    rng = random.Random(seed)
    raw: list[dict[str, Any]] = []
    edges: list[tuple[str, str]] = []
    for i in range(nodes):
        node_id = f"n{i}"
        parents = sorted({rng.randrange(i) for _ in range(rng.randint(0, fan_in))}) if i else []
        edges.extend((f"n{p}", node_id) for p in parents)
        roll = rng.random()
        if roll < 0.15 and i % 3:
            raw.append({"id": node_id, "kind": "python", "function": "contextflow.dags.refs:to_text",
                        "args": {"value": f"${{n{parents[0]}.output}}" if parents else "${inputs.question}"},
                        "depends_on": [f"n{p}" for p in parents[1:]]})
            continue
        refs = []
        for p in parents:
            refs.append(f"${{n{p}.output.summary}}" if p % 3 == 0 else f"${{n{p}.output}}")
        node: dict[str, Any] = {"id": node_id, "kind": "llm",
                                "prompt": f"Step {i} for ${{inputs.question}}: " + " ".join(refs)}
        if i % 3 == 0:
            node["output_schema"] = {"type": "object", "properties": {"summary": {"type": "string"}}}
        if roll > 0.9:
            node["when"] = f"${{inputs.question}} != ''"
        raw.append(node)
    # Nodes whose id is divisible by 3 declare a schema with 'summary'; others are strings, so a
    # '.summary' reference is only generated for the former.
    spec = PipelineSpec.model_validate({
        "name": f"generated-{nodes}",
        "inputs": {"question": {"type": "string"}},
        "defaults": {"model": "gpt-4o-mini"},
        "nodes": raw,
        "outputs": {"last": f"${{n{nodes - 1}.output}}"},
    })
    return spec, edges


def best_of(repeat: int, func: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def slope(xs: list[int], ys: list[float]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def networkx_baseline(spec: PipelineSpec, edges: list[tuple[str, str]]) -> None:
    with gc_paused():  # the same collector pause as the checks, for a like-for-like ratio
        graph = nx.DiGraph()
        graph.add_nodes_from(n.id for n in spec.nodes)
        graph.add_edges_from(edges)
        list(nx.topological_sort(graph))


def plain_load(text: str, loader: Any) -> PipelineSpec:
    # The same collector pause as validate_text, so the ratio is the cost of positions + checks.
    with gc_paused():
        return PipelineSpec.model_validate(yaml.load(text, Loader=loader))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        spec, edges = generate(size)
        text = dump_pipeline(spec)
        check = validate_spec(spec)
        if check.problems:  # the generated pipeline must be valid, or the timing measures errors
            print("\n".join(p.format() for p in check.problems[:5]), file=sys.stderr)
            return 1
        repeat = max(1, args.repeat if size <= 10000 else min(args.repeat, 2))
        row = {
            "nodes": size,
            "edges": len(edges),
            "yaml_bytes": len(text.encode()),
            "load_validate_s": best_of(repeat, lambda: validate_text(text, file="gen.yaml")),
            "validate_s": best_of(repeat, lambda: validate_spec(spec)),
            "baseline_networkx_s": best_of(repeat, lambda: networkx_baseline(spec, edges)),
            "baseline_yaml_pydantic_s": best_of(repeat, lambda: plain_load(text, loader)),
        }
        row["validate_vs_networkx"] = row["validate_s"] / row["baseline_networkx_s"]
        row["load_validate_vs_yaml_pydantic"] = row["load_validate_s"] / row["baseline_yaml_pydantic_s"]
        rows.append(row)
        print(f"{size:>6} nodes {len(edges):>6} edges | load+validate {row['load_validate_s']:.3f}s "
              f"({row['load_validate_vs_yaml_pydantic']:.2f}x yaml+pydantic {row['baseline_yaml_pydantic_s']:.3f}s) | "
              f"validate {row['validate_s']:.3f}s ({row['validate_vs_networkx']:.2f}x networkx "
              f"{row['baseline_networkx_s']:.3f}s)", flush=True)

    sizes = [r["nodes"] for r in rows]
    result: dict[str, Any] = {"sizes": sizes, "rows": rows}
    if len(rows) >= 2:
        result["growth_exponent"] = slope(sizes, [r["load_validate_s"] for r in rows])
        result["growth_exponent_validate"] = slope(sizes, [r["validate_s"] for r in rows])
        result["growth_exponent_networkx"] = slope(sizes, [r["baseline_networkx_s"] for r in rows])
        result["growth_exponent_yaml_pydantic"] = slope(sizes, [r["baseline_yaml_pydantic_s"] for r in rows])
        print(f"growth exponent (log-log slope): load+validate {result['growth_exponent']:.3f}, "
              f"validate {result['growth_exponent_validate']:.3f}; baselines: "
              f"networkx {result['growth_exponent_networkx']:.3f}, "
              f"yaml+pydantic {result['growth_exponent_yaml_pydantic']:.3f} (1.0 = linear)")
    for key in ("load_validate_s", "validate_s", "baseline_networkx_s", "baseline_yaml_pydantic_s"):
        result[key] = [r[key] for r in rows]
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

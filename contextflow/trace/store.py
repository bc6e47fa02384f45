"""Reading traces: runs, spans, rollups, comparisons and what-if re-pricing.

Cost and tokens are always summed over *leaf* spans (model calls, retrievals, nodes without
children), never over a parent and its children, so nothing is counted twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import networkx as nx

from contextflow.trace.schema import TraceDatabase
from contextflow.trace.sink import drain
from contextflow.core.catalog import get

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_LEAF = "NOT EXISTS (SELECT 1 FROM spans c WHERE c.parent_id = s.span_id)"


class TraceNotFound(LookupError):
    pass


def check_run_id(run_id: str) -> str:
    """Refuse anything that is not a plain run id (no paths, no traversal, no SQL)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id) or ".." in run_id:
        raise ValueError(f"'{run_id}' is not a run id (letters, digits, '.', '_' and '-' only)")
    return run_id


class TraceStore:
    """Reads a trace database: ``traces.db`` (a path) or a :class:`TraceDatabase`, e.g. in memory."""

    def __init__(self, db_path: str | Path | TraceDatabase) -> None:
        self.database = TraceDatabase.of(db_path)
        self.db_path = self.database.path
        drain(self.database)  # spans this process is still writing

    @classmethod
    def in_memory(cls) -> TraceStore:
        """A store over a new in-memory database; give ``store.database`` to a ``TraceSink``."""
        return cls(TraceDatabase.in_memory())

    # -- runs -------------------------------------------------------------------------------------
    def list_runs(self, limit: int = 200, status: str | None = None) -> list[dict[str, Any]]:
        drain(self.database)
        if not self.database.exists():
            return []
        where, params = ("WHERE r.status = ?", [status]) if status else ("", [])
        with self.database.read() as db:
            rows = db.execute(
                f"SELECT r.run_id, r.pipeline, r.status, r.started, r.finished, r.nodes FROM runs r {where}"
                " ORDER BY r.started DESC LIMIT ?", [*params, limit]
            ).fetchall()
            totals = self._leaf_totals(db, [r[0] for r in rows])
            mixes = self._model_mix(db, [r[0] for r in rows])
        out = []
        for run_id, pipeline, st, started, finished, nodes in rows:
            cost, tin, tout = totals.get(run_id, (0.0, 0, 0))
            out.append({
                "run_id": run_id, "pipeline": pipeline, "status": st, "started": started, "finished": finished,
                "duration_s": (finished - started) if finished and started else None,
                "cost_usd": cost, "input_tokens": tin, "output_tokens": tout, "tokens": tin + tout,
                "nodes": len(json.loads(nodes or "[]")), "models": mixes.get(run_id, {}),
            })
        return out

    def _leaf_totals(self, db: Any, run_ids: list[str]) -> dict[str, tuple[float, int, int]]:
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = db.execute(
            f"SELECT s.run_id, SUM(s.cost), SUM(s.input_tokens), SUM(s.output_tokens) FROM spans s"
            f" WHERE s.run_id IN ({marks}) AND s.kind != 'run' AND {_LEAF} GROUP BY s.run_id", run_ids
        ).fetchall()
        return {r[0]: (r[1] or 0.0, r[2] or 0, r[3] or 0) for r in rows}

    def _model_mix(self, db: Any, run_ids: list[str]) -> dict[str, dict[str, int]]:
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        mix: dict[str, dict[str, int]] = {}
        for run_id, model, n in db.execute(
            f"SELECT run_id, model, COUNT(*) FROM spans WHERE run_id IN ({marks}) AND kind='attempt'"
            " AND model IS NOT NULL GROUP BY run_id, model", run_ids
        ):
            mix.setdefault(run_id, {})[model] = n
        return mix

    # -- one run ----------------------------------------------------------------------------------
    def spans(self, run_id: str) -> list[dict[str, Any]]:
        check_run_id(run_id)
        drain(self.database)
        if not self.database.exists():
            return []
        with self.database.read() as db:
            rows = db.execute(
                "SELECT s.span_id, s.parent_id, s.kind, s.name, s.node_id, s.start, s.end, s.status, s.model,"
                f" s.cost, s.input_tokens, s.output_tokens, s.attributes, {_LEAF} FROM spans s"
                " WHERE s.run_id = ? ORDER BY s.start", (run_id,)
            ).fetchall()
        keys = ("span_id", "parent_id", "kind", "name", "node_id", "start", "end", "status", "model", "cost",
                "input_tokens", "output_tokens", "attributes", "leaf")
        spans = [dict(zip(keys, row)) for row in rows]
        for span in spans:
            span["attributes"] = json.loads(span["attributes"] or "{}")
            span["leaf"] = bool(span["leaf"])
        return spans

    def run(self, run_id: str) -> dict[str, Any]:
        check_run_id(run_id)
        drain(self.database)
        if not self.database.exists():
            raise TraceNotFound(run_id)
        with self.database.read() as db:
            row = db.execute(
                "SELECT pipeline, status, started, finished, inputs, outputs, error, nodes, edges FROM runs"
                " WHERE run_id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise TraceNotFound(run_id)
        pipeline, status, started, finished, inputs, outputs, error, nodes, edges = row
        spans = self.spans(run_id)
        node_ids = json.loads(nodes or "[]")
        edge_list = [tuple(e) for e in json.loads(edges or "[]")]
        return {
            "run_id": run_id, "pipeline": pipeline, "status": status, "started": started, "finished": finished,
            "duration_s": (finished - started) if finished and started else None,
            "inputs": json.loads(inputs or "{}"), "outputs": json.loads(outputs or "null"), "error": error,
            "nodes": node_ids, "edges": edge_list, "spans": spans,
            **rollup(spans), "critical_path": critical_path(node_ids, edge_list, spans),
        }

    def rollup(self, run_id: str) -> dict[str, Any]:
        return rollup(self.spans(run_id))

    def compare(self, run_a: str, run_b: str) -> list[dict[str, Any]]:
        """Node by node (keyed by node id): model, tokens, cost and latency, with deltas b - a."""
        a, b = self.run(run_a), self.run(run_b)
        rows = []
        for node_id in sorted(set(a["by_node"]) | set(b["by_node"])):
            left, right = a["by_node"].get(node_id, {}), b["by_node"].get(node_id, {})
            row = {"node_id": node_id, "a": left, "b": right}
            for key in ("cost_usd", "tokens", "latency_s"):
                row[f"delta_{key}"] = (right.get(key) or 0) - (left.get(key) or 0)
            rows.append(row)
        return rows

    def what_if(self, run_id: str, node_id: str, model: str) -> dict[str, Any]:
        """The run's cost had ``node_id``'s model calls gone to ``model`` at the same token counts."""

        info = get(model)
        run = self.run(run_id)
        calls = [s for s in run["spans"] if s["kind"] == "attempt" and s["node_id"] == node_id]
        if not calls:
            raise TraceNotFound(f"node '{node_id}' made no model calls in run {run_id}")
        old = sum(s["cost"] or 0.0 for s in calls)
        new = sum(info.cost(s["input_tokens"] or 0, s["output_tokens"] or 0) for s in calls)
        return {
            "run_id": run_id, "node_id": node_id, "model": model, "calls": len(calls),
            "node_cost_usd": old, "node_cost_what_if_usd": new,
            "run_cost_usd": run["cost_usd"], "run_cost_what_if_usd": run["cost_usd"] - old + new,
            "source": "litellm price map" if not info.custom else "declared model",
        }


def rollup(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals, per node and per model, from leaf spans only."""
    total = {"cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0}
    by_node: dict[str, dict[str, Any]] = {}
    by_model: dict[str, dict[str, Any]] = {}
    for span in spans:
        if span["kind"] == "node" and span["node_id"]:
            entry = by_node.setdefault(span["node_id"], _empty())
            entry.update(status=span["status"], kind=span["attributes"].get("contextflow.node.kind"))
            if span["start"] and span["end"]:
                entry["latency_s"] = span["end"] - span["start"]
            if span["model"]:
                entry["model"] = span["model"]
        if not span["leaf"] or span["kind"] == "run":
            continue
        cost, tin, tout = span["cost"] or 0.0, span["input_tokens"] or 0, span["output_tokens"] or 0
        total["cost_usd"] += cost
        total["input_tokens"] += tin
        total["output_tokens"] += tout
        if span["node_id"]:
            _add(by_node.setdefault(span["node_id"], _empty()), cost, tin, tout)
        if span["kind"] == "attempt" and span["model"]:
            model_entry = by_model.setdefault(span["model"], _empty())
            _add(model_entry, cost, tin, tout)
            model_entry["calls"] = model_entry.get("calls", 0) + 1
    total["tokens"] = total["input_tokens"] + total["output_tokens"]
    return {**total, "by_node": by_node, "by_model": by_model}


def _empty() -> dict[str, Any]:
    return {"cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0, "tokens": 0, "latency_s": None}


def _add(entry: dict[str, Any], cost: float, tin: int, tout: int) -> None:
    entry["cost_usd"] += cost
    entry["input_tokens"] += tin
    entry["output_tokens"] += tout
    entry["tokens"] += tin + tout


def critical_path(nodes: list[str], edges: list[tuple[str, ...]], spans: list[dict[str, Any]]) -> list[str]:
    """The chain of dependent nodes with the largest summed latency: what bounds the run's time."""
    duration = {s["node_id"]: (s["end"] or s["start"]) - s["start"] for s in spans
                if s["kind"] == "node" and s["start"] is not None}
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((u, v) for u, v in edges)
    if not nx.is_directed_acyclic_graph(graph):
        return []
    best: dict[str, tuple[float, str | None]] = {}
    for node in nx.topological_sort(graph):
        preds = [(best[p][0], p) for p in graph.predecessors(node)]
        base, parent = max(preds) if preds else (0.0, None)
        best[node] = (base + max(duration.get(node, 0.0), 0.0), parent)
    if not best:
        return []
    node: str | None = max(best, key=lambda n: best[n][0])
    path = []
    while node is not None:
        path.append(node)
        node = best[node][1]
    return path[::-1]

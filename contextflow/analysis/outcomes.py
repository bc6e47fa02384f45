"""Router training data from recorded runs: cascade verdicts joined with the traced prompts.

A cascade node's attempts (run store) carry each rung's verdicts; the trace store keeps each
attempt's prompt and response. Joined on (run, node, attempt number), every cascade that tried its
cheapest rung is one outcome: the prompt, whether the cheap answer passed its checks, the cheap
answer, and, where the cascade escalated, whether the next rung passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from contextflow.cost.outcomes_csv import OutcomeRows
from contextflow.core.errors import UserError
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.trace import TraceStore
from contextflow.trace.sink import drain


def last_user_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return str((users[-1] if users else prompt[-1]).get("content", "")) if prompt else ""
    return str(prompt or "")


def outcomes_from_runs(runs_db: str | Path, traces_db: str | Path, *, node: str | None = None,
                       run_ids: Iterable[str] | None = None, limit: int = 10_000) -> OutcomeRows:
    """Outcomes of every cascade node (or only ``node``) in the stored runs that were traced."""

    drain(traces_db)  # a run of this process may still be writing its spans
    if not Path(runs_db).exists() or not Path(traces_db).exists():
        raise UserError(f"no recorded runs: {runs_db} or {traces_db} is missing",
                        hint="run pipelines with strategy: cascade (tracing on) first")
    traces = TraceStore(Path(traces_db))
    prompts: list[str] = []
    weak_ok: list[bool] = []
    answers: list[str] = []
    strong_ok: list[bool | None] = []
    with SQLiteRunStore(runs_db, readonly=True) as store:
        ids = list(run_ids) if run_ids is not None else [r.run_id for r in store.list_runs(limit)]
        for run_id in ids:
            results = store.load_nodes(run_id)
            cascades = {nid: r for nid, r in results.items() if (node is None or nid == node)
                        and any(a.rung == 0 for a in r.attempts)}
            if not cascades:
                continue
            spans = {(s["node_id"], (s["attributes"] or {}).get("contextflow.attempt")): s
                     for s in traces.spans(run_id) if s["kind"] == "attempt"}
            for node_id, result in cascades.items():
                rungs = {a.rung: a for a in result.attempts if a.rung is not None}
                first = spans.get((node_id, rungs[0].number))
                if first is None:
                    continue  # not traced: no prompt to learn from
                attrs = first["attributes"]
                prompts.append(last_user_text(attrs.get("contextflow.prompt")))
                answers.append(str(attrs.get("contextflow.response") or ""))
                weak_ok.append(bool(rungs[0].passed))
                strong_ok.append(bool(rungs[1].passed) if 1 in rungs else None)
    if not prompts:
        where = f"node '{node}'" if node else "any cascade node"
        raise UserError(f"no traced cascade outcomes for {where} in {runs_db}",
                        hint="route needs outcomes: run a cascade with verify: checks and tracing on")
    known_strong = all(s is not None for s in strong_ok)
    return OutcomeRows(prompts, np.array(weak_ok, dtype=bool),
                       np.array(strong_ok, dtype=bool) if known_strong else None, answers, None, None)

"""A run store that keeps everything in the process: for apps that embed a run and write nothing.

It keeps the same rows as :class:`~contextflow.runtime.sqlite_store.SQLiteRunStore` (values
encoded to JSON when a node finishes), so a result read back is what a resume from ``runs.db``
would see, and a run can be resumed from it for as long as the object lives.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Iterable

from contextflow.core.errors import UserError
from contextflow.core.results import NodeResult, decode_value, encode_value
from contextflow.runtime.store import Decision, NodeRow, RunRecord, node_from_row, node_row, run_record, run_row

# run_row's columns that set_run_status changes
_STATUS, _OUTPUTS, _COST, _ERROR, _UPDATED = 4, 8, 9, 10, 12


class MemoryRunStore:
    """Runs, node results and decisions in dictionaries; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[str, list[Any]] = {}
        self._nodes: dict[str, dict[str, NodeRow]] = {}
        self._owners: dict[str, int] = {}
        self._decisions: list[Decision] = []
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Nothing to release: the data stays readable until the object is dropped."""

    def __enter__(self) -> "MemoryRunStore":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    # runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        pipeline: str,
        spec: dict[str, Any],
        inputs: dict[str, Any],
        project: str | None = None,
        budget: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        row = run_row(run_id, pipeline=pipeline, spec=spec, inputs=inputs, status="running", project=project,
                      budget=budget, options=options, created_at=time.time())
        with self._lock:
            if run_id in self._runs:
                raise UserError(f"a run with id '{run_id}' already exists", hint=f"resume it: aresume('{run_id}')")
            self._runs[run_id] = list(row)

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        outputs: dict[str, Any] | None = None,
        cost_usd: float | None = None,
    ) -> None:
        with self._lock:
            row = self._runs.get(run_id)
            if row is None:
                return  # as an UPDATE of a missing row: nothing to change
            row[_STATUS], row[_ERROR], row[_UPDATED] = status, error, time.time()
            if outputs is not None:
                row[_OUTPUTS] = encode_value(outputs)
            if cost_usd is not None:
                row[_COST] = cost_usd

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            row = self._runs.get(run_id)
            return run_record(tuple(row)) if row is not None else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        with self._lock:
            rows = sorted(self._runs.values(), key=lambda r: r[11], reverse=True)[:limit]
            return [run_record(tuple(r)) for r in rows]

    # node results -------------------------------------------------------------------------

    def save_nodes(self, run_id: str, results: Iterable[NodeResult]) -> None:
        self.save_rows([node_row(run_id, r) for r in results])

    def save_rows(self, rows: list[NodeRow]) -> None:
        with self._lock:
            for row in rows:
                self._nodes.setdefault(row[0], {})[row[1]] = row

    def save_node(self, run_id: str, result: NodeResult) -> None:
        self.save_nodes(run_id, [result])

    def load_nodes(self, run_id: str) -> dict[str, NodeResult]:
        with self._lock:
            rows = list(self._nodes.get(run_id, {}).values())
        return {row[1]: node_from_row(row[1:]) for row in rows}

    # ownership ----------------------------------------------------------------------------

    def claim_run(self, run_id: str) -> None:
        """One executor per run in this process: a second concurrent claim is refused."""
        with self._lock:
            if self._owners.get(run_id, 0) > 0:
                raise UserError(f"run '{run_id}' is already being executed",
                                hint="wait for that run (or resume) to return first")
            self._owners[run_id] = 1

    def release_run(self, run_id: str) -> None:
        with self._lock:
            self._owners.pop(run_id, None)

    # approvals ----------------------------------------------------------------------------

    def record_decision(
        self,
        run_id: str,
        node_id: str,
        decision: str,
        *,
        actor: str,
        payload: Any = None,
        diff: str | None = None,
        comment: str | None = None,
    ) -> int:
        with self._lock:
            decision_id = next(self._ids)
            stored = decode_value(encode_value(payload))  # a snapshot, as a database would keep
            self._decisions.append(
                Decision(decision_id, run_id, node_id, decision, actor, stored, diff, comment, time.time(), False)
            )
            return decision_id

    def decisions(self, run_id: str, *, pending_only: bool = False) -> list[Decision]:
        with self._lock:
            return [d for d in self._decisions if d.run_id == run_id and not (pending_only and d.applied)]

    def mark_decision_applied(self, decision_id: int) -> None:
        with self._lock:
            self._decisions = [
                Decision(d.id, d.run_id, d.node_id, d.decision, d.actor, d.payload, d.diff, d.comment, d.created_at,
                         True) if d.id == decision_id else d
                for d in self._decisions
            ]

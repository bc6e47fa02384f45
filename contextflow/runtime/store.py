"""What the runtime needs from a run store, and the records it reads back.

A run store keeps runs (spec, inputs, status, outputs), every node's result (the checkpoints a
resume starts from), who executes a run, and the decisions people made on waiting nodes. The
runtime is given one, like a checkpointer: :class:`~contextflow.runtime.sqlite_store.SQLiteRunStore`
is the project's ``runs.db`` (the default chosen by :mod:`contextflow.api`), and
:class:`~contextflow.runtime.memory_store.MemoryRunStore` keeps everything in the process.

Node results travel as rows (:func:`node_row`): the value, usage and attempts are encoded to
JSON when the node finishes, so a store holds a snapshot that later changes to the value cannot
reach, and every store gives back the same thing (:func:`node_from_row`).

Approvals (``runtime.approvals``) use the ``decisions`` table and the ``waiting`` node state.
A waiting node has no value, so its :class:`~contextflow.core.waiting.Waiting` is stored in
``value_json``; rows of older runs (the same keys, and untyped attempt dicts) load unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, runtime_checkable

from contextflow.core.events import Usage
from contextflow.core.results import (
    NodeResult, Waiting, decode_attempts, decode_value, encode_attempts, encode_value, usage_from_dict,
)

#: A node result as stored: (run_id, node_id, status, value_json, usage_json, cost_usd, model,
#: attempts_json, cache_hit, started_at, finished_at, error, error_type).
NodeRow = tuple[Any, ...]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    pipeline: str
    spec: dict[str, Any]
    inputs: dict[str, Any]
    status: str
    project: str | None
    budget: dict[str, Any] | None
    options: dict[str, Any]
    outputs: dict[str, Any] | None
    cost_usd: float
    error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Decision:
    id: int
    run_id: str
    node_id: str
    decision: str
    actor: str
    payload: Any
    diff: str | None
    comment: str | None
    created_at: float
    applied: bool


@runtime_checkable
class RunStore(Protocol):
    """The run store the scheduler, resume and approvals use. Safe to call from several threads."""

    def create_run(
        self, run_id: str, *, pipeline: str, spec: dict[str, Any], inputs: dict[str, Any],
        project: str | None = None, budget: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
    ) -> None:
        """Record a new run as ``running``; a run id already stored is a ``UserError``."""

    def set_run_status(
        self, run_id: str, status: str, *, error: str | None = None, outputs: dict[str, Any] | None = None,
        cost_usd: float | None = None,
    ) -> None: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The most recent runs first."""

    def save_nodes(self, run_id: str, results: Iterable[NodeResult]) -> None:
        """Persist finished (or waiting/failed) nodes together: all of them or none."""

    def save_node(self, run_id: str, result: NodeResult) -> None: ...

    def save_rows(self, rows: list[NodeRow]) -> None:
        """Persist rows made by :func:`node_row` (possibly of several runs) together."""

    def load_nodes(self, run_id: str) -> dict[str, NodeResult]: ...

    def claim_run(self, run_id: str) -> None:
        """Record this process as the run's executor; refuse while another live one holds it."""

    def release_run(self, run_id: str) -> None: ...

    def record_decision(
        self, run_id: str, node_id: str, decision: str, *, actor: str, payload: Any = None,
        diff: str | None = None, comment: str | None = None,
    ) -> int: ...

    def decisions(self, run_id: str, *, pending_only: bool = False) -> list[Decision]:
        """The run's decisions in the order they were made."""

    def mark_decision_applied(self, decision_id: int) -> None: ...

    def close(self) -> None: ...


def _usage_json(u: Usage) -> str | None:
    if not (u.input_tokens or u.output_tokens or u.cache_read_tokens or u.reasoning_tokens):
        return None
    return (
        f'{{"input_tokens":{u.input_tokens},"output_tokens":{u.output_tokens},'
        f'"cache_read_tokens":{u.cache_read_tokens},"reasoning_tokens":{u.reasoning_tokens}}}'
    )


def node_row(run_id: str, r: NodeResult) -> NodeRow:
    value = r.waiting.to_dict() if r.waiting is not None else r.value
    return (
        run_id, r.node_id, r.status, encode_value(value), _usage_json(r.usage), r.cost_usd,
        r.model, encode_attempts(r.attempts) if r.attempts else None, int(r.cache_hit), r.started_at,
        r.finished_at, r.error, r.error_type,
    )


def node_from_row(row: NodeRow) -> NodeResult:
    """The result a :func:`node_row` encoded, given the row without its leading run id."""
    value = decode_value(row[2])
    waiting = None
    if row[1] == "waiting" and isinstance(value, dict):
        waiting, value = Waiting.from_dict(value), None
    return NodeResult(
        node_id=row[0], status=row[1], value=value,
        usage=usage_from_dict(json.loads(row[3]) if row[3] else None), cost_usd=float(row[4] or 0.0),
        model=row[5], attempts=decode_attempts(row[6]), cache_hit=bool(row[7]),
        started_at=row[8], finished_at=row[9], error=row[10], error_type=row[11], waiting=waiting,
    )


def run_row(
    run_id: str, *, pipeline: str, spec: dict[str, Any], inputs: dict[str, Any], status: str, project: str | None,
    budget: dict[str, Any] | None, options: dict[str, Any] | None, created_at: float,
) -> tuple[Any, ...]:
    """A run as stored, in :func:`run_record`'s column order."""
    return (
        run_id, pipeline, json.dumps(spec), encode_value(inputs), status, project,
        json.dumps(budget) if budget is not None else None, json.dumps(options or {}), None, 0.0, None,
        created_at, created_at,
    )


def run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0], pipeline=row[1], spec=json.loads(row[2]), inputs=decode_value(row[3]) or {},
        status=row[4], project=row[5], budget=json.loads(row[6]) if row[6] else None,
        options=json.loads(row[7]) if row[7] else {}, outputs=decode_value(row[8]) if row[8] else None,
        cost_usd=float(row[9] or 0.0), error=row[10], created_at=row[11], updated_at=row[12],
    )

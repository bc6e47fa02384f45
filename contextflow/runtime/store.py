"""The run store: runs, their specs and every node's result, in SQLite (WAL).

Durability: each batch of finished nodes is committed before any dependent starts and before the
run reports them, so a ``kill -9`` loses nothing a later step relied on. The database runs in WAL
mode with ``synchronous=NORMAL``: a commit is an append to the WAL without an fsync, which survives
the process being killed (the OS still holds the pages) but may lose the last commits if the whole
machine loses power. That is the usual trade for a checkpoint store (a lost checkpoint means one
node runs again, never a corrupt database); ``durable=True`` selects ``synchronous=FULL``.

Approvals use the ``decisions`` table and the ``waiting`` node state. A waiting node has no
value, so its :class:`~contextflow.core.waiting.Waiting` is stored in ``value_json``; rows of
older runs (the same keys, and untyped attempt dicts) load unchanged.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from contextflow.core.events import Usage
from contextflow.core.results import (
    NodeResult, Waiting, decode_attempts, decode_value, encode_attempts, encode_value, usage_from_dict,
)
from contextflow.core.errors import UserError
from contextflow.core.state import STATE_FORMAT_VERSION

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    inputs_json TEXT NOT NULL,
    status TEXT NOT NULL,
    project TEXT,
    budget_json TEXT,
    options_json TEXT,
    outputs_json TEXT,
    cost_usd REAL NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS node_results (
    run_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL,
    value_json TEXT,
    usage_json TEXT,
    cost_usd REAL NOT NULL DEFAULT 0,
    model TEXT,
    attempts_json TEXT,
    cache_hit INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    error_type TEXT,
    PRIMARY KEY (run_id, node_id)
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    actor TEXT NOT NULL,
    payload_json TEXT,
    diff TEXT,
    comment TEXT,
    created_at REAL NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS decisions_run ON decisions(run_id, node_id);
CREATE TABLE IF NOT EXISTS run_owners (
    run_id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL
);
"""


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


class RunStore:
    """One SQLite file; safe to share between threads of a process and between processes."""

    def __init__(self, path: str | Path, *, durable: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(f"PRAGMA user_version={STATE_FORMAT_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "RunStore":
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
        now = time.time()
        with self._lock:
            if self._conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise UserError(f"a run with id '{run_id}' already exists", hint=f"contextflow resume {run_id}")
            self._conn.execute(
                "INSERT INTO runs (run_id, pipeline, spec_json, inputs_json, status, project, budget_json,"
                " options_json, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    run_id, pipeline, json.dumps(spec), encode_value(inputs), project,
                    json.dumps(budget) if budget is not None else None, json.dumps(options or {}), now, now,
                ),
            )

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
            self._conn.execute(
                "UPDATE runs SET status = ?, error = ?, outputs_json = COALESCE(?, outputs_json),"
                " cost_usd = COALESCE(?, cost_usd), updated_at = ? WHERE run_id = ?",
                (status, error, encode_value(outputs) if outputs is not None else None, cost_usd, time.time(), run_id),
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT run_id, pipeline, spec_json, inputs_json, status, project, budget_json, options_json,"
                " outputs_json, cost_usd, error, created_at, updated_at FROM runs WHERE run_id = ?",
                (run_id,),
            ).fetchone()
        return _run_record(row) if row else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id, pipeline, spec_json, inputs_json, status, project, budget_json, options_json,"
                " outputs_json, cost_usd, error, created_at, updated_at FROM runs"
                " ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_run_record(r) for r in rows]

    # node results -------------------------------------------------------------------------

    def save_nodes(self, run_id: str, results: Iterable[NodeResult]) -> None:
        """Persist finished (or waiting/failed) nodes in one transaction."""
        self.save_rows([node_row(run_id, r) for r in results])

    def save_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Commit rows made by :func:`node_row` in one transaction."""
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO node_results (run_id, node_id, status, value_json, usage_json,"
                    " cost_usd, model, attempts_json, cache_hit, started_at, finished_at, error, error_type)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def save_node(self, run_id: str, result: NodeResult) -> None:
        self.save_nodes(run_id, [result])

    def load_nodes(self, run_id: str) -> dict[str, NodeResult]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT node_id, status, value_json, usage_json, cost_usd, model, attempts_json, cache_hit,"
                " started_at, finished_at, error, error_type FROM node_results WHERE run_id = ?",
                (run_id,),
            ).fetchall()
        return {r[0]: _node_result(r) for r in rows}

    # ownership: one process executes a run at a time ---------------------------------------

    def claim_run(self, run_id: str) -> None:
        """Record this process as the run's executor; refuse while another live process on this
        host holds it. A holder that died (kill -9, crash) does not block a resume."""
        host, pid = socket.gethostname(), os.getpid()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT host, pid FROM run_owners WHERE run_id = ?", (run_id,)).fetchone()
                if row and row[0] == host and row[1] != pid and _alive(row[1]):
                    raise UserError(
                        f"run '{run_id}' is being executed by process {row[1]}",
                        hint="wait for it to finish, or stop that process first",
                    )
                self._conn.execute(
                    "INSERT OR REPLACE INTO run_owners (run_id, host, pid, claimed_at) VALUES (?, ?, ?, ?)",
                    (run_id, host, pid, time.time()),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def release_run(self, run_id: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM run_owners WHERE run_id = ? AND pid = ?", (run_id, os.getpid()))

    # approvals seam -----------------------------------------------------------------------

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
            cur = self._conn.execute(
                "INSERT INTO decisions (run_id, node_id, decision, actor, payload_json, diff, comment, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, node_id, decision, actor, encode_value(payload), diff, comment, time.time()),
            )
            return int(cur.lastrowid or 0)

    def decisions(self, run_id: str, *, pending_only: bool = False) -> list[Decision]:
        query = (
            "SELECT id, run_id, node_id, decision, actor, payload_json, diff, comment, created_at, applied"
            " FROM decisions WHERE run_id = ?" + (" AND applied = 0" if pending_only else "") + " ORDER BY id"
        )
        with self._lock:
            rows = self._conn.execute(query, (run_id,)).fetchall()
        return [Decision(r[0], r[1], r[2], r[3], r[4], decode_value(r[5]), r[6], r[7], r[8], bool(r[9])) for r in rows]

    def mark_decision_applied(self, decision_id: int) -> None:
        with self._lock:
            self._conn.execute("UPDATE decisions SET applied = 1 WHERE id = ?", (decision_id,))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _usage_json(u: Usage) -> str | None:
    if not (u.input_tokens or u.output_tokens or u.cache_read_tokens or u.reasoning_tokens):
        return None
    return (
        f'{{"input_tokens":{u.input_tokens},"output_tokens":{u.output_tokens},'
        f'"cache_read_tokens":{u.cache_read_tokens},"reasoning_tokens":{u.reasoning_tokens}}}'
    )


def node_row(run_id: str, r: NodeResult) -> tuple[Any, ...]:
    value = r.waiting.to_dict() if r.waiting is not None else r.value
    return (
        run_id, r.node_id, r.status, encode_value(value), _usage_json(r.usage), r.cost_usd,
        r.model, encode_attempts(r.attempts) if r.attempts else None, int(r.cache_hit), r.started_at,
        r.finished_at, r.error, r.error_type,
    )


def _node_result(r: tuple[Any, ...]) -> NodeResult:
    value = decode_value(r[2])
    waiting = None
    if r[1] == "waiting" and isinstance(value, dict):
        waiting, value = Waiting.from_dict(value), None
    return NodeResult(
        node_id=r[0], status=r[1], value=value,
        usage=usage_from_dict(json.loads(r[3]) if r[3] else None), cost_usd=float(r[4] or 0.0),
        model=r[5], attempts=decode_attempts(r[6]), cache_hit=bool(r[7]),
        started_at=r[8], finished_at=r[9], error=r[10], error_type=r[11], waiting=waiting,
    )


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0], pipeline=row[1], spec=json.loads(row[2]), inputs=decode_value(row[3]) or {},
        status=row[4], project=row[5], budget=json.loads(row[6]) if row[6] else None,
        options=json.loads(row[7]) if row[7] else {}, outputs=decode_value(row[8]) if row[8] else None,
        cost_usd=float(row[9] or 0.0), error=row[10], created_at=row[11], updated_at=row[12],
    )

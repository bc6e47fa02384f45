"""The project's run store: runs, their specs and every node's result in SQLite (``runs.db``, WAL).

Durability: each batch of finished nodes is committed before any dependent starts and before the
run reports them, so a ``kill -9`` loses nothing a later step relied on. The database runs in WAL
mode with ``synchronous=NORMAL``: a commit is an append to the WAL without an fsync, which survives
the process being killed (the OS still holds the pages) but may lose the last commits if the whole
machine loses power. That is the usual trade for a checkpoint store (a lost checkpoint means one
node runs again, never a corrupt database); ``durable=True`` selects ``synchronous=FULL``.

Every failure of the file (damaged, read-only, a full disk) reaches the caller as a
:class:`~contextflow.core.db.StateError` naming ``runs.db`` and what to do.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from contextflow.core.db import guard, open_db
from contextflow.core.errors import UserError
from contextflow.core.results import NodeResult, decode_value, encode_value
from contextflow.runtime.store import Decision, NodeRow, RunRecord, node_from_row, node_row, run_record, run_row

KIND = "run store"

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

_RUN_COLUMNS = (
    "run_id, pipeline, spec_json, inputs_json, status, project, budget_json, options_json, outputs_json,"
    " cost_usd, error, created_at, updated_at"
)
_NODE_COLUMNS = (
    "node_id, status, value_json, usage_json, cost_usd, model, attempts_json, cache_hit, started_at,"
    " finished_at, error, error_type"
)


class SQLiteRunStore:
    """One SQLite file; safe to share between threads of a process and between processes.

    ``readonly`` opens the file without creating, migrating or writing anything (listing runs in
    a folder that cannot be written); a write then fails with a clear error.
    """

    def __init__(self, path: str | Path, *, durable: bool = False, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = open_db(self.path, kind=KIND, schema=_SCHEMA, readonly=readonly,
                             synchronous="FULL" if durable else "NORMAL")

    @contextmanager
    def _db(self) -> Iterator[Any]:
        with self._lock, guard(self.path, KIND):
            yield self._conn

    @contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[Any]:
        with self._db() as conn:
            conn.execute(begin)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # also when COMMIT itself failed (a full disk)
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the first error is the one to report
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "SQLiteRunStore":
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
        with self._db() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise UserError(f"a run with id '{run_id}' already exists", hint=f"contextflow resume {run_id}")
            conn.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        outputs: dict[str, Any] | None = None,
        cost_usd: float | None = None,
    ) -> None:
        with self._db() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, error = ?, outputs_json = COALESCE(?, outputs_json),"
                " cost_usd = COALESCE(?, cost_usd), updated_at = ? WHERE run_id = ?",
                (status, error, encode_value(outputs) if outputs is not None else None, cost_usd, time.time(), run_id),
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._db() as conn:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            return run_record(row) if row else None

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        with self._db() as conn:
            rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
            return [run_record(r) for r in rows]

    # node results -------------------------------------------------------------------------

    def save_nodes(self, run_id: str, results: Iterable[NodeResult]) -> None:
        """Persist finished (or waiting/failed) nodes in one transaction."""
        self.save_rows([node_row(run_id, r) for r in results])

    def save_rows(self, rows: list[NodeRow]) -> None:
        """Commit rows made by :func:`~contextflow.runtime.store.node_row` in one transaction."""
        if not rows:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO node_results (run_id, node_id, status, value_json, usage_json,"
                " cost_usd, model, attempts_json, cache_hit, started_at, finished_at, error, error_type)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def save_node(self, run_id: str, result: NodeResult) -> None:
        self.save_nodes(run_id, [result])

    def load_nodes(self, run_id: str) -> dict[str, NodeResult]:
        with self._db() as conn:
            rows = conn.execute(f"SELECT {_NODE_COLUMNS} FROM node_results WHERE run_id = ?", (run_id,)).fetchall()
            return {r[0]: node_from_row(r) for r in rows}

    # ownership: one process executes a run at a time ---------------------------------------

    def claim_run(self, run_id: str) -> None:
        """Record this process as the run's executor; refuse while another live process on this
        host holds it. A holder that died (kill -9, crash) does not block a resume."""
        host, pid = socket.gethostname(), os.getpid()
        with self._transaction("BEGIN IMMEDIATE") as conn:
            row = conn.execute("SELECT host, pid FROM run_owners WHERE run_id = ?", (run_id,)).fetchone()
            if row and row[0] == host and row[1] != pid and _alive(row[1]):
                raise UserError(
                    f"run '{run_id}' is being executed by process {row[1]}",
                    hint="wait for it to finish, or stop that process first",
                )
            conn.execute(
                "INSERT OR REPLACE INTO run_owners (run_id, host, pid, claimed_at) VALUES (?, ?, ?, ?)",
                (run_id, host, pid, time.time()),
            )

    def release_run(self, run_id: str) -> None:
        with self._db() as conn:
            conn.execute("DELETE FROM run_owners WHERE run_id = ? AND pid = ?", (run_id, os.getpid()))

    # approvals ------------------------------------------------------------------------------

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
        with self._db() as conn:
            cur = conn.execute(
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
        with self._db() as conn:
            rows = conn.execute(query, (run_id,)).fetchall()
            return [Decision(r[0], r[1], r[2], r[3], r[4], decode_value(r[5]), r[6], r[7], r[8], bool(r[9]))
                    for r in rows]

    def mark_decision_applied(self, decision_id: int) -> None:
        with self._db() as conn:
            conn.execute("UPDATE decisions SET applied = 1 WHERE id = ?", (decision_id,))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""The trace database's schema (SQLite, WAL) and how to open it."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from contextflow.core.state import STATE_FORMAT_VERSION

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    pipeline TEXT,
    status TEXT,
    started REAL,
    finished REAL,
    inputs TEXT,
    outputs TEXT,
    error TEXT,
    nodes TEXT,
    edges TEXT
);
CREATE TABLE IF NOT EXISTS spans (
    span_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    parent_id TEXT,
    kind TEXT NOT NULL,          -- run | node | attempt | retrieval | decision
    name TEXT,
    node_id TEXT,
    start REAL,
    end REAL,
    status TEXT,
    model TEXT,
    cost REAL DEFAULT 0,
    input_tokens INTEGER DEFAULT 0,
    output_tokens INTEGER DEFAULT 0,
    attributes TEXT
);
CREATE INDEX IF NOT EXISTS spans_by_run ON spans(run_id, start);
"""


_shared: dict[Path, sqlite3.Connection] = {}
_shared_lock = threading.Lock()


@contextmanager
def writer(path: Path) -> Iterator[sqlite3.Connection]:
    """The process's one write connection to ``path``, held under a lock for one transaction.

    Opening SQLite, switching to WAL and checking the schema costs tens of milliseconds; a sink is
    created per run, so sinks share one long-lived connection per database instead."""
    key = path.resolve()
    with _shared_lock:
        db = _shared.get(key)
        if db is None or not key.exists():
            with connect(path):
                pass  # creates the file and the schema
            db = sqlite3.connect(str(key), timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA synchronous=NORMAL")
            _shared[key] = db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode with the schema in place; commits on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if db.execute("PRAGMA user_version").fetchone()[0] == 0:
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={STATE_FORMAT_VERSION}")
        yield db
        db.commit()
    finally:
        db.close()

"""The trace database: its schema (SQLite) and where it lives, a file (``traces.db``) or memory."""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Iterator

from contextflow.core.db import StateError, guard, open_db

KIND = "trace store"

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


class TraceDatabase:
    """Where a trace is kept. Sinks write through it and stores read through it.

    A file database (:meth:`at`) is shared per path within a process: opening SQLite, switching
    to WAL and checking the schema costs tens of milliseconds and a sink is created per run, so
    every sink writes through one long-lived connection. Reads open their own read-only
    connection, so a folder that cannot be written can still be read. An in-memory database
    (:meth:`in_memory`) is one connection that writes and reads share; it vanishes with the object.
    """

    _by_path: ClassVar[dict[Path, TraceDatabase]] = {}
    _by_path_lock = threading.Lock()

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def at(cls, path: str | os.PathLike[str]) -> TraceDatabase:
        key = Path(path).resolve()
        with cls._by_path_lock:
            found = cls._by_path.get(key)
            if found is None:
                found = cls._by_path[key] = cls(key)
            return found

    @classmethod
    def in_memory(cls) -> TraceDatabase:
        return cls(None)

    @classmethod
    def of(cls, where: str | os.PathLike[str] | TraceDatabase) -> TraceDatabase:
        return where if isinstance(where, TraceDatabase) else cls.at(where)

    def exists(self) -> bool:
        return self.path is None or self.path.exists()

    def __repr__(self) -> str:
        return f"TraceDatabase({str(self.path) if self.path is not None else 'in memory'})"

    def close(self) -> None:
        """Close this process's write connection to a file (the next write opens it again)."""
        with self._lock:
            if self.path is not None and self._conn is not None:
                self._conn.close()
                self._conn = None

    def _writer(self) -> sqlite3.Connection:
        if self._conn is not None and (self.path is None or self.path.exists()):
            return self._conn
        if self._conn is not None:  # the file was removed under us: start a new one
            self._conn.close()
        self._conn = open_db(self.path, kind=KIND, schema=_SCHEMA)
        return self._conn

    def open(self) -> None:
        """Open (or create) the database for writing now: a damaged, too new or unreachable file
        is then reported before a run starts, not later by a sink's background writer."""
        with self._lock:
            self._writer()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The write connection, held under a lock for one transaction."""
        with self._lock:
            try:
                with guard(self.path, KIND):
                    db = self._writer()
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        yield db
                        db.execute("COMMIT")
                    except BaseException:
                        if db.in_transaction:
                            try:
                                db.execute("ROLLBACK")
                            except sqlite3.Error:
                                pass  # the first error is the one to report
                        raise
            except StateError:
                if self.path is not None and self._conn is not None:
                    # The next write opens the file afresh (space freed, file replaced). Never for
                    # a database in memory: its connection is all there is of it.
                    self._conn.close()
                    self._conn = None
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection to read from (the caller checks :meth:`exists` first for a file)."""
        if self.path is None:
            with self._lock, guard(None, KIND):
                yield self._writer()
            return
        db = open_db(self.path, kind=KIND, readonly=True)
        try:
            with guard(self.path, KIND):
                yield db
        finally:
            db.close()

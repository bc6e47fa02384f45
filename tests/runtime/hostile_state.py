"""Hostile state for tests: damaged files, a read-only state folder, a disk that fills up.

Tests run as root, and root writes through ``chmod``: a read-only folder cannot be made real
here. Instead every SQLite connection contextflow opens (through ``contextflow.core.db``) gets
``PRAGMA query_only``, so SQLite itself refuses each write with the error a read-only file
gives ("attempt to write a readonly database"). A full disk is simulated by raising SQLite's
own error ("database or disk is full") from chosen write statements.

``python hostile_state.py MODE contextflow-args...`` runs the CLI in a child process under
MODE: ``readonly``, ``full`` (every write fails), ``full-nodes-after-1`` (the first checkpoint
commit succeeds, later ones fail) or ``full-all-after-1`` (after the first checkpoint commit,
every write fails, the run's final status included).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any, Callable

from contextflow.core import db as core_db

DISK_FULL = "database or disk is full"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "BEGIN IMMEDIATE", "PRAGMA USER_VERSION=")


def is_write(sql: str) -> bool:
    return sql.lstrip().upper().startswith(_WRITES)


def is_checkpoint(sql: str) -> bool:
    return "INTO node_results" in sql


class FailingConnection:
    """A real connection whose statements chosen by ``fails(sql)`` raise SQLite's disk-full error."""

    def __init__(self, conn: sqlite3.Connection, fails: Callable[[str], bool]) -> None:
        self._conn = conn
        self._fails = fails

    def execute(self, sql: str, *args: Any) -> Any:
        if self._fails(sql):
            raise sqlite3.OperationalError(DISK_FULL)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        if self._fails(sql):
            raise sqlite3.OperationalError(DISK_FULL)
        return self._conn.executemany(sql, *args)

    def __enter__(self) -> Any:
        return self._conn.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._conn.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def damage_file(path: Path, how: str) -> None:
    """Damage a database the ways a crash, a bad copy or a bad disk do."""
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage header":
        path.write_bytes(b"not a database, at all!" * 4 + data[92:])
    elif how == "random page":
        page = 4096
        noise = bytes((i * 7919 + 13) % 256 for i in range(page))
        path.write_bytes(data[:page] + noise * (len(data) // page - 1))
    elif how == "folder":
        path.unlink()
        path.mkdir()
    else:
        raise ValueError(how)


def install(mode: str, set_attr: Callable[[Any, str, Any], None] | None = None) -> dict[str, int]:
    """Wrap ``contextflow.core.db._connect`` for ``mode``; returns counters the wrapper updates."""
    real = core_db._connect
    seen = {"checkpoints": 0}

    def fails(sql: str) -> bool:
        if mode == "full":
            return is_write(sql)
        if is_checkpoint(sql):
            seen["checkpoints"] += 1
            return seen["checkpoints"] > 1
        return mode == "full-all-after-1" and seen["checkpoints"] >= 1 and is_write(sql)

    def connect(*args: Any, **kwargs: Any) -> Any:
        conn = real(*args, **kwargs)
        if mode == "readonly":
            conn.execute("PRAGMA query_only=1")
            return conn
        return FailingConnection(conn, fails)

    (set_attr or setattr)(core_db, "_connect", connect)
    return seen


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    import runtime_helpers  # noqa: F401,E402  (registers the node functions)
    from contextflow.cli import main  # noqa: E402

    install(sys.argv[1])
    sys.argv = ["contextflow", *sys.argv[2:]]
    os.environ.setdefault("CONTEXTFLOW_TEST", "1")
    main()

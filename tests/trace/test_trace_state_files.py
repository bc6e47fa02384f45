"""The trace database on hostile ground: damaged, too new, a disk that fills up; and one in memory."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from contextflow.core import db as core_db
from contextflow.core.db import StateError
from contextflow.core.state import STATE_FORMAT_VERSION
from contextflow.trace import TraceDatabase, TraceSink, TraceStore
from synthetic_trace import RUN, synthetic_run

DISK_FULL = "database or disk is full"


class _FullDisk:
    """A real connection whose writes fail as SQLite fails them when the disk is full."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: object) -> object:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "BEGIN IMMEDIATE")):
            raise sqlite3.OperationalError(DISK_FULL)
        return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: object) -> object:
        raise sqlite3.OperationalError(DISK_FULL)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


def _record(where: TraceDatabase | Path) -> TraceSink:
    sink = TraceSink(where)
    for event in synthetic_run():
        sink(event)
    sink.close(wait=True)
    return sink


def test_a_sink_that_cannot_write_keeps_the_error_warns_once_and_raises_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    database = TraceDatabase(tmp_path / "traces.db")
    real = core_db._connect
    monkeypatch.setattr(core_db, "_connect", lambda *a, **k: _FullDisk(real(*a, **k)))
    crashed: list[object] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    with caplog.at_level(logging.WARNING, logger="contextflow.trace"):
        sink = TraceSink(database)
        for event in synthetic_run():
            sink(event)
            sink.flush()  # one write per event: only the first failure is reported
        sink.close(wait=True)
    assert isinstance(sink.error, StateError) and "the disk is full" in str(sink.error)
    assert str(tmp_path / "traces.db") in str(sink.error)
    warnings = [r for r in caplog.records if "the trace is not being recorded" in r.getMessage()]
    assert len(warnings) == 1 and not crashed

    monkeypatch.setattr(core_db, "_connect", real)  # space is free again: the next sink writes afresh
    assert _record(database).error is None
    assert TraceStore(database).run(RUN)["status"] == "succeeded"


def test_reading_a_truncated_trace_is_a_state_error_that_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    database = TraceDatabase(path)
    _record(database)
    database.close()  # everything in the file, nothing left in the WAL
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StateError, match="is damaged") as broken:
        TraceStore(TraceDatabase(path)).list_runs()
    assert str(path) in str(broken.value) and broken.value.exit_code == 1


def test_a_trace_from_a_newer_contextflow_is_neither_read_nor_written(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={STATE_FORMAT_VERSION + 3}")
    db.commit()
    db.close()
    for attempt in (lambda: TraceStore(TraceDatabase(path)).list_runs(), lambda: TraceDatabase(path).open()):
        with pytest.raises(StateError, match=f"format version {STATE_FORMAT_VERSION + 3}"):
            attempt()


def test_an_in_memory_trace_is_written_and_read_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = TraceStore.in_memory()
    assert _record(store.database).error is None
    run = store.run(RUN)
    assert run["status"] == "succeeded" and run["cost_usd"] == pytest.approx(0.007)
    assert {s["node_id"] for s in run["spans"] if s["kind"] == "node"} == {"a", "b", "c", "d"}
    assert [r["run_id"] for r in store.list_runs()] == [RUN]
    assert TraceStore.in_memory().list_runs() == []  # each in-memory trace is its own
    assert list(tmp_path.iterdir()) == []

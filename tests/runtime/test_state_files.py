"""The one SQLite opener: format versions, damaged files, a read-only folder and a full disk, in process."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

import hostile_state
import runtime_helpers as rh
from contextflow.api import arun, aresume
from contextflow.core import db as core_db
from contextflow.core.db import StateError, open_db, state_error
from contextflow.core.errors import UserError
from contextflow.core.state import STATE_FORMAT_VERSION, StateDir
from contextflow.cost.budget import SQLiteLedger
from contextflow.retrievers.embeddings import VectorCache
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.trace import TraceDatabase, TraceStore


def _stamp(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={version}")
    db.commit()
    db.close()


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


OPENERS = {
    "run store": lambda p: SQLiteRunStore(p).close(),
    "run store, read-only": lambda p: SQLiteRunStore(p, readonly=True).close(),
    "budget ledger": lambda p: SQLiteLedger(p, "k").totals(),
    "trace sink": lambda p: TraceDatabase(p).open(),
    "trace reader": lambda p: TraceStore(TraceDatabase(p)).list_runs(),
    "vector cache": lambda p: VectorCache(p),
}


@pytest.mark.parametrize("opener", sorted(OPENERS))
def test_every_opener_refuses_a_database_from_a_newer_contextflow(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "state.db"
    _stamp(path, STATE_FORMAT_VERSION + 1)
    before = path.read_bytes()
    with pytest.raises(StateError) as refused:
        OPENERS[opener](path)
    message = str(refused.value)
    assert str(path) in message and f"format version {STATE_FORMAT_VERSION + 1}" in message
    assert "upgrade contextflow" in message
    assert isinstance(refused.value, UserError) and path.read_bytes() == before  # left as it was


def test_an_unstamped_database_is_migrated_and_stamped_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SQLiteRunStore(path) as store:
        store.create_run("old", pipeline="p", spec={}, inputs={})
    db = sqlite3.connect(path)
    db.execute("DROP TABLE decisions")  # as an older contextflow that had no approvals
    db.execute("PRAGMA user_version=0")
    db.commit()
    db.close()
    with SQLiteRunStore(path) as store:
        assert store.get_run("old") is not None
        store.record_decision("old", "n", "approve", actor="me")  # the missing table was created
    assert _version(path) == STATE_FORMAT_VERSION


def test_two_kinds_of_database_can_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteRunStore(path).close()
    ledger = SQLiteLedger(path, "k")  # the file is already stamped: the ledger's table is still made
    assert ledger.totals().spent_cost_usd == 0.0


def test_a_read_only_run_store_reads_and_refuses_writes_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with SQLiteRunStore(path) as store:
        store.create_run("r", pipeline="p", spec={}, inputs={})
    with SQLiteRunStore(path, readonly=True) as store:  # SQLite's mode=ro: a real read-only connection
        assert [r.run_id for r in store.list_runs()] == ["r"]
        with pytest.raises(StateError, match="read-only") as refused:
            store.set_run_status("r", "failed")
    assert str(path) in str(refused.value) and "CONTEXTFLOW_HOME" in str(refused.value)
    with pytest.raises(StateError, match="no run store database"):
        SQLiteRunStore(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(("damage", "expected"), [
    ("truncated", "damaged"), ("garbage header", "damaged"), ("random page", "damaged"), ("folder", "is a folder"),
])
def test_a_damaged_run_store_is_a_state_error_that_names_the_file(tmp_path: Path, damage: str, expected: str) -> None:
    path = tmp_path / "runs.db"
    with SQLiteRunStore(path) as store:
        store.create_run("r", pipeline="p", spec={"text": "x" * 20_000}, inputs={})
    hostile_state.damage_file(path, damage)
    with pytest.raises(StateError, match=expected) as broken:
        with SQLiteRunStore(path) as store:
            store.list_runs()
    assert str(path) in str(broken.value) and "mv " in str(broken.value)
    assert broken.value.exit_code == 1


@pytest.mark.parametrize(("error", "says"), [
    (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
    (PermissionError(errno.EACCES, "Permission denied"), "read-only"),
    (sqlite3.DatabaseError("file is not a database"), "damaged"),
    (sqlite3.DatabaseError("database disk image is malformed"), "damaged"),
    (sqlite3.OperationalError("database is locked"), "locked by another process"),
    (sqlite3.OperationalError("disk I/O error"), "disk I/O error"),
])
def test_each_kind_of_sqlite_failure_has_its_own_message(tmp_path: Path, error: Exception, says: str) -> None:
    mapped = state_error(error, tmp_path / "x.db", "run store")
    assert says in mapped.message and str(tmp_path / "x.db") in mapped.message and mapped.hint


def test_open_db_in_memory_needs_no_file(tmp_path: Path) -> None:
    conn = open_db(None, kind="scratch", schema="CREATE TABLE IF NOT EXISTS t (x);")
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == STATE_FORMAT_VERSION
    assert list(tmp_path.iterdir()) == []


# a full disk in the middle of a run -----------------------------------------------------------

def _chain(log: Path) -> object:
    nodes = []
    for i, tag in enumerate(("a", "b", "c")):
        args: dict[str, object] = {"seconds": 0, "log": str(log), "tag": tag}
        if i:
            args["value"] = "${" + "abc"[i - 1] + "}"
        nodes.append({"id": tag, "kind": "python", "function": f"{rh.PREFIX}:nap", "args": args})
    return rh.pipeline(nodes, name="chain")


@pytest.mark.parametrize("mode", ["full-nodes-after-1", "full-all-after-1"])
async def test_a_run_that_fills_the_disk_fails_plainly_and_resumes(
        state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    log = tmp_path / "starts.log"
    roomy = core_db._connect
    hostile_state.install(mode, monkeypatch.setattr)
    result = await arun(_chain(log), run_id="full-run")
    assert result.status == "failed"
    assert "could not write checkpoints" in result.error and "the disk is full" in result.error
    assert result.nodes["a"].status == "succeeded" and result.nodes["c"].status == "pending"
    monkeypatch.setattr(core_db, "_connect", roomy)  # space is free again

    with SQLiteRunStore(StateDir.for_project().runs_db) as store:
        record = store.get_run("full-run")
        assert set(store.load_nodes("full-run")) == {"a"}  # the first commit is kept
    if mode == "full-nodes-after-1":
        assert record.status == "failed" and "the disk is full" in record.error  # not left as running
    else:  # even the run's last status could not be written; the result said so
        assert record.status == "running" and "could not record how the run ended" in result.error

    done = await aresume("full-run")
    assert done.status == "succeeded" and done.outputs == {"c": "a"}  # values flowed through the resume
    # 'a' ran once (its checkpoint survived); 'b' ran again (its checkpoint never reached the disk)
    assert log.read_text().split() == ["a", "b", "b", "c"]


async def test_a_disk_full_before_the_run_starts_is_a_state_error(
        state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile_state.install("full", monkeypatch.setattr)
    with pytest.raises(StateError, match="the disk is full") as refused:
        await arun(_chain(tmp_path / "log"), trace=False)
    assert "runs.db" in str(refused.value) and "resume" in str(refused.value)
    assert not (tmp_path / "log").exists()  # nothing ran

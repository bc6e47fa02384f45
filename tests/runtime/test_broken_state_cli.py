"""Broken state from the command line: a plain message naming the file, exit 1, no traceback, nothing lost.

Each case runs the real CLI in a child process (``python -m contextflow``, or ``hostile_state.py``
where the state folder must be read-only or the disk full: see that module for how, as root).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from contextflow.api import run
from contextflow.core.state import STATE_FORMAT_VERSION
from contextflow.runtime.api import load_spec
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.trace import TraceDatabase
from contextflow.trace.sink import drain
from hostile_state import damage_file

HERE = Path(__file__).parent
HOSTILE = HERE / "hostile_state.py"

PIPELINE = """\
name: tiny
nodes:
  - id: a
    kind: python
    function: runtime_helpers:nap
    args: {{seconds: 0, log: "{log}", tag: a}}
  - id: b
    kind: python
    function: runtime_helpers:nap
    args: {{seconds: 0, log: "{log}", tag: b, value: "${{a}}"}}
  - id: c
    kind: python
    function: runtime_helpers:nap
    args: {{seconds: 0, log: "{log}", tag: c, value: "${{b}}"}}
"""


@pytest.fixture()
def project(tmp_path: Path, state_home: Path) -> dict:
    """A pipeline file, its start log and one finished, traced run in the state folder."""
    log = tmp_path / "starts.log"
    pipeline = tmp_path / "tiny.yaml"
    pipeline.write_text(PIPELINE.format(log=log))
    spec = load_spec(pipeline, allow_imports=["runtime_helpers"])
    first = run(spec, allow_imports=["runtime_helpers"])  # in process: quicker than one more child
    assert first.status == "succeeded", first.error
    drain()  # its spans are written before a child reads them,
    TraceDatabase.at(state_home / "traces.db").close()  # and in the file itself, not only its WAL
    return {"pipeline": pipeline, "log": log, "state": state_home, "run_id": first.run_id}


def _cli(*args: str, hostile: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(HOSTILE), hostile] if hostile else [sys.executable, "-m", "contextflow"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=120)


def _plain_failure(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, (phrase, done.stderr)


def _run(project: dict, hostile: str | None = None) -> subprocess.CompletedProcess[str]:
    return _cli("run", str(project["pipeline"]), "--allow-import", "runtime_helpers", "--json", hostile=hostile)


@pytest.mark.parametrize(("damage", "says"), [
    ("truncated", "is damaged"), ("garbage header", "is damaged"), ("random page", "is damaged"),
    ("folder", "is a folder, not a run store database"),
])
def test_a_broken_runs_db_is_a_plain_error_for_runs_run_and_resume(project: dict, damage: str, says: str) -> None:
    runs_db = project["state"] / "runs.db"
    damage_file(runs_db, damage)
    before = runs_db.read_bytes() if runs_db.is_file() else None
    commands = [_cli("runs"), _run(project)] + ([_cli("resume", project["run_id"])] if damage == "truncated" else [])
    for done in commands:
        _plain_failure(done, str(runs_db), says, f"mv {runs_db} ")
    if before is not None:
        assert runs_db.read_bytes() == before  # nothing was changed: whatever it held can still be recovered
    else:
        assert runs_db.is_dir() and not any(runs_db.iterdir())


@pytest.mark.parametrize("damage", ["truncated", "garbage header"])
def test_a_damaged_traces_db_is_a_plain_error_for_trace_list_and_run_and_leaves_runs_readable(
        project: dict, damage: str) -> None:
    traces_db = project["state"] / "traces.db"
    damage_file(traces_db, damage)
    _plain_failure(_cli("trace", "list"), str(traces_db), "is damaged")
    _plain_failure(_run(project), str(traces_db), "is damaged", "mv ")  # refused before anything ran
    assert project["log"].read_text().split() == ["a", "b", "c"]  # only the fixture's run ever ran
    listed = _cli("runs", "--json")
    assert listed.returncode == 0 and [r["run_id"] for r in json.loads(listed.stdout)] == [project["run_id"]]


def test_a_read_only_state_folder_can_be_read_but_not_written(project: dict) -> None:
    state = project["state"]
    state.chmod(0o555)  # what a user would do; root writes through it, hence the simulation as well
    try:
        listed = _cli("runs", hostile="readonly")
        assert listed.returncode == 0 and project["run_id"] in listed.stdout, listed.stderr
        traced = _cli("trace", "list", "--json", hostile="readonly")
        assert traced.returncode == 0, traced.stderr
        assert [r["run_id"] for r in json.loads(traced.stdout)] == [project["run_id"]]
        _plain_failure(_run(project, hostile="readonly"), "runs.db", "read-only", "CONTEXTFLOW_HOME")
    finally:
        state.chmod(0o755)
    with SQLiteRunStore(state / "runs.db") as store:
        assert [r.run_id for r in store.list_runs()] == [project["run_id"]]  # nothing lost, nothing added


def test_a_runs_db_from_a_newer_contextflow_is_refused_with_what_to_do(project: dict) -> None:
    runs_db = project["state"] / "runs.db"
    db = sqlite3.connect(runs_db)
    db.execute(f"PRAGMA user_version={STATE_FORMAT_VERSION + 1}")
    db.commit()
    db.close()
    for done in (_cli("runs"), _run(project)):
        _plain_failure(done, str(runs_db), f"format version {STATE_FORMAT_VERSION + 1}", "upgrade contextflow")


def test_a_full_disk_before_the_run_is_a_plain_error(project: dict) -> None:
    _plain_failure(_run(project, hostile="full"), "the disk is full")
    assert project["log"].read_text().split() == ["a", "b", "c"]  # only the fixture's run ever ran


@pytest.mark.parametrize("mode", ["full-nodes-after-1", "full-all-after-1"])
def test_a_run_that_fills_the_disk_exits_plainly_and_resumes(project: dict, mode: str) -> None:
    project["log"].unlink()
    done = _run(project, hostile=mode)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "failed" and "the disk is full" in summary["error"]
    with SQLiteRunStore(project["state"] / "runs.db") as store:
        stored = store.get_run(summary["run_id"]).status
    assert stored == ("failed" if mode == "full-nodes-after-1" else "running")
    resumed = _cli("resume", summary["run_id"], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["status"] == "succeeded"
    assert project["log"].read_text().split() == ["a", "b", "b", "c"]  # 'a' was kept; 'b' had not reached disk

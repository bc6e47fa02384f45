"""Checkpoints: kill -9 mid-run loses no finished node, resume runs only the rest, Ctrl-C is resumable."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runtime_helpers as rh
from contextflow.core.errors import UserError
from contextflow.api import arun, aresume, resume
from contextflow.runtime.sqlite_store import SQLiteRunStore

HERE = Path(__file__).parent
TARGET = HERE / "run_target.py"


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CONTEXTFLOW_HOME"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


def _foreground() -> None:
    """Run in the child before exec: SIGINT as in a terminal's foreground job.

    A test run started in the background of a non-interactive shell (``cmd &``) inherits SIGINT
    ignored, and a child started with it ignored rightly keeps ignoring Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_lines(log: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"the child never logged {count} node starts")


def _wait_for_committed(project: Path, run_id: str, timeout: float = 30.0) -> None:
    import sqlite3

    deadline = time.monotonic() + timeout
    db = project / ".contextflow" / "runs.db"
    while time.monotonic() < deadline:
        try:
            if db.exists():
                with SQLiteRunStore(db) as store:
                    if any(r.finished for r in store.load_nodes(run_id).values()):
                        return
        except (sqlite3.Error, OSError):
            pass  # not created yet
        time.sleep(0.01)
    raise AssertionError("no node result was ever committed")


def _stored(project: Path, run_id: str) -> dict:
    with SQLiteRunStore(project / ".contextflow" / "runs.db") as store:
        return store.load_nodes(run_id), store.get_run(run_id)


@pytest.mark.parametrize(("checkpoint", "kill_after"), [("node", 7), ("node", 13), ("background", 10)])
def test_kill_9_mid_run_then_resume_runs_no_finished_node_twice(tmp_path, checkpoint, kill_after):
    project, log, run_id = tmp_path / "proj", tmp_path / "starts.log", f"kill-{kill_after}"
    project.mkdir()
    child = subprocess.Popen(
        [sys.executable, str(TARGET), "run", str(project), str(log), run_id, checkpoint], env=_env(project),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _wait_for_lines(log, kill_after)
    if checkpoint == "background":
        # Commits trail the loop by design; kill once at least one result is on disk, so the
        # test checks what matters (no committed node runs twice) rather than the writer's lag.
        _wait_for_committed(project, run_id)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    nodes, record = _stored(project, run_id)
    finished_before = {n for n, r in nodes.items() if r.finished}
    assert record.status == "running"  # it never got to say anything else
    assert 0 < len(finished_before) < 18

    done = subprocess.run(
        [sys.executable, str(TARGET), "resume", str(project), run_id], env=_env(project),
        capture_output=True, text=True, timeout=120,
    )
    assert done.stdout.strip().endswith("succeeded"), done.stderr
    runs = collections.Counter(log.read_text().split())
    assert set(runs) == {f"l{layer}_{i}" for layer in range(3) for i in range(6)}
    for node_id in finished_before:
        assert runs[node_id] == 1, f"{node_id} was finished before the kill but ran again"
    nodes, record = _stored(project, run_id)
    assert record.status == "succeeded" and all(r.status == "succeeded" for r in nodes.values())
    assert nodes["l2_3"].value == "l0_3"  # values flowed through the resumed chain


def test_ctrl_c_cancels_in_flight_work_and_leaves_the_run_resumable(tmp_path):
    project, log = tmp_path / "proj", tmp_path / "starts.log"
    project.mkdir()
    pipeline = project / "slow.yaml"
    lines = ["name: slow", "nodes:"]
    for i in range(4):
        lines += [f"  - id: first{i}", "    kind: python", f"    function: {rh.PREFIX}:nap",
                  f"    args: {{seconds: 0.05, log: '{log}', tag: first{i}}}"]
        lines += [f"  - id: long{i}", "    kind: python", f"    function: {rh.PREFIX}:nap",
                  f"    args: {{seconds: 30, log: '{log}', tag: long{i}, value: '${{first{i}}}'}}"]
    # a blocking function in a thread cannot be interrupted: Ctrl-C must not wait for it either
    lines += ["  - id: stuck", "    kind: python", f"    function: {rh.PREFIX}:blocking_nap", "    args: {seconds: 30}"]
    pipeline.write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "contextflow", "run", str(pipeline), "--project", str(project),
               "--allow-import", rh.PREFIX, "--no-trace"]
    child = subprocess.Popen(command, env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=_foreground)
    _wait_for_lines(log, 8)  # the four short nodes are done and the four 30 s ones are in flight
    time.sleep(0.1)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert time.monotonic() - sent < 10, "in-flight nodes were not cancelled"
    assert child.returncode == 130, err
    assert "Traceback" not in err
    run_id = err.split("contextflow resume ")[-1].split()[0]
    nodes, record = _stored(project, run_id)
    assert record.status == "cancelled"
    assert {n for n, r in nodes.items() if r.finished} == {f"first{i}" for i in range(4)}

    # Resume works from the stored spec alone (the YAML file is gone): only the unfinished
    # long nodes start again (interrupted once more to keep the test short).
    pipeline.unlink()
    resumed = subprocess.Popen(
        [sys.executable, "-m", "contextflow", "resume", run_id, "--project", str(project), "--json", "--no-trace"],
        env=_env(project), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_foreground,
    )
    _wait_for_lines(log, 12)
    resumed.send_signal(signal.SIGINT)
    resumed.communicate(timeout=30)
    starts = collections.Counter(log.read_text().split())
    assert all(starts[f"first{i}"] == 1 for i in range(4))
    assert all(starts[f"long{i}"] == 2 for i in range(4))


def test_ctrl_c_delivered_to_a_worker_thread_still_cancels_at_once(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    pipeline = project / "poke.yaml"
    pipeline.write_text(
        "name: poke\nnodes:\n"
        f"  - {{id: long, kind: python, function: '{rh.PREFIX}:nap', args: {{seconds: 30}}}}\n"
        f"  - {{id: poke, kind: python, function: '{rh.PREFIX}:interrupt_from_worker_thread', args: {{delay: 0.3}}}}\n"
    )
    command = [sys.executable, "-m", "contextflow", "run", str(pipeline), "--project", str(project),
               "--allow-import", rh.PREFIX, "--no-trace"]
    started = time.monotonic()
    done = subprocess.run(command, env=_env(project), capture_output=True, text=True, timeout=60,
                          preexec_fn=_foreground)
    # Before the loop's own handler, the loop slept on the 30 s timer and Ctrl-C waited for it.
    assert time.monotonic() - started < 20, "Ctrl-C waited for the next timer"
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "contextflow resume" in done.stderr


async def test_resume_in_process_skips_finished_nodes(state_home, tmp_path):
    log = tmp_path / "starts.log"
    nodes = [
        {"id": "a", "kind": "python", "function": f"{rh.PREFIX}:nap", "args": {"seconds": 0, "log": str(log), "tag": "a"}},
        {"id": "b", "kind": "python", "function": f"{rh.PREFIX}:boom", "args": {"message": "${a}"}},
        {"id": "c", "kind": "python", "function": f"{rh.PREFIX}:nap",
         "args": {"seconds": 0, "log": str(log), "tag": "c", "value": "${b}"}},
    ]
    first = await arun(rh.pipeline(nodes), trace=False)
    assert first.status == "failed" and first.nodes["a"].status == "succeeded"
    with pytest.raises(UserError, match="running event loop"):
        resume(first.run_id, trace=False)  # the sync API inside a loop: a clear error, not a hang
    # b fails the same way again; a is not re-run.
    again = await aresume(first.run_id, trace=False)
    assert again.status == "failed"
    assert log.read_text().split() == ["a"]


@pytest.mark.parametrize("checkpoint", ["background", "off"])
async def test_checkpoint_modes(state_home, checkpoint):
    nodes = [{"id": f"n{i}", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": i}} for i in range(50)]
    result = await arun(rh.pipeline(nodes), trace=False, checkpoint=checkpoint)
    assert result.status == "succeeded"
    with SQLiteRunStore(state_home / "runs.db") as store:
        stored = store.load_nodes(result.run_id)
        record = store.get_run(result.run_id)
    assert record.status == "succeeded"
    if checkpoint == "background":
        assert {n: r.value for n, r in stored.items()} == {f"n{i}": i for i in range(50)}
    else:
        assert stored == {}


async def test_a_run_executing_in_another_live_process_is_not_resumed(state_home):
    import socket

    first = await arun(rh.pipeline([{"id": "a", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": 1}}]),
                       trace=False)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with SQLiteRunStore(state_home / "runs.db") as store:
            store._conn.execute(
                "INSERT OR REPLACE INTO run_owners (run_id, host, pid, claimed_at) VALUES (?, ?, ?, 0)",
                (first.run_id, socket.gethostname(), holder.pid),
            )
        with pytest.raises(UserError, match=f"being executed by process {holder.pid}"):
            await aresume(first.run_id, trace=False)
    finally:
        holder.kill()
        holder.wait()
    assert (await aresume(first.run_id, trace=False)).status == "succeeded"  # a dead holder does not block
    with pytest.raises(UserError, match="already exists"):
        await arun(rh.pipeline([{"id": "a", "kind": "python", "function": f"{rh.PREFIX}:add", "args": {"a": 1}}]),
                   trace=False, run_id=first.run_id)

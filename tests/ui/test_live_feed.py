"""The viewer's live feed (server-sent events) of a run whose trace is still being written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contextflow.core.state import StateDir
from contextflow.trace import TraceSink
from contextflow.ui.app import create_app
from synthetic_trace import synthetic_run

BASE = "http://127.0.0.1:8321"


def _write(state: StateDir, events: list) -> None:
    sink = TraceSink(state.traces_db)
    for event in events:
        sink(event)
    sink.close(wait=True)


def _messages(lines):
    """(event, data) pairs from a text/event-stream, in order."""
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


@pytest.fixture()
def half_run(tmp_path: Path):
    """A state folder whose run-1 is still going: a finished, b running."""
    from fastapi.testclient import TestClient

    state = StateDir(tmp_path / ".contextflow").ensure()
    events = synthetic_run()
    _write(state, events[:7])
    return TestClient(create_app(state), base_url=BASE), state, events


def test_the_feed_streams_spans_written_after_it_started(half_run) -> None:
    client, state, events = half_run
    seen = []
    with client.stream("GET", "/api/runs/run-1/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        messages = _messages(response.iter_lines())
        first = next(messages)
        assert first == ("ready", {"run_id": "run-1", "status": "running"})
        _write(state, events[7:])  # b finishes, c and d run, the run ends: after the feed's first look
        for name, data in messages:
            seen.append((name, data))
            if name == "end":
                break
    spans = {data["span_id"]: data for name, data in seen if name == "span"}
    assert spans["run-1/b"]["status"] == "succeeded" and spans["run-1/b"]["attributes"]["contextflow.output"] == "B"
    assert spans["run-1/c"]["status"] == "succeeded" and spans["run-1/d"]["status"] == "succeeded"
    assert "run-1/a" not in spans  # unchanged since the feed started: not sent again
    assert ("run", {"run_id": "run-1", "status": "succeeded", "finished": events[-1].ts, "error": None}) in seen
    assert seen[-1] == ("end", {"run_id": "run-1", "status": "succeeded"})


def test_a_settled_run_s_feed_ends_at_once(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    state = StateDir(tmp_path / ".contextflow").ensure()
    _write(state, synthetic_run())
    client = TestClient(create_app(state), base_url=BASE)
    with client.stream("GET", "/api/runs/run-1/events") as response:
        names = [name for name, _ in _messages(response.iter_lines())]
    assert names == ["ready", "end"]


def test_the_feed_refuses_other_hosts_origins_bad_ids_and_unknown_runs(half_run) -> None:
    client, _, _ = half_run
    assert client.get("/api/runs/run-1/events", headers={"host": "attacker.example"}).status_code == 403
    assert client.get("/api/runs/run-1/events", headers={"origin": "http://attacker.example"}).status_code == 403
    assert client.get("/api/runs/bad%20id/events").status_code == 400
    assert client.get("/api/runs/no-such-run/events").status_code == 404

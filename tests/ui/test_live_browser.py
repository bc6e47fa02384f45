"""The viewer follows a running run in a real browser: live events redraw it, a waiting node shows."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from contextflow.core import events as ev
from contextflow.core.waiting import Waiting
from contextflow.core.state import StateDir
from contextflow.trace import TraceSink
from synthetic_trace import synthetic_run

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser


def _write(state: StateDir, events: list) -> None:
    sink = TraceSink(state.traces_db)
    for event in events:
        sink(event)
    sink.close(wait=True)


@pytest.fixture()
def running_viewer(tmp_path: Path):
    """(base url, state, the run's events) of a viewer whose run-1 is still going (a done, b running)."""
    import uvicorn

    from contextflow.ui.app import create_app

    state = StateDir(tmp_path / ".contextflow").ensure()
    events = synthetic_run()
    _write(state, events[:7])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", state, events
    server.should_exit = True
    thread.join(timeout=10)


def test_the_run_page_redraws_from_live_events_and_opens_a_waiting_node(running_viewer, page) -> None:
    base, state, events = running_viewer
    page.goto(base + "/#/run/run-1")
    page.wait_for_selector("body[data-live='open']")
    assert page.text_content("#dag [data-node='b'] title") == "b: running"
    assert page.locator("#waiting-banner").count() == 0
    t0 = 1000.0
    _write(state, [
        events[7], events[8],  # b finishes
        ev.NodeStarted("run-1", "c", "llm", ts=t0 + 2),
        ev.NodeWaiting("run-1", "c", Waiting("before", "approval", proposal={"command": "<b>rm -rf</b>"}), ts=t0 + 2.1),
        ev.RunFinished("run-1", "waiting", {}, 0.003, ev.Usage(30, 10), ts=t0 + 2.1),
    ])
    page.wait_for_selector("#waiting-banner [data-node='c']")
    page.wait_for_selector("#details h2:text('Node c')")  # opened by itself: a decision is needed
    assert page.text_content("#dag [data-node='b'] title") == "b: succeeded"
    assert "<b>rm -rf</b>" in page.inner_text("#details")  # shown as text
    assert page.locator("#details b:text('rm -rf')").count() == 0
    page.wait_for_selector("body[data-live='ended']")
    assert int(page.get_attribute("body", "data-live-events")) >= 3
    assert page.inner_text("#totals").startswith("Status")
    assert "waiting" in page.inner_text("#totals")
    page.screenshot(path=str(ARTIFACTS / "viewer-live.png"), full_page=True)

"""A live viewer on 127.0.0.1 over a recorded trace, and a headless Chromium to drive it."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trace"))

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_ENV = "CONTEXTFLOW_TEST_ARTIFACTS"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def viewer(tmp_path: Path):
    """(base url, state) of a viewer serving a synthetic recorded run."""
    import uvicorn

    from contextflow.core.state import StateDir
    from contextflow.trace import TraceSink
    from contextflow.ui.app import create_app
    from synthetic_trace import synthetic_run

    state = StateDir(tmp_path / ".contextflow").ensure()
    sink = TraceSink(state.traces_db)
    for event in synthetic_run():
        sink(event)
    sink.close()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def artifacts(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: ``$CONTEXTFLOW_TEST_ARTIFACTS`` when set (to keep them,
    e.g. in CI), else this test's own temporary folder, so runs of the suite never share files."""
    named = os.environ.get(ARTIFACTS_ENV)
    folder = Path(named) if named else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def page():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1300, "height": 1000})
        yield tab
        browser.close()

"""Approvals from the viewer: a run waits at a side effect, a person approves it in the browser,
the viewer resumes the run and it finishes. Plus the endpoints' guards (no browser needed)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest


def _waiting_run(project: Path, *, content: str = "hello from the model") -> str:
    """A real run at autonomy 'ask': 'draft' (python) feeds 'save' (write_file), which waits."""
    from contextflow.dags.imports import register_function
    from contextflow.api import run

    register_function(lambda: content, "approval_browser_helpers:draft")
    spec = {
        "name": "approve-in-browser",
        "nodes": [
            {"id": "draft", "kind": "python", "function": "approval_browser_helpers:draft"},
            {"id": "save", "kind": "tool", "tool": "write_file", "args": {"path": "notes/out.txt", "content": "${draft}"}},
            {"id": "done", "kind": "python", "function": "approval_browser_helpers:draft", "depends_on": ["save"]},
        ],
    }
    result = run(spec, project=project, workdir=project, autonomy="ask", cache=False)
    assert result.status == "waiting", result.error
    assert result.nodes["save"].status == "waiting"
    assert not (project / "notes" / "out.txt").exists()
    return result.run_id


@pytest.fixture()
def live_viewer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(base url, project folder, router) of a viewer over a project with one waiting run."""
    import uvicorn

    from contextflow.core.state import StateDir
    from contextflow.ui.app import create_app

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.delenv("CONTEXTFLOW_HOME", raising=False)
    run_id = _waiting_run(project)
    app = create_app(StateDir.for_project(project))
    from contextflow.ui.approvals import resumer_of

    router = resumer_of(StateDir.for_project(project))
    sock_port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=sock_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock_port}", project, run_id, router
    server.should_exit = True
    thread.join(timeout=10)


def _decide_headers(base: str) -> dict[str, str]:
    """What the viewer's page sends with a decision: the action header and the page's CSRF value."""
    page = httpx.get(f"{base}/").text
    csrf = re.search(r'<meta name="contextflow-csrf" content="([^"]+)">', page)
    assert csrf, "the served page carries the CSRF value"
    return {"X-Contextflow-Action": "1", "X-Contextflow-CSRF": csrf[1]}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.browser
def test_approving_a_waiting_node_in_the_viewer_finishes_the_run(live_viewer, page, artifacts) -> None:
    base, project, run_id, resumer = live_viewer
    page.goto(f"{base}/#/run/{run_id}")
    page.wait_for_selector("#dag")
    page.click("#waiting-banner [data-node='save']")  # the page says what waits
    page.wait_for_selector("#approval #approve")
    diff = page.inner_text("#approval-diff")  # the diff it would write, as plain text lines
    assert "+++ b/notes/out.txt" in diff.splitlines() and "+hello from the model" in diff.splitlines()
    page.fill("#approval-comment", "looks right")
    page.screenshot(path=str(artifacts / "viewer-approval-panel.png"), full_page=True)
    page.click("#approval #approve")
    page.wait_for_function("() => (document.querySelector('#totals') || {}).innerText?.includes('succeeded')",
                           timeout=60_000)
    page.wait_for_selector("#details h2:text('Node save')")  # the redrawn page reopens the decided node
    assert "succeeded" in page.inner_text("#details .cards")
    decision = page.inner_text("#details .decision")  # the decision span from the trace: who, when, why
    assert decision.startswith("Decision: approve by ") and "looks right" in decision
    page.screenshot(path=str(artifacts / "viewer-approved.png"), full_page=True)
    assert (project / "notes" / "out.txt").read_text() == "hello from the model"

    from contextflow.runtime.approvals import decisions

    made = decisions(run_id, project=project)
    assert [(d.node_id, d.decision, d.comment, d.applied) for d in made] == [("save", "approve", "looks right", True)]
    from contextflow.runtime.sqlite_store import SQLiteRunStore
    from contextflow.core.state import StateDir

    with SQLiteRunStore(StateDir.for_project(project).runs_db) as store:
        assert store.get_run(run_id).status == "succeeded"
        assert {n: r.status for n, r in store.load_nodes(run_id).items()} == {
            "draft": "succeeded", "save": "succeeded", "done": "succeeded"}


def test_decision_endpoints_refuse_cross_site_requests_and_bad_ids(live_viewer) -> None:
    base, project, run_id, resumer = live_viewer
    url = f"{base}/api/runs/{run_id}/nodes/save/approve"
    # A cross-site page cannot add the custom header without a preflight this app never grants.
    assert httpx.post(url, json={}).status_code == 403
    rebound = httpx.post(url, json={}, headers={"X-Contextflow-Action": "1", "Host": "evil.example:8321"})
    assert rebound.status_code == 403 and "127.0.0.1" in rebound.json()["detail"]  # DNS rebinding
    # Host and the action header are not enough: the page's CSRF value is needed too.
    no_csrf = httpx.post(url, json={}, headers={"X-Contextflow-Action": "1", "Host": "localhost"
                                                + base[base.rindex(":"):]})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    wrong = httpx.post(url, json={}, headers={"X-Contextflow-Action": "1", "X-Contextflow-CSRF": "guess"})
    assert wrong.status_code == 403
    decide = _decide_headers(base)
    assert httpx.post(f"{base}/api/runs/..%2Fx/nodes/save/approve", json={},
                      headers=decide).status_code in (400, 404)
    bad_node = httpx.post(f"{base}/api/runs/{run_id}/nodes/no-such/approve", json={}, headers=decide)
    assert bad_node.status_code == 400
    not_waiting = httpx.post(f"{base}/api/runs/{run_id}/nodes/draft/approve", json={}, headers=decide)
    assert not_waiting.status_code == 409 and "not waiting" in not_waiting.json()["detail"]
    shown = httpx.get(f"{base}/api/runs/{run_id}/pending").json()
    assert list(shown["nodes"]) == ["save"]
    assert not (project / "notes" / "out.txt").exists()  # nothing above wrote the file


def test_reject_from_the_viewer_skips_the_branch(live_viewer) -> None:
    base, project, run_id, resumer = live_viewer
    answer = httpx.post(f"{base}/api/runs/{run_id}/nodes/save/reject", json={"comment": "no"},
                        headers=_decide_headers(base))
    assert answer.status_code == 200 and answer.json()["resuming"] is True
    resumer.join(60)
    assert resumer.outcomes[run_id]["status"] == "succeeded"
    from contextflow.runtime.sqlite_store import SQLiteRunStore
    from contextflow.core.state import StateDir

    with SQLiteRunStore(StateDir.for_project(project).runs_db) as store:
        nodes = store.load_nodes(run_id)
    assert nodes["save"].status == "skipped" and nodes["done"].status == "skipped"
    assert not (project / "notes" / "out.txt").exists()


def test_an_edit_from_the_viewer_changes_what_the_tool_writes(live_viewer) -> None:
    base, project, run_id, resumer = live_viewer
    shown = httpx.get(f"{base}/api/runs/{run_id}/pending").json()["nodes"]["save"]
    assert shown["editable"] == {"path": "notes/out.txt", "content": "hello from the model"}
    value = {**shown["editable"], "content": "edited by a person"}
    answer = httpx.post(f"{base}/api/runs/{run_id}/nodes/save/edit", json={"value": value},
                        headers=_decide_headers(base))
    assert answer.status_code == 200, answer.text
    resumer.join(60)
    assert resumer.outcomes[run_id]["status"] == "succeeded"
    assert (project / "notes" / "out.txt").read_text() == "edited by a person"
    from contextflow.runtime.approvals import decisions

    (made,) = decisions(run_id, project=project)
    assert made.decision == "edit" and "+  \"content\": \"edited by a person\"" in made.diff


def test_reject_and_abort_from_the_viewer_ends_the_run(live_viewer) -> None:
    base, project, run_id, resumer = live_viewer
    answer = httpx.post(f"{base}/api/runs/{run_id}/nodes/save/reject", json={"abort": True},
                        headers=_decide_headers(base))
    assert answer.status_code == 200 and answer.json()["resuming"] is False
    from contextflow.runtime.sqlite_store import SQLiteRunStore
    from contextflow.core.state import StateDir

    with SQLiteRunStore(StateDir.for_project(project).runs_db) as store:
        record = store.get_run(run_id)
    assert record.status in ("failed", "cancelled") and "abort" in (record.error or "")
    assert not (project / "notes" / "out.txt").exists()
    assert httpx.get(f"{base}/api/runs/{run_id}/pending").json()["nodes"] == {}

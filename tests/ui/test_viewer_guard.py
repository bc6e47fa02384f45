"""The viewer's gate, route by route: exact Host and Origin, other sites, the access token of a
remote viewer, and the page's CSRF value on decisions (no browser needed: FastAPI's TestClient)."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from synthetic_trace import RUN, synthetic_run

from contextflow.core.state import StateDir
from contextflow.trace import TraceSink
from contextflow.ui.app import create_app, viewer_access
from contextflow.ui.guard import RequestView, ViewerAccess

PORT = 8321
GOOD = f"127.0.0.1:{PORT}"
GET_ROUTES = [
    "/", "/static/app.js", "/static/style.css", "/api/runs", f"/api/runs/{RUN}",
    f"/api/compare?a={RUN}&b={RUN}", f"/api/runs/{RUN}/whatif?node=a&model=gpt-4o-mini",
    f"/api/runs/{RUN}/pending", "/no-such-page",
]
POST_ROUTES = [f"/api/runs/{RUN}/nodes/a/{action}" for action in ("approve", "edit", "reject")]
BAD_HOSTS = [
    f"attacker.example:{PORT}",        # DNS rebinding: the page's own name
    f"127.0.0.1.nip.io:{PORT}",        # contains 127.0.0.1, is not it
    f"localhost.attacker.example:{PORT}",
    f"127.0.0.1:{PORT + 1}",           # another port
    "127.0.0.1",                       # no port: port 80
    f"0.0.0.0:{PORT}",
    f"127.0.0.1@attacker.example:{PORT}",
    "",
]
BAD_ORIGINS = [
    f"http://attacker.example:{PORT}", "http://127.0.0.1:3000", "null", f"https://127.0.0.1:{PORT}",
    f"http://127.0.0.1.nip.io:{PORT}",
]


@pytest.fixture()
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / ".contextflow").ensure()
    sink = TraceSink(state.traces_db)
    for event in synthetic_run():
        sink(event)
    sink.close()
    return state


@pytest.fixture()
def client(state: StateDir) -> TestClient:
    return TestClient(create_app(state, access=ViewerAccess(port=PORT)), base_url=f"http://{GOOD}")


@pytest.mark.parametrize("route", GET_ROUTES)
def test_every_route_answers_its_own_names(client: TestClient, route: str) -> None:
    for host in (GOOD, f"localhost:{PORT}", f"[::1]:{PORT}", f"LOCALHOST:{PORT}"):
        answer = client.get(route, headers={"Host": host})
        assert answer.status_code != 403, (host, answer.text)
        assert answer.headers["x-frame-options"] == "DENY"
    if route == f"/api/runs/{RUN}":
        assert client.get(route).json()["run_id"] == RUN


@pytest.mark.parametrize("route", GET_ROUTES + POST_ROUTES)
@pytest.mark.parametrize("host", BAD_HOSTS)
def test_every_route_refuses_another_host(client: TestClient, route: str, host: str) -> None:
    method = client.post if route in POST_ROUTES else client.get
    answer = method(route, headers={"Host": host, "X-Contextflow-Action": "1"})
    assert answer.status_code == 403, answer.text
    assert RUN not in answer.text and "hi a" not in answer.text  # nothing of the trace leaks
    assert "CSRF" not in answer.text  # refused by the gate, before any endpoint


@pytest.mark.parametrize("route", GET_ROUTES + POST_ROUTES)
@pytest.mark.parametrize("origin", BAD_ORIGINS)
def test_every_route_refuses_another_origin(client: TestClient, route: str, origin: str) -> None:
    method = client.post if route in POST_ROUTES else client.get
    answer = method(route, headers={"Origin": origin, "X-Contextflow-Action": "1"})
    assert answer.status_code == 403 and "not this viewer" in answer.json()["detail"]


def test_the_viewers_own_origin_and_page_requests_pass(client: TestClient) -> None:
    same = {"Origin": f"http://{GOOD}", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert client.get("/api/runs", headers=same).status_code == 200
    assert client.get("/", headers={"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}).status_code == 200


def test_other_sites_may_link_to_the_page_but_not_read_or_frame_it(client: TestClient) -> None:
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert client.get("/", headers=link).status_code == 200
    for headers in ({**link, "Sec-Fetch-Dest": "iframe"},  # framing: clickjacking the buttons
                    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"},
                    {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"}):  # another port of localhost
        assert client.get("/api/runs", headers=headers).status_code == 403
    assert client.get("/", headers={**link, "Sec-Fetch-Dest": "iframe"}).status_code == 403


def test_an_app_without_a_port_still_checks_the_name(state: StateDir) -> None:
    client = TestClient(create_app(state), base_url="http://127.0.0.1:9")
    assert client.get("/api/runs", headers={"Host": "localhost:5555"}).status_code == 200
    assert client.get("/api/runs", headers={"Host": "attacker.example:5555"}).status_code == 403
    assert client.get("/api/runs", headers={"Host": "testserver"}).status_code == 403


def test_requests_from_another_machine_are_refused_without_remote_access() -> None:
    access = ViewerAccess(port=PORT)

    def view(client: str) -> RequestView:
        return RequestView("GET", "/api/runs", {"host": GOOD}, {}, {}, client)

    assert access.refusal(view("192.168.1.7")) == (403, "this viewer only answers requests from this machine")
    assert access.refusal(view("127.0.0.1")) is None and access.refusal(view("::1")) is None


def test_docs_and_openapi_are_not_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404


# -- the access token of a viewer reachable from other machines --------------------------------------

def test_a_remote_viewer_needs_its_token_on_every_request(state: StateDir) -> None:
    access = ViewerAccess(port=PORT, bind_host="0.0.0.0", allow_remote=True, token="s3cret-token")
    client = TestClient(create_app(state, access=access), base_url=f"http://viewer.lan:{PORT}", follow_redirects=False)
    for route in GET_ROUTES:
        refused = client.get(route)
        assert refused.status_code == 401 and "?token=" in refused.json()["detail"], route
    assert client.get("/api/runs?token=wrong").status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    first = client.get("/?token=s3cret-token")
    assert first.status_code == 303 and first.headers["location"] == "/"  # the token leaves the address bar
    cookie = first.headers["set-cookie"]
    assert f"contextflow_token_{PORT}=s3cret-token" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/").status_code == 200  # the cookie from now on
    assert client.get(f"/api/runs/{RUN}").json()["run_id"] == RUN
    bare = TestClient(create_app(state, access=access), base_url=f"http://viewer.lan:{PORT}")
    assert bare.get("/api/runs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert bare.get("/api/runs", headers={"Origin": "http://attacker.example"}).status_code == 403


def test_remote_access_must_be_asked_for() -> None:
    from contextflow.core.errors import UserError

    with pytest.raises(UserError, match="--allow-remote"):
        viewer_access("0.0.0.0", PORT)
    local = viewer_access("127.0.0.1", PORT)
    assert local.token is None and not local.allow_remote and local.url() == f"http://127.0.0.1:{PORT}/"
    remote = viewer_access("0.0.0.0", PORT, allow_remote=True)
    assert remote.token and len(remote.token) >= 40 and remote.token != viewer_access("::", 1, allow_remote=True).token
    assert remote.url("box") == f"http://box:{PORT}/?token={remote.token}"
    with pytest.raises(ValueError):
        ViewerAccess(allow_remote=True)


def test_the_cli_refuses_an_open_host_without_allow_remote(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "contextflow", "ui", "--host", "0.0.0.0", "--project", str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--allow-remote" in done.stderr and "Traceback" not in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_cli_prints_a_token_that_the_viewer_then_requires(tmp_path: Path) -> None:
    port = _free_port()
    # --allow-remote on the loopback address: the token is required, and nothing leaves this machine.
    command = [sys.executable, "-m", "contextflow", "ui", "--host", "127.0.0.1", "--port", str(port),
               "--allow-remote", "--project", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline() if process.stdout else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=([\w-]+)", line)
        assert found and int(found[1]) == port, (line, shlex.join(command))
        token = found[2]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"{base}/api/runs")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the viewer did not start"
                time.sleep(0.2)
        assert answer.status_code == 401
        assert httpx.get(f"{base}/api/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with httpx.Client(base_url=base, follow_redirects=True) as browser_like:
            page = browser_like.get(f"/?token={token}")
            assert page.status_code == 200 and 'name="contextflow-csrf"' in page.text
            assert browser_like.get("/api/runs").status_code == 200  # the cookie carries the token
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


# -- decisions need the value only the served page carries ---------------------------------------

def test_a_client_elsewhere_cannot_approve_a_run_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextflow.api import run

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.delenv("CONTEXTFLOW_HOME", raising=False)
    command = shlex.join([sys.executable, "-c", "open('pwned.txt', 'w').write('ran')"])
    spec = {"name": "cmd", "nodes": [{"id": "shell", "kind": "tool", "tool": "run_command",
                                      "args": {"command": command}}]}
    waiting = run(spec, project=project, workdir=project, autonomy="ask", cache=False)
    assert waiting.status == "waiting" and waiting.nodes["shell"].status == "waiting"
    client = TestClient(create_app(StateDir.for_project(project), access=ViewerAccess(port=PORT)),
                        base_url=f"http://localhost:{PORT}")
    url = f"/api/runs/{waiting.run_id}/nodes/shell/approve"
    for headers in ({"X-Contextflow-Action": "1"},
                    {"X-Contextflow-Action": "1", "X-Contextflow-CSRF": ""},
                    {"X-Contextflow-Action": "1", "X-Contextflow-CSRF": "x" * 43}):
        refused = client.post(url, json={}, headers=headers)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert list(client.get(f"/api/runs/{waiting.run_id}/pending").json()["nodes"]) == ["shell"]
    assert not (project / "pwned.txt").exists()
    page = client.get("/").text
    csrf = re.search(r'<meta name="contextflow-csrf" content="([^"]+)">', page)
    assert csrf and csrf[1] not in client.get("/static/app.js").text  # only the page carries it
    rejected = client.post(f"/api/runs/{waiting.run_id}/nodes/shell/reject", json={"abort": True},
                           headers={"X-Contextflow-Action": "1", "X-Contextflow-CSRF": csrf[1]})
    assert rejected.status_code == 200, rejected.text
    assert not (project / "pwned.txt").exists()


def test_each_viewer_has_its_own_csrf_value(state: StateDir) -> None:
    first, second = ViewerAccess(port=PORT), ViewerAccess(port=PORT)
    assert first.csrf != second.csrf and len(first.csrf) >= 40
    page = TestClient(create_app(state, access=first), base_url=f"http://{GOOD}").get("/").text
    assert f'content="{first.csrf}"' in page and second.csrf not in page

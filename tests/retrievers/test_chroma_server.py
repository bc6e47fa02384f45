"""The index through a chroma server (``chroma run`` on 127.0.0.1) gives what the embedded store gives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMA = Path(sys.executable).parent / "chroma"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def chroma_server(tmp_path: Path):
    if not CHROMA.exists() and shutil.which("chroma") is None:
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY_IMPL": "none"}
    process = subprocess.Popen(
        [str(CHROMA if CHROMA.exists() else "chroma"), "run", "--host", "127.0.0.1", "--port", str(port),
         "--path", str(tmp_path / "server-data")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    import httpx

    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the chroma server did not start within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=20)


def _repo(root: Path) -> Path:
    root.mkdir()
    (root / "billing.py").write_text(
        "def invoice_total(lines):\n    \"\"\"Sum the invoice lines including tax.\"\"\"\n"
        "    return sum(l.price * l.qty for l in lines) * 1.2\n"
    )
    (root / "shipping.py").write_text(
        "def parcel_weight(items):\n    \"\"\"Total weight of a parcel in kilograms.\"\"\"\n"
        "    return sum(i.kg for i in items)\n"
    )
    return root


def test_index_through_a_chroma_server_matches_the_embedded_store(chroma_server: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from contextflow.context import build_context
    from contextflow.core.state import StateDir

    repo = _repo(tmp_path / "repo")
    query = "how is the tax on an invoice computed?"

    embedded = build_context(repo, query, budget_tokens=400, retrievers=["embeddings"],
                             state=StateDir(tmp_path / "local-state"))
    monkeypatch.setenv("CONTEXTFLOW_CHROMA_URL", chroma_server)
    served = build_context(repo, query, budget_tokens=400, retrievers=["embeddings"],
                           state=StateDir(tmp_path / "served-state"))

    def key(window):
        return [(i.path, i.start_line, i.end_line) for i in window.items]

    assert key(served) == key(embedded)
    assert served.items[0].path == "billing.py"

    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_server.rsplit(":", 1)[1]))
    assert any(c.count() > 0 for c in client.list_collections())  # the vectors live on the server

"""The example app that embeds contextflow, run end to end on the simulated provider."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "examples" / "commit_assistant" / "app.py"


def _load_app():
    spec = importlib.util.spec_from_file_location("commit_assistant_app", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _repo(tmp_path: Path) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "Tester")
    (tmp_path / "app.py").write_text("def greet():\n    return 'hi'\n")
    git("add", ".")
    git("commit", "-qm", "first")
    (tmp_path / "app.py").write_text("def greet(name):\n    return f'hi {name}'\n")
    return tmp_path


def test_python_declared_pipeline_is_valid_and_round_trips() -> None:
    app = _load_app()
    pipeline = app.build_pipeline("sim/writer")
    assert pipeline.validate() == []
    spec = pipeline.check()
    assert [n.id for n in spec.nodes] == ["diff", "draft", "message"]
    assert spec.nodes[1].output_schema["properties"]["subject"]["maxLength"] == 72


def test_app_drafts_a_message_for_the_diff(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path)
    monkeypatch.setenv("CONTEXTFLOW_HOME", str(tmp_path / "state"))
    app = _load_app()
    out = app.draft_message(str(repo), model="sim/writer")
    assert out["message"].endswith("Files: app.py")
    assert out["run_id"]
    assert out["cost_usd"] > 0  # sim models are priced so budgets have work to do


def test_app_reports_a_non_repository_plainly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(APP), "--repo", str(tmp_path), "--model", "sim/writer"],
        capture_output=True, text=True, env={**__import__("os").environ, "CONTEXTFLOW_HOME": str(tmp_path / "s")},
    )
    assert done.returncode == 2
    assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_http_endpoint_drafts_a_message_and_refuses_a_non_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    (tmp_path / "repo").mkdir()
    repo = _repo(tmp_path / "repo")
    monkeypatch.setenv("CONTEXTFLOW_HOME", str(tmp_path / "state"))
    client = TestClient(_load_app().create_http_app("sim/writer"))
    done = client.post("/commit-message", json={"repo": str(repo)})
    assert done.status_code == 200, done.text
    assert done.json()["message"].endswith("Files: app.py") and done.json()["run_id"]
    (tmp_path / "plain").mkdir()
    refused = client.post("/commit-message", json={"repo": str(tmp_path / "plain")})
    assert refused.status_code == 400 and "git" in refused.json()["detail"]

"""``contextflow run`` and ``contextflow.api.run`` choose the same models for the same pipeline,
flags and environment: API keys, ``CONTEXTFLOW_OFFLINE``, ``--model`` and ``CONTEXTFLOW_LADDER``.

No hosted model is reached: every node answers through litellm's ``mock_response`` (the call
still goes through the whole scheduler path, so the run records the models it called), the CLI
side only explains its choice (``--explain-models``) or runs behind a dead loopback proxy, and
this process refuses any connection that is not to loopback.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contextflow.api import run

PIPELINE = """\
name: choose
inputs:
  items: {type: array, default: [first]}
defaults: {model: local/smollm2-135m}
nodes:
  - id: local_ladder
    kind: llm
    prompt: a
    strategy: cascade
    models: [local/smollm2-135m, local/smollm2-135m@medium]
    verify: [{kind: regex, pattern: "^never matches$"}]   # every rung is tried, so all are recorded
    params: {mock_response: ok}
  - id: hosted_ladder
    kind: llm
    prompt: b
    strategy: cascade
    models: [gpt-4o-mini, gpt-4o]
    verify: [{kind: regex, pattern: "^never matches$"}]
    params: {mock_response: ok}
  - id: pinned
    kind: llm
    prompt: c
    model: local/smollm2-135m
    params: {mock_response: ok}
  - id: plain
    kind: llm
    prompt: d
    params: {mock_response: ok}
  - id: each
    kind: map
    over: ${inputs.items}
    node: {id: one, kind: llm, prompt: "${item}", params: {mock_response: ok}}
"""

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY")
CHOICE_ENV = ("CONTEXTFLOW_OFFLINE", "CONTEXTFLOW_MODEL", "CONTEXTFLOW_LADDER", *KEYS)
COMBINATIONS = list(itertools.product([None, "sk-test-not-a-real-key"], [None, "1"], [None, "sim/picked"],
                                      [None, "sim/low,sim/high"]))


@pytest.fixture()
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test on any connection from this process that is not to loopback."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a test tried to reach {address}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _environment(key: str | None, offline: str | None, ladder: str | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CHOICE_ENV}
    pythonpath = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env.update({"CONTEXTFLOW_HOME": str(home), "PYTHONPATH": os.pathsep.join(pythonpath),
                # Anything that still tried the network would hit a closed loopback port.
                "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""})
    if key:
        env["OPENAI_API_KEY"] = key
    if offline:
        env["CONTEXTFLOW_OFFLINE"] = offline
    if ladder:
        env["CONTEXTFLOW_LADDER"] = ladder
    return env


def _cli(pipeline: Path, model: str | None, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "contextflow", "run", str(pipeline), "--json", "--no-trace", *extra]
    if model:
        args += ["--model", model]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def _called(result: Any) -> dict[str, list[str]]:
    """Per node, the models its attempts called, in order, each once."""
    called: dict[str, list[str]] = {}
    for node_id, node in result.nodes.items():
        seen = called.setdefault(node_id, [])
        for attempt in node.attempts:
            if attempt.model and attempt.model not in seen:
                seen.append(attempt.model)
    return called


@pytest.mark.parametrize(("key", "offline", "model", "ladder"), COMBINATIONS,
                         ids=["-".join(["key" if k else "nokey", "offline" if o else "online",
                                        "model" if m else "nomodel", "ladder" if lad else "noladder"])
                              for k, o, m, lad in COMBINATIONS])
def test_the_cli_and_run_choose_the_same_models(key, offline, model, ladder, tmp_path, monkeypatch,
                                                 loopback_only) -> None:
    pipeline = tmp_path / "choose.yaml"
    pipeline.write_text(PIPELINE)
    env = _environment(key, offline, ladder, tmp_path / "cli-state")
    explained = _cli(pipeline, model, env, "--explain-models")
    assert explained.returncode == 0, explained.stderr
    cli_models = {n: chosen["models"] for n, chosen in json.loads(explained.stdout)["nodes"].items()}

    for name in CHOICE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in (("OPENAI_API_KEY", key), ("CONTEXTFLOW_OFFLINE", offline), ("CONTEXTFLOW_LADDER", ladder)):
        if value:
            monkeypatch.setenv(name, value)
    result = run(pipeline, model=model, project=tmp_path, trace=False, cache=False)
    assert result.status == "succeeded", result.error
    assert _called(result) == cli_models

    # And the rules themselves, so that agreeing on a wrong answer fails too.
    hosted = bool(key) and not offline
    if ladder:
        assert cli_models["local_ladder"] == cli_models["hosted_ladder"] == ["sim/low", "sim/high"]
    elif model:
        assert cli_models["local_ladder"] == cli_models["hosted_ladder"] == [model]
    elif hosted:
        assert cli_models["local_ladder"] == ["gpt-4o-mini", "gpt-4o"]
    else:
        assert cli_models["local_ladder"] == ["local/smollm2-135m", "local/smollm2-135m@medium"]
    default = model or ("gpt-4o-mini" if hosted and not ladder else "local/smollm2-135m")
    assert cli_models["plain"] == cli_models["each"] == [default]
    assert cli_models["pinned"] == ["local/smollm2-135m"]


@pytest.mark.parametrize("key", [None, "sk-test-not-a-real-key"], ids=["nokey", "key"])
def test_the_cli_runs_what_it_explains(key, tmp_path) -> None:
    pipeline = tmp_path / "choose.yaml"
    pipeline.write_text(PIPELINE)
    env = _environment(key, None, None, tmp_path / "state")
    explained = json.loads(_cli(pipeline, None, env, "--explain-models").stdout)
    ran = _cli(pipeline, None, env)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    for node_id, chosen in explained["nodes"].items():
        assert summary["nodes"][node_id]["model"] == chosen["models"][-1]  # cascades end on their last rung
    notice = "an API key is set: what was meant for the local model runs on gpt-4o-mini -> gpt-4o"
    assert (notice in ran.stderr) is bool(key)
    assert explained["hosted_ladder"] == (["gpt-4o-mini", "gpt-4o"] if key else None)

"""``contextflow run`` / ``resume`` / ``runs`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from contextflow.cli import app
from contextflow.core.errors import UserError

PIPELINE = """\
name: cli-demo
inputs:
  topic: {type: string}
  count: {type: integer, default: 2}
defaults:
  model: sim/echo
nodes:
  - id: ask
    kind: llm
    prompt: "${inputs.count} facts about ${inputs.topic}"
outputs:
  answer: "${ask}"
"""


def test_run_prints_outputs_cost_and_run_id_as_json(state_home, tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(pipeline), "--input", "topic=otters", "-i", "count=3", "--json",
                                 "--no-trace"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert summary["outputs"] == {"answer": "3 facts about otters"}
    assert summary["cost_usd"] > 0 and summary["run_id"]
    listed = runner.invoke(app, ["runs", "--json"])
    assert summary["run_id"] in {r["run_id"] for r in json.loads(listed.output)}
    plain = runner.invoke(app, ["run", str(pipeline), "-i", "topic=seals", "--no-trace"])
    assert "== answer ==" in plain.output and "run id:" in plain.output and "cost: $" in plain.output


def test_bad_inputs_are_user_errors(state_home, tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    runner = CliRunner()
    for args, message in [
        (["-i", "count=3"], "missing required input 'topic'"),
        (["-i", "topic=x", "-i", "count=three"], "not a valid integer"),
        (["-i", "topic"], "is not KEY=VALUE"),
        (["-i", "topic=@/nonexistent/file"], "no such file"),
    ]:
        result = runner.invoke(app, ["run", str(pipeline), *args, "--no-trace"])
        assert isinstance(result.exception, UserError) and message in str(result.exception), (args, result.output)
    missing = runner.invoke(app, ["resume", "no-such-run"])
    assert isinstance(missing.exception, UserError)


def test_cli_exits_2_without_a_traceback(state_home, tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    done = subprocess.run(
        [sys.executable, "-m", "contextflow", "run", str(pipeline), "-i", "count=1"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert done.returncode == 2
    assert "missing required input 'topic'" in done.stderr and "Traceback" not in done.stderr

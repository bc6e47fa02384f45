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


def _cli_run(args: list[str], env: dict[str, str], on_terminal: bool) -> str:
    """``contextflow run`` in a child process, its standard output a pseudo-terminal or a pipe
    (standard error is always a pipe, so the live table stays off)."""
    import pty

    command = [sys.executable, "-m", "contextflow", "run", *args]
    if not on_terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert child.wait(timeout=120) == 0, child.stderr.read().decode()
    child.stderr.close()
    return out.decode().replace("\r\n", "\n")


def test_a_terminal_sees_the_reply_stream_and_the_same_final_output_as_a_pipe(state_home, tmp_path):
    import re

    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    env = {**os.environ, "CONTEXTFLOW_HOME": str(state_home)}
    args = [str(pipeline), "-i", "topic=otters", "-i", "count=3", "--no-trace", "--no-cache"]
    piped = _cli_run(args, env, on_terminal=False)
    shown = _cli_run(args, env, on_terminal=True)
    same_ids = lambda text: re.sub(r"\d{8}-\d{6}-[0-9a-f]{8}", "RUN", text)  # noqa: E731
    assert "──" not in piped and piped.startswith("== answer ==\n3 facts about otters\n")
    assert shown.startswith("── ask ──\n3 facts about otters\n\n")  # the reply as it streamed, then the result
    assert same_ids(shown.removeprefix("── ask ──\n3 facts about otters\n\n")) == same_ids(piped)


def test_the_token_printer_keeps_control_characters_off_the_terminal():
    import io

    from contextflow.cli.run import TokenPrinter
    from contextflow.core.events import TokenDelta

    out = io.StringIO()
    printer = TokenPrinter(out)
    printer(TokenDelta("r", "a", 1, "red \x1b[31malert\x07\n\tok"))
    printer(TokenDelta("r", "b", 2, "x", item=3))
    printer.close()
    assert out.getvalue() == "── a ──\nred \ufffd[31malert\ufffd\n\tok\n── b[3] (attempt 2) ──\nx\n\n"

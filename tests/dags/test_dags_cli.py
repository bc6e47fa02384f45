"""``contextflow validate|graph|schema``: exit codes, problem lines, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contextflow.cli import app

HERE = Path(__file__).parent
VALID = HERE / "valid" / "code_review.yaml"
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_validate_valid_file_exits_0() -> None:
    code, out = _run("validate", str(VALID))
    assert code == 0 and "valid" in out
    code, out = _run("validate", str(HERE / "valid" / "simulated_cascade.yaml"), "--allow-import", "cf_test_functions")
    assert code == 0 and "valid" in out


def test_validate_without_the_flag_reports_the_import() -> None:
    path = HERE / "valid" / "simulated_cascade.yaml"
    code, out = _run("validate", str(path))
    assert code == 2
    assert f"{path}:" in out and "import-not-allowed" in out


@pytest.mark.parametrize("name", ["cycle", "yaml_bad_indent", "unknown_model", "duplicate_key", "empty_file"])
def test_validate_invalid_file_prints_located_problems(name: str) -> None:
    path = HERE / "invalid" / f"{name}.yaml"
    code, out = _run("validate", str(path))
    assert code == 2
    expected = [line.split()[2:4] for line in path.read_text().splitlines() if line.startswith("# expect:")]
    for problem_code, position in expected:
        assert f"{path}:{position}: {problem_code}: " in out
    assert "hint:" in out and "Traceback" not in out


def test_validate_json_output() -> None:
    code, out = _run("validate", str(HERE / "invalid" / "cycle.yaml"), "--format", "json")
    assert code == 2
    data = json.loads(out)
    assert data["valid"] is False and data["problems"][0]["code"] == "cycle"


def test_validate_missing_file() -> None:
    code, out = _run("validate", "no/such/file.yaml")
    assert code == 2 and "file-not-found" in out


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "text"])
def test_graph_formats(fmt: str) -> None:
    code, out = _run("graph", str(VALID), "--format", fmt, "--allow-import", "cf_test_functions")
    assert code == 0
    if fmt == "mermaid":
        assert out.startswith("flowchart TD") and "n_context --> n_review" in out
    elif fmt == "dot":
        assert out.startswith('digraph "code-review"') and '"review" -> "fixes";' in out
    else:
        assert "review [llm gpt-4o-mini > gpt-4o] <- context" in out


def test_graph_of_invalid_file_exits_2() -> None:
    code, _ = _run("graph", str(HERE / "invalid" / "cycle.yaml"))
    assert code == 2


def test_schema_is_json_schema_of_the_format() -> None:
    code, out = _run("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "contextflow pipeline"
    assert "nodes" in schema["properties"] and "LLMNode" in schema["$defs"]


def test_real_process_never_prints_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: t\nnodes: [\xff\n")
    for args in (["validate", str(bad)], ["graph", str(bad), "--format", "svg"],
                 ["validate", str(HERE / "invalid" / "yaml_unclosed_quote.yaml")]):
        proc = subprocess.run([sys.executable, "-m", "contextflow", *args], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr

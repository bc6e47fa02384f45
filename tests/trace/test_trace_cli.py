"""``contextflow trace list|show|export``: output, the self-contained HTML file, and bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from contextflow.core.state import StateDir
from synthetic_trace import RUN, synthetic_run


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from contextflow.trace import TraceSink

    monkeypatch.delenv("CONTEXTFLOW_HOME", raising=False)
    state = StateDir.for_project(tmp_path).ensure()
    sink = TraceSink(state.traces_db)
    for event in synthetic_run():
        sink(event)
    sink.close(wait=True)
    return tmp_path


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from contextflow.cli import main

    monkeypatch.setattr(sys, "argv", ["contextflow", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_list_and_show(project: Path, monkeypatch, capsys) -> None:
    code, out, _ = cli(monkeypatch, capsys, "trace", "list", "--project", str(project), "--json")
    assert code == 0
    [run] = json.loads(out)
    assert run["run_id"] == RUN and run["cost_usd"] == pytest.approx(0.007) and run["tokens"] == 290
    code, out, _ = cli(monkeypatch, capsys, "trace", "show", RUN, "--project", str(project))
    assert code == 0
    assert "cost $0.007000" in out and "230 in / 60 out" in out and "b -> c -> d" in out


@pytest.mark.parametrize("columns", ["72", "160"])
def test_list_never_cuts_a_run_id(project: Path, monkeypatch, capsys, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = cli(monkeypatch, capsys, "trace", "list", "--project", str(project))
    assert code == 0
    assert RUN in out and "$0.007000" in out and "succeeded" in out


def test_export_html_is_one_self_contained_file(project: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    target = tmp_path / "run.html"
    code, _, _ = cli(monkeypatch, capsys, "trace", "export", RUN, "--html", str(target), "--project", str(project))
    assert code == 0
    html = target.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing fetched from anywhere
    assert "<script>alert(1)" not in html  # the response's markup travels as escaped JSON data
    assert "\\u003cscript>alert(1)" in html or "\\u003cscript\\u003ealert(1)" in html


@pytest.mark.parametrize("run_id, message", [("../../etc/passwd", "run id"), ("no-such-run", "no trace for run")])
def test_bad_run_ids_exit_2_without_a_traceback(project: Path, monkeypatch, capsys, run_id: str, message: str) -> None:
    code, _, err = cli(monkeypatch, capsys, "trace", "show", run_id, "--project", str(project))
    assert code == 2 and message in err and "Traceback" not in err


def test_export_without_a_target_is_refused(project: Path, monkeypatch, capsys) -> None:
    code, _, err = cli(monkeypatch, capsys, "trace", "export", RUN, "--project", str(project))
    assert code == 2 and "--html FILE" in err

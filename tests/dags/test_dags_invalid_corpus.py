"""Every file under invalid/ holds one kind of mistake; its trailing ``# expect: CODE LINE:COL``
comments list exactly the problems the checks must report, at exactly those positions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contextflow.dags.loader import load_pipeline
from contextflow.dags.problems import PROBLEM_CODES, PipelineError
from contextflow.dags.validate import check_file

ALLOW = ("cf_test_functions",)  # importable through tests/dags/conftest.py

INVALID = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (?P<code>[a-z-]+) (?P<line>\d+):(?P<col>\d+)$", re.M)


def _expected(path: Path) -> list[tuple[str, int, int]]:
    return sorted((m["code"], int(m["line"]), int(m["col"])) for m in _EXPECT.finditer(path.read_text()))


def test_corpus_is_large_and_varied() -> None:
    assert len(INVALID) >= 30
    codes = {code for path in INVALID for code, _, _ in _expected(path)}
    assert len(codes) >= 25, sorted(codes)
    assert codes <= set(PROBLEM_CODES)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_file_reports_exact_problems(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} declares no '# expect:' lines"
    report = check_file(path, allow_imports=ALLOW)
    found = sorted((p.code, p.line, p.column) for p in report.problems)
    assert found == expected, "\n".join(p.format() for p in report.problems)
    for problem in report.problems:
        assert problem.file == str(path)
        assert problem.message and problem.code in PROBLEM_CODES
    assert not report.ok


@pytest.mark.parametrize("name", ["unknown_node_ref", "unknown_model", "unknown_top_key", "unknown_field_ref",
                                  "unknown_input_ref", "unknown_node_key"])
def test_misspellings_get_did_you_mean(name: str) -> None:
    report = check_file(Path(__file__).parent / "invalid" / f"{name}.yaml", allow_imports=ALLOW)
    assert any(p.hint and p.hint.startswith("did you mean") for p in report.problems)


def test_load_pipeline_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "name: t\ndefaults: {model: gpt-4o-mini}\nnodes:\n"
        "  - {id: a, kind: llm, prompt: '${b.output}'}\n"
        "  - {id: b, kind: llm, prompt: '${a.output} ${inputs.nope}', promt: x}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path)
    codes = sorted(p.code for p in caught.value.problems)
    assert codes == ["cycle", "unknown-input-ref", "unknown-key"]
    assert f"{path}:4:" in str(caught.value)
    assert caught.value.exit_code == 2


def test_cycle_message_prints_the_whole_cycle() -> None:
    report = check_file(Path(__file__).parent / "invalid" / "cycle.yaml")
    (problem,) = report.problems
    assert "a -> b -> c -> a" in problem.message

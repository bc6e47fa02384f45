"""The ready pipelines in dags/, end to end on repositories the tests create.

The simulated provider makes the model calls deterministic; one smoke run uses the local model.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contextflow.dags.loader import load_pipeline
from contextflow.dags.compiler import compile
from contextflow.cost.model_choice import ModelOptions, choose_models
from contextflow.providers import simulated
from contextflow.api import run

DAGS = Path(__file__).resolve().parents[2] / "dags"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONTEXTFLOW_HOME", str(tmp_path / "state"))
    root = tmp_path / "shop"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.invalid")
    git(root, "config", "user.name", "Tester")
    (root / "calc.py").write_text(
        'def average(values):\n    """Mean of the values."""\n    return sum(values) / len(values)\n'
    )
    (root / "test_calc.py").write_text("from calc import average\n\n\ndef test_average():\n    assert average([2, 4]) == 3\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "feat: average")
    git(root, "tag", "v0.1")
    (root / "calc.py").write_text(
        'def average(values):\n    """Mean of the values."""\n    return sum(values) / (len(values) - 1)\n'
    )
    git(root, "commit", "-qam", "fix: average of samples")
    (root / "calc.py").write_text(
        'def average(values):\n    """Mean of the values."""\n    return sum(values) / (len(values) - 1)\n\n\n'
        'def total(values):\n    return sum(values)\n'
    )
    return root


def _spec(name: str, **overrides):
    """The shipped pipeline on the given model/ladder, whatever the environment holds."""
    # A Plan is not checked again: ``--model`` makes every cascade a one-rung ladder, which the
    # engine accepts after its own checks but a pipeline file may not declare.
    plan = compile(load_pipeline(DAGS / f"{name}.yaml"))
    return plan.with_spec(choose_models(plan.spec, ModelOptions.from_environment(**overrides, environ={})).spec)


def test_code_review_escalates_a_reviewer_whose_findings_fail_the_checks(repo: Path) -> None:
    bad = {"findings": [{"file": "invented.py", "line": 3, "severity": "high", "explanation": "made up"}]}
    good = {"findings": [{"file": "calc.py", "line": 3, "severity": "high",
                          "explanation": "divides by len - 1: wrong mean, and a crash for one value",
                          "suggested_fix": "divide by len(values)"}]}
    simulated.configure("sim/review-cheap", json_value=bad)
    simulated.configure("sim/review-strong", json_value=good, input_cost_per_token=1e-5, output_cost_per_token=3e-5)
    spec = _spec("code_review", ladder=["sim/review-cheap", "sim/review-strong"])
    result = run(spec, {"repo": str(repo)}, project=repo, workdir=repo)
    assert result.status == "succeeded", result.error
    review = result.outputs["review"]
    assert "`calc.py:3`" in review and "divide by len(values)" in review
    assert (repo / ".contextflow" / "review.md").read_text() == review
    for reviewer in ("correctness", "security", "tests"):
        node = result.nodes[reviewer]
        assert node.model == "sim/review-strong"  # the cheap rung's findings named a file outside the diff
        assert [a.model for a in node.attempts] == ["sim/review-cheap", "sim/review-strong"]
        assert node.cost_usd > sum(a.cost_usd for a in node.attempts[:1])
    assert result.nodes["diff"].value["paths"] == ["calc.py"]  # working tree vs HEAD


def test_code_review_waits_before_writing_the_review_at_low_autonomy(repo: Path) -> None:
    from contextflow.api import approve, pending, resume

    finding = {"findings": [{"file": "calc.py", "line": 3, "severity": "high", "explanation": "wrong mean"}]}
    simulated.configure("sim/review-gate", json_value=finding)
    spec = _spec("code_review", model="sim/review-gate")
    review_file = repo / ".contextflow" / "review.md"
    waiting = run(spec, {"repo": str(repo)}, project=repo, workdir=repo, autonomy="ask")
    assert waiting.status == "waiting", waiting.error
    assert list(pending(waiting.run_id, project=repo)) == ["write_review"]
    assert not review_file.exists()  # nothing written before a person approves
    assert all(waiting.nodes[n].status == "succeeded" for n in ("correctness", "security", "tests", "review"))
    approve(waiting.run_id, "write_review", project=repo, actor="tester")
    done = resume(waiting.run_id, project=repo)
    assert done.status == "succeeded", done.error
    assert review_file.read_text() == done.outputs["review"] and "`calc.py:3`" in done.outputs["review"]


def test_repo_qa_keeps_only_citations_inside_the_window(repo: Path) -> None:
    simulated.configure("sim/qa", json_value={"answer": "average() divides by len - 1 (calc.py:3); see also nowhere.py:9"})
    result = run(_spec("repo_qa", model="sim/qa"), {"question": "How is the average computed?", "repo": str(repo)},
                 project=repo, workdir=repo)
    assert result.status == "succeeded", result.error
    assert [c["path"] for c in result.outputs["citations"]] == ["calc.py"]
    assert [c["path"] for c in result.outputs["invalid_citations"]] == ["nowhere.py"]
    assert result.outputs["citations_ok"] is False
    window = result.nodes["context"].value
    items = window["items"] if isinstance(window, dict) else [i.model_dump() for i in window.items]
    assert any(item["path"] == "calc.py" for item in items)


def test_repo_qa_escalates_an_answer_whose_citations_miss_the_window(repo: Path) -> None:
    simulated.configure("sim/qa-cheap", json_value={"answer": "It is computed in utils.py:40."})
    simulated.configure("sim/qa-strong", json_value={"answer": "average() divides by len - 1 (calc.py:3)."})
    spec = _spec("repo_qa", ladder=["sim/qa-cheap", "sim/qa-strong"])
    result = run(spec, {"question": "How is the average computed?", "repo": str(repo)}, project=repo, workdir=repo)
    assert result.status == "succeeded", result.error
    attempts = result.nodes["answer"].attempts
    assert [a.model for a in attempts] == ["sim/qa-cheap", "sim/qa-strong"]
    assert [all(v.passed for v in a.verdicts) for a in attempts] == [False, True]
    assert result.outputs["citations_ok"] is True
    assert [c["path"] for c in result.outputs["citations"]] == ["calc.py"]


def test_release_notes_group_summarise_and_write(repo: Path) -> None:
    git(repo, "commit", "-qam", "feat: total of values")
    simulated.configure("sim/notes", json_value={"summary": "This release changes how averages are computed."})
    result = run(_spec("release_notes", model="sim/notes"), {"repo": str(repo), "version": "v0.2"},
                 project=repo, workdir=repo)
    assert result.status == "succeeded", result.error
    notes = result.outputs["notes"]
    assert notes.startswith("# Release notes v0.2")
    assert "Changes since v0.1: 2 commits" in notes
    assert "## Features" in notes and "## Fixes" in notes and "This release changes" in notes
    assert (repo / "RELEASE_NOTES.md").read_text() == notes


@pytest.mark.slow
def test_release_notes_smoke_run_on_the_local_model(repo: Path, local_models_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    # The converted weights go to this run's shared folder: the model is loaded once per process,
    # so every test of the local model must agree on where its converted copy lives.
    monkeypatch.setenv("CONTEXTFLOW_MODELS_DIR", str(local_models_dir))
    result = run(_spec("release_notes"), {"repo": str(repo), "notes_file": "NOTES.md"}, project=repo, workdir=repo)
    assert result.status == "succeeded", result.error
    assert result.nodes["summaries"].model in (None, "local/smollm2-135m") or result.nodes["summaries"].status == "succeeded"
    assert (repo / "NOTES.md").read_text().startswith("# Release notes")
    assert result.cost_usd == 0.0  # a local model costs nothing

"""The python steps behind the flagship pipelines, on repositories the tests create."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contextflow.apps.code_review import merge_reviews, parse_unified_diff
from contextflow.apps.release_notes import commits_since, render_notes
from contextflow.apps.repo_qa import check_citations, find_citations
from contextflow.core.errors import UserError


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "config", "user.email", "t@example.invalid")
    git(tmp_path, "config", "user.name", "Tester")
    (tmp_path / "calc.py").write_text("def half(a):\n    return a / 2\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "feat: add half")
    git(tmp_path, "tag", "v0.1")
    (tmp_path / "calc.py").write_text("def half(a):\n    return a / 0\n\n\ndef double(a):\n    return a * 2\n")
    git(tmp_path, "commit", "-qam", "fix(calc): divide correctly")
    (tmp_path / "README.md").write_text("docs\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "docs: readme")
    return tmp_path


def test_unified_diff_gives_changed_line_ranges() -> None:
    diff = (
        "--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,4 @@\n keep\n-old\n+new1\n+new2\n keep\n"
        "@@ -10,2 +11,2 @@\n ctx\n+added\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
    )
    files = parse_unified_diff(diff)
    assert [f["path"] for f in files] == ["x.py"]
    assert files[0]["ranges"] == [[2, 3], [12, 12]]
    assert (files[0]["added"], files[0]["removed"]) == (3, 1)


def test_merge_keeps_valid_findings_marks_outside_and_orders_by_severity() -> None:
    diff = {"files": [{"path": "calc.py", "ranges": [[2, 2]]}], "paths": ["calc.py"], "summary": "calc.py"}
    review = merge_reviews(
        diff,
        correctness={"findings": [
            {"file": "calc.py", "line": 2, "severity": "high", "explanation": "division by zero"},
            {"file": "calc.py", "line": "two", "severity": "high", "explanation": "bad line"},
        ]},
        security={"findings": [
            {"file": "other.py", "line": 90, "severity": "low", "explanation": "invented file"},
            {"file": "calc.py", "line": 90, "severity": "low", "explanation": "far from the change"},
            {"file": "calc.py", "line": 2, "severity": "critical", "explanation": "Division by zero"},
        ]},
        tests=None,
    )
    severities = [f["severity"] for f in review["findings"]]
    assert severities == ["critical", "low"]  # the duplicate kept at its highest severity
    assert review["findings"][1]["verified"] is False  # a changed file, but far from the change
    assert [f["file"] for f in review["set_aside"]] == ["other.py"]  # invented file: not in the review
    assert "other.py" not in review["markdown"]
    assert "1 set aside" in review["summary"] and "1 malformed" in review["summary"]
    assert "`calc.py:2`" in review["markdown"]


def test_citations_must_point_into_the_window() -> None:
    window = {"items": [{"path": "pkg/a.py", "start_line": 10, "end_line": 20}]}
    answer = {"answer": "See pkg/a.py:12-14 and pkg/b.py:3."}
    assert [c["path"] for c in find_citations(answer["answer"])] == ["pkg/a.py", "pkg/b.py"]
    checked = check_citations(answer, window)
    assert [c["path"] for c in checked["citations"]] == ["pkg/a.py"]
    assert [c["path"] for c in checked["invalid_citations"]] == ["pkg/b.py"]
    assert checked["ok"] is False
    assert check_citations({"answer": "pkg/a.py:20"}, window)["ok"] is True


def test_commits_since_latest_tag_grouped_with_stats(repo: Path) -> None:
    history = commits_since(str(repo))
    assert history["since"] == "v0.1"
    kinds = {g["kind"]: [c["subject"] for c in g["commits"]] for g in history["groups"]}
    assert kinds == {"fix": ["divide correctly"], "docs": ["readme"]}
    assert history["stats"]["commits"] == 2
    assert history["stats"]["files_changed"] == 2
    notes = render_notes(history, [{"summary": "Division fixed."}], version="v0.2")
    assert "## Fixes" in notes and "Division fixed." in notes and "## Documentation" in notes


def test_git_errors_are_plain_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="git"):
        commits_since(str(tmp_path))

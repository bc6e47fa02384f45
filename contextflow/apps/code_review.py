"""Steps of the code-review app (``dags/code_review.yaml``): collect a diff, merge findings.

These are the ``python`` nodes of the pipeline; the model calls, retries, caching and budgets
stay in the scheduler. They live in the package so the default import allowlist admits them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from contextflow.context.inert import inert_name
from contextflow.core.errors import UserError
from contextflow.retrievers.repo_text import run_git

Severity = Literal["info", "low", "medium", "high", "critical"]
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class Finding(BaseModel):
    file: str = Field(description="Path relative to the repository root.")
    line: int = Field(ge=0, description="Line in the new version of the file.")
    severity: Severity
    explanation: str = Field(min_length=1)
    suggested_fix: str = ""
    category: str = "general"
    verified: bool = Field(True, description="False when it points outside the diff.")


class Review(BaseModel):
    summary: str
    findings: list[Finding]
    set_aside: list[Finding] = Field(
        default_factory=list, description="Findings naming files that are not in the diff.")


class ReviewerOutput(BaseModel):
    """What one focused reviewer returns (the llm nodes' output schema)."""

    findings: list[Finding] = Field(default_factory=list, max_length=8)


def git_output(repo: Path, *args: str) -> str:
    """What ``git args`` prints in ``repo``, through the redacting runner (secrets hidden, secret
    files withheld); a failure is a UserError that says how to fix the call."""
    try:
        return run_git(list(args), repo)
    except FileNotFoundError:
        raise UserError("git is not installed", hint="install git to review a diff") from None
    except RuntimeError as exc:
        raise UserError(str(exc), hint="pass a git repository and a valid range such as HEAD~1..HEAD") from None


def parse_unified_diff(text: str) -> list[dict[str, Any]]:
    """Files of a unified diff with their added lines' ranges in the new version."""
    files: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    new_line = 0
    for line in text.splitlines():
        if line.startswith("+++ "):
            path = line[4:].strip()
            path = path[2:] if path.startswith("b/") else path
            current = {"path": path, "added": 0, "removed": 0, "changed_lines": []}
            if path != "/dev/null":
                files.append(current)
            continue
        if current is None or line.startswith("--- "):
            continue
        hunk = _HUNK.match(line)
        if hunk:
            new_line = int(hunk.group(1))
            continue
        if line.startswith("+"):
            current["added"] += 1
            current["changed_lines"].append(new_line)
            new_line += 1
        elif line.startswith("-"):
            current["removed"] += 1
        else:
            new_line += 1
    for entry in files:
        entry["ranges"] = _ranges(entry.pop("changed_lines"))
    return files


def _ranges(lines: list[int]) -> list[list[int]]:
    spans: list[list[int]] = []
    for number in lines:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return spans


def collect_diff(repo: str = ".", rev_range: str = "", max_chars: int = 12000) -> dict[str, Any]:
    """The diff to review: ``rev_range`` like ``HEAD~1..HEAD``, or the working tree (staged and
    unstaged) against HEAD when empty. The diff arrives redacted (the git runner hides secrets
    and withholds secret files' hunks), so no model, store or trace sees a credential."""

    root = Path(repo).resolve()
    args = ["diff", "--no-color", "--unified=3", rev_range] if rev_range else ["diff", "--no-color", "HEAD"]
    text = git_output(root, *args)
    if not text.strip() and not rev_range:
        # A clean tree: review the last commit instead of nothing.
        rev_range = "HEAD~1..HEAD" if git_output(root, "rev-list", "--count", "HEAD").strip() != "1" else ""
        text = (
            git_output(root, "diff", "--no-color", rev_range)
            if rev_range
            else git_output(root, "show", "--no-color", "--format=", "HEAD")
        )
    files = parse_unified_diff(text)
    truncated = len(text) > max_chars
    summary = "; ".join(f"{inert_name(f['path'])} (+{f['added']}/-{f['removed']})" for f in files) or "no changes"
    return {
        "range": rev_range or "working tree vs HEAD",
        "files": files,
        "paths": [f["path"] for f in files],
        "diff": text[:max_chars] + ("\n[diff truncated]" if truncated else ""),
        "summary": summary,
    }


def _in_diff(finding: Finding, diff: dict[str, Any], slack: int = 5) -> bool:
    for entry in diff.get("files", []):
        if entry["path"] == finding.file:
            return any(lo - slack <= finding.line <= hi + slack for lo, hi in entry["ranges"]) or not entry["ranges"]
    return False


def findings_point_into_diff(value: Any, diff: dict[str, Any] | None = None) -> bool:
    """Verifier: every finding names a file of the diff (a reviewer inventing files escalates)."""
    try:
        findings = ReviewerOutput.model_validate(value).findings
    except ValidationError:
        return False
    if diff is None:
        return True
    paths = set(diff.get("paths", []))
    return all(f.file in paths for f in findings)


def merge_reviews(diff: dict[str, Any], **reviews: Any) -> dict[str, Any]:
    """One review from the focused reviewers: invalid entries dropped, duplicates merged, findings
    on changed files kept (marked unverified when their line is away from the change), findings on
    files the diff does not touch set aside, ordered by severity then place.

    Setting invented files aside keeps a weak model's noise out of the review a person reads; the
    trace still holds every finding the reviewers returned."""
    merged: dict[tuple[str, int, str], Finding] = {}
    set_aside: list[Finding] = []
    paths = set(diff.get("paths", [])) | {entry["path"] for entry in diff.get("files", [])}
    dropped = 0
    for category, output in reviews.items():
        if output is None:
            continue
        raw = output.get("findings", []) if isinstance(output, dict) else []
        for item in raw:
            try:
                finding = Finding.model_validate({"category": category, **item})
            except (ValidationError, TypeError):
                dropped += 1
                continue
            if finding.file not in paths:
                finding.verified = False
                set_aside.append(finding)
                continue
            finding.verified = _in_diff(finding, diff)
            key = (finding.file, finding.line, finding.explanation.strip().lower()[:60])
            known = merged.get(key)
            if known is None or _SEVERITY_RANK[finding.severity] < _SEVERITY_RANK[known.severity]:
                merged[key] = finding
    findings = sorted(merged.values(), key=lambda f: (_SEVERITY_RANK[f.severity], f.file, f.line))
    review = Review(
        summary=f"{len(findings)} finding(s) on {diff.get('summary', 'the diff')}"
        + (f"; {len(set_aside)} set aside for naming files outside the diff" if set_aside else "")
        + (f"; {dropped} malformed finding(s) dropped" if dropped else ""),
        findings=findings,
        set_aside=sorted(set_aside, key=lambda f: (_SEVERITY_RANK[f.severity], f.file, f.line)),
    )
    return {**review.model_dump(), "markdown": render_review(review, diff)}


def render_review(review: Review, diff: dict[str, Any]) -> str:
    lines = [f"# Code review: {diff.get('range', '')}", "", review.summary, ""]
    for f in review.findings:
        mark = "" if f.verified else " (away from the changed lines: unverified)"
        lines.append(f"- **{f.severity}** [{f.category}] `{inert_name(f.file)}:{f.line}`{mark}: {f.explanation}")
        if f.suggested_fix:
            lines.append(f"  - suggested fix: {f.suggested_fix}")
    if not review.findings:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"

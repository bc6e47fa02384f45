"""Steps of the release-notes app (``dags/release_notes.yaml``): commits since a tag, grouped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from contextflow.apps.code_review import git_output
from contextflow.context.inert import inert_line

_CONVENTIONAL = re.compile(r"^(\w+)(?:\([^)]*\))?(!)?:\s*(.+)$")
_GROUP_TITLES = {
    "feat": "Features",
    "fix": "Fixes",
    "perf": "Performance",
    "refactor": "Refactoring",
    "docs": "Documentation",
    "test": "Tests",
    "build": "Build and CI",
    "ci": "Build and CI",
    "chore": "Maintenance",
    "other": "Other changes",
}
_STAT = re.compile(r"(\d+) files? changed(?:, (\d+) insertions?\(\+\))?(?:, (\d+) deletions?\(-\))?")


def _classify(subject: str) -> tuple[str, bool, str]:
    match = _CONVENTIONAL.match(subject)
    if match and match.group(1).lower() in _GROUP_TITLES:
        return match.group(1).lower(), bool(match.group(2)), match.group(3)
    lowered = subject.lower()
    if lowered.startswith(("fix", "bug")):
        return "fix", False, subject
    if lowered.startswith(("add", "new", "support", "implement")):
        return "feat", False, subject
    return "other", False, subject


def commits_since(repo: str = ".", since_tag: str = "", max_commits: int = 500) -> dict[str, Any]:
    """Commits after ``since_tag`` (default: the latest tag, or the whole history when there is
    none), grouped by kind, with the overall diffstat. Subjects arrive redacted from the git
    runner and are made inert here (one line, no markup), since they reach a prompt and a file."""
    root = Path(repo).resolve()
    if not since_tag:
        tags = git_output(root, "tag", "--sort=-creatordate").split()
        since_tag = tags[0] if tags else ""
    rev = f"{since_tag}..HEAD" if since_tag else "HEAD"
    log = git_output(root, "log", f"--max-count={max_commits}", "--format=%x1e%H%x1f%an%x1f%s", "--shortstat", rev)
    groups: dict[str, list[dict[str, Any]]] = {}
    totals = {"commits": 0, "files_changed": 0, "insertions": 0, "deletions": 0}
    for record in log.split("\x1e"):
        record = record.strip()
        if not record:
            continue
        # Each record is the commit's header line followed by its --shortstat line.
        head, _, stat = record.partition("\n")
        parts = head.split("\x1f")
        if len(parts) != 3:
            continue
        sha, author, subject = parts
        kind, breaking, text = _classify(subject)
        text, author = inert_line(text), inert_line(author)
        files = ins = dels = 0
        match = _STAT.search(stat) if stat else None
        if match:
            files, ins, dels = (int(g or 0) for g in match.groups())
        totals["commits"] += 1
        totals["files_changed"] += files
        totals["insertions"] += ins
        totals["deletions"] += dels
        groups.setdefault(kind, []).append(
            {"sha": sha[:10], "author": author, "subject": text, "breaking": breaking, "files": files}
        )
    ordered = [
        {"kind": kind, "title": title, "commits": groups[kind],
         "text": "\n".join(f"- {c['subject']}" for c in groups[kind][:40])}
        for kind, title in _GROUP_TITLES.items()
        if kind in groups and not (kind == "ci" and "build" in groups)
    ]
    if "ci" in groups and "build" in groups:
        next(g for g in ordered if g["kind"] == "build")["commits"].extend(groups["ci"])
    return {"since": since_tag or "(first commit)", "groups": ordered, "stats": totals}


def render_notes(history: dict[str, Any], summaries: list[Any] | None = None, version: str = "") -> str:
    """Markdown release notes: one section per group, its summary, then its commits."""
    stats = history["stats"]
    title = f"# Release notes{(' ' + version) if version else ''}"
    lines = [
        title,
        "",
        f"Changes since {history['since']}: {stats['commits']} commits, {stats['files_changed']} files "
        f"changed, +{stats['insertions']}/-{stats['deletions']} lines.",
        "",
    ]
    summaries = summaries or []
    for index, group in enumerate(history["groups"]):
        lines.append(f"## {group['title']}")
        summary = summaries[index] if index < len(summaries) else None
        if isinstance(summary, dict):
            summary = summary.get("summary")
        if summary:
            lines.extend(["", str(summary).strip()])
        lines.append("")
        for commit in group["commits"]:
            flag = " (breaking)" if commit["breaking"] else ""
            lines.append(f"- {commit['subject']}{flag} ({commit['sha']})")
        lines.append("")
    return "\n".join(lines)

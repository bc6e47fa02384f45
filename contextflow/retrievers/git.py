"""What the repository's history knows: diffs, recent commits, co-change and blame.

Everything runs through the git CLI behind one seam (``runner``), bounded by ``since`` and
``max_commits`` so a long history never stalls a query. Whatever runner is given is wrapped by
``repo_text.redacting``: diffs, commit messages and blame come back with their secrets redacted
and secret files withheld, whoever calls.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from contextflow.retrievers.repo_text import GitRunner, redacting, run_git
from contextflow.retrievers.walk import git_root

_RECORD = "\x1e"  # separates commits in our log format
_FIELD = "\x1f"
_LOG_FORMAT = f"{_RECORD}%H{_FIELD}%an{_FIELD}%aI{_FIELD}%s{_FIELD}%b{_FIELD}"
#: Commits touching more files than this are bulk edits (renames, formatting); they say nothing about
#: which files belong together, so co-change ignores them.
CO_CHANGE_MAX_FILES = 30


@dataclass
class FileStat:
    path: str
    added: int
    removed: int


@dataclass
class Commit:
    sha: str
    author: str
    date: str
    subject: str
    body: str = ""
    files: list[FileStat] = field(default_factory=list)

    @property
    def message(self) -> str:
        return f"{self.subject}\n\n{self.body}".strip()

    def diffstat(self) -> str:
        return ", ".join(f"{f.path} (+{f.added}/-{f.removed})" for f in self.files)


@dataclass
class BlameLine:
    line: int
    sha: str
    author: str
    time: int
    summary: str
    text: str


class GitHistory:
    """Read-only queries on the git repository holding ``root``."""

    def __init__(self, root: str | Path, runner: GitRunner = run_git) -> None:
        self.root = Path(root).resolve()
        self.runner = redacting(runner)
        top = git_root(self.root, self.runner)
        if top is None:
            raise ValueError(f"{self.root} is not inside a git repository")
        self.top = top
        # Paths from git are relative to the top; ours are relative to root.
        rel = self.root.relative_to(top.resolve()) if self.root != top.resolve() else Path(".")
        self.prefix = "" if str(rel) == "." else rel.as_posix() + "/"

    @classmethod
    def open(cls, root: str | Path, runner: GitRunner = run_git) -> "GitHistory | None":
        try:
            return cls(root, runner)
        except ValueError:
            return None

    def _git(self, *args: str) -> str:
        return self.runner(list(args), self.top)

    def _local(self, path: str) -> str | None:
        if not path.startswith(self.prefix):
            return None
        return path[len(self.prefix) :]

    def has_commits(self) -> bool:
        try:
            self._git("rev-parse", "--verify", "-q", "HEAD")
            return True
        except RuntimeError:
            return False

    # ---- diffs ----------------------------------------------------------------------------

    def working_diff(self, paths: list[str] | None = None) -> str:
        """Unstaged changes (work tree vs index)."""
        return self._git("diff", "--no-color", "--no-ext-diff", "--", *self._full(paths))

    def staged_diff(self, paths: list[str] | None = None) -> str:
        """Staged changes (index vs HEAD)."""
        return self._git("diff", "--cached", "--no-color", "--no-ext-diff", "--", *self._full(paths))

    def changed_files(self) -> dict[str, str]:
        """Files with uncommitted changes -> 'staged', 'modified' or 'untracked'."""
        out = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all")
        changed: dict[str, str] = {}
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code[0] in "RC":
                i += 1  # the rename's source path follows
            local = self._local(path)
            if local is None:
                continue
            changed[local] = "untracked" if code == "??" else ("staged" if code[0] != " " else "modified")
        return changed

    def _full(self, paths: list[str] | None) -> list[str]:
        return [self.prefix + p for p in paths] if paths else ([self.prefix] if self.prefix else [])

    # ---- history --------------------------------------------------------------------------

    def log(self, *, paths: list[str] | None = None, since: str | None = None, max_commits: int = 200) -> list[Commit]:
        """Commits newest first with their numstat, at most ``max_commits``, optionally since a date."""
        if not self.has_commits():
            return []
        args = ["log", f"--max-count={max_commits}", "--no-color", "--numstat", "--no-renames", f"--format={_LOG_FORMAT}"]
        if since:
            args.append(f"--since={since}")
        args += ["--", *self._full(paths)]
        return self._parse_log(self._git(*args))

    def recent_commits(self, *, since: str | None = None, max_commits: int = 50) -> list[Commit]:
        return self.log(since=since, max_commits=max_commits)

    def commits_touching(self, paths: list[str], *, since: str | None = None, max_commits: int = 50) -> list[Commit]:
        return self.log(paths=paths, since=since, max_commits=max_commits)

    def _parse_log(self, out: str) -> list[Commit]:
        commits: list[Commit] = []
        for record in out.split(_RECORD):
            if not record.strip():
                continue
            parts = record.split(_FIELD)
            if len(parts) < 6:
                continue
            sha, author, date, subject, body, stats = parts[:6]
            commit = Commit(sha, author, date, subject, body.strip())
            for line in stats.strip().splitlines():
                cols = line.split("\t")
                if len(cols) != 3:
                    continue
                local = self._local(cols[2])
                if local is None:
                    continue
                added = int(cols[0]) if cols[0].isdigit() else 0  # '-' for binary files
                removed = int(cols[1]) if cols[1].isdigit() else 0
                commit.files.append(FileStat(local, added, removed))
            commits.append(commit)
        return commits

    def co_change(
        self, *, since: str | None = None, max_commits: int = 500, min_count: int = 2
    ) -> dict[tuple[str, str], int]:
        """Pairs of files changed in the same commits (sorted pair -> number of commits)."""
        return co_change_pairs(self.log(since=since, max_commits=max_commits), min_count=min_count)

    # ---- blame ----------------------------------------------------------------------------

    def blame(self, path: str, start: int, end: int) -> list[BlameLine]:
        """Who last changed lines ``start..end`` of ``path`` (committed history only)."""
        out = self._git("blame", "--porcelain", "-L", f"{start},{end}", "HEAD", "--", self.prefix + path)
        return parse_blame(out)


def co_change_pairs(commits: list[Commit], *, min_count: int = 2) -> dict[tuple[str, str], int]:
    counts: Counter[tuple[str, str]] = Counter()
    for commit in commits:
        files = sorted({f.path for f in commit.files})
        if 2 <= len(files) <= CO_CHANGE_MAX_FILES:
            counts.update(combinations(files, 2))
    return {pair: n for pair, n in counts.items() if n >= min_count}


_BLAME_HEADER = re.compile(r"^([0-9a-f]{40}) (\d+) (\d+)(?: (\d+))?$")


def parse_blame(out: str) -> list[BlameLine]:
    meta: dict[str, dict[str, str]] = {}
    lines: list[BlameLine] = []
    current: str | None = None
    final_line = 0
    for raw in out.split("\n"):
        header = _BLAME_HEADER.match(raw)
        if header:
            current = header.group(1)
            final_line = int(header.group(3))
            meta.setdefault(current, {})
        elif raw.startswith("\t") and current is not None:
            info = meta[current]
            lines.append(
                BlameLine(final_line, current, info.get("author", ""), int(info.get("author-time", "0") or 0),
                          info.get("summary", ""), raw[1:])
            )
        elif current is not None and " " in raw:
            key, value = raw.split(" ", 1)
            meta[current][key] = value
    return lines

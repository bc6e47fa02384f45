"""Which files of a repository may be indexed: .gitignore respected, secrets, binaries and huge files skipped.

In a git work tree the file list comes from git itself (``git ls-files --cached --others
--exclude-standard``), so every ignore source git knows (nested .gitignore, .git/info/exclude, the
global excludes file) applies. A plain directory is walked with the ``pathspec`` package applying
each .gitignore found on the way down, the way git would.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from contextflow.core.errors import UserError
from contextflow.retrievers.repo_text import GitRunner, read_text, redacting, run_git
from contextflow.retrievers.secrets import is_secret_file

__all__ = ["ALWAYS_SKIPPED_DIRS", "DEFAULT_MAX_FILE_BYTES", "GitRunner", "SourceFile", "WalkResult", "git_root",
           "iter_texts", "read_text", "run_git", "walk_repo"]

#: Folders never worth indexing, even when nothing ignores them (a plain directory, an untracked venv).
ALWAYS_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", ".contextflow", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".eggs", "site-packages"}
)
DEFAULT_MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class SourceFile:
    """A file that may be indexed: ``path`` is POSIX and relative to the repository root."""

    path: str
    size: int
    mtime_ns: int


@dataclass
class WalkResult:
    files: list[SourceFile]
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> paths
    git: bool = False

    def skip(self, reason: str, path: str) -> None:
        self.skipped.setdefault(reason, []).append(path)


def git_root(root: Path, runner: GitRunner = run_git) -> Path | None:
    """The top of the git work tree holding ``root``, or None for a plain directory."""
    try:
        top = runner(["rev-parse", "--show-toplevel"], root).strip()
    except (RuntimeError, FileNotFoundError):
        return None
    return Path(top) if top else None


def _git_listing(root: Path, runner: GitRunner) -> list[str]:
    out = runner(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    return sorted({p for p in out.split("\0") if p})


def _pathspec_listing(root: Path) -> list[str]:
    try:
        import pathspec
    except ImportError:  # pragma: no cover - pathspec ships with the package's dependencies
        raise UserError(
            "indexing a directory that is not a git repository needs the 'pathspec' package",
            hint="pip install pathspec",
        ) from None
    found: list[str] = []
    # Each entry: (folder relative to root, its compiled .gitignore).
    stack: list[tuple[str, object]] = []

    def ignored(rel: str, is_dir: bool) -> bool:
        verdict = False
        for base, spec in stack:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1 :] if base else rel
            probe = sub + "/" if is_dir else sub
            # The deeper .gitignore decides when it has an opinion (negations included).
            result = spec.check_file(probe)  # type: ignore[attr-defined]
            if result.include is not None:
                verdict = bool(result.include)
        return verdict

    def visit(folder: Path, rel_folder: str) -> None:
        pushed = False
        ignore_file = folder / ".gitignore"
        if ignore_file.is_file():
            lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            stack.append((rel_folder, pathspec.GitIgnoreSpec.from_lines(lines)))
            pushed = True
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name in ALWAYS_SKIPPED_DIRS or ignored(rel, True):
                    continue
                visit(Path(entry.path), rel)
            elif entry.is_file(follow_symlinks=False) and not ignored(rel, False):
                found.append(rel)
        if pushed:
            stack.pop()

    visit(root, "")
    return found


def walk_repo(
    root: str | os.PathLike[str],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    runner: GitRunner = run_git,
) -> WalkResult:
    """The indexable files under ``root`` with the reasons others were left out."""
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise UserError(f"{base} is not a directory", hint="pass the folder of the repository to index")
    runner = redacting(runner)
    top = git_root(base, runner)
    result = WalkResult(files=[], git=top is not None)
    listing = _git_listing(base, runner) if top is not None else _pathspec_listing(base)
    base_str = str(base)
    for rel in listing:
        parts = rel.split("/")
        if any(p in ALWAYS_SKIPPED_DIRS for p in parts[:-1]):
            continue
        if is_secret_file(rel):
            result.skip("secret", rel)
            continue
        try:
            st = os.lstat(f"{base_str}/{rel}")
        except OSError:
            continue  # deleted in the work tree but still in the git index
        if not stat.S_ISREG(st.st_mode):
            continue  # symlinks (may point outside the repository), sockets, submodules
        if st.st_size > max_file_bytes:
            result.skip("too large", rel)
            continue
        result.files.append(SourceFile(rel, st.st_size, st.st_mtime_ns))
    return result


def iter_texts(root: Path, files: list[SourceFile]) -> Iterator[tuple[SourceFile, str | None]]:
    """Each file with its redacted text (None for binary files and unreadable ones)."""
    for f in files:
        try:
            yield f, read_text(root, f.path)
        except OSError:
            yield f, None

"""The one boundary through which repository text reaches the library, redacted on the way in.

Two doors, and no other: :func:`read_text` for a file's contents and a git runner for everything
git prints (diffs, logs, commit messages, blame). Both hand out text whose secrets are already
replaced by ``[REDACTED:<kind>]``, so an index, a window, a run store, a trace or an app's output
built from them cannot hold a secret, whichever caller asked.

- Secret files (``.netrc``, ``.env``, private keys; see ``is_secret_file``) are never read: their
  diff sections are replaced by a marker, and commands that print one (``blame``, ``show
  REV:PATH``) print the marker instead.
- :func:`redacting` wraps any runner. The runner is a seam tests swap, so every consumer
  (``GitHistory``, ``walk_repo``, ``RepoIndex``, the apps) wraps what it is given: injecting a
  runner cannot switch redaction off. Wrapping twice is a no-op.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from contextflow.retrievers.secrets import is_secret_file, redact, redact_text

__all__ = ["SECRET_FILE_MARKER", "GitRunner", "is_binary", "read_text", "redacting", "run_git", "withhold_secret_diffs"]

#: ``runner(args, cwd) -> stdout``: the seam through which every git command runs.
GitRunner = Callable[[list[str], Path], str]

#: What stands where a secret file's contents would be.
SECRET_FILE_MARKER = "[REDACTED:secret-file] the contents of this secret file are not shown"
_SNIFF_BYTES = 8192
#: A git command that hangs (a lock, a huge repository on a slow disk) fails instead of stalling a run.
GIT_TIMEOUT_S = 300.0


def _run_git_process(args: list[str], cwd: Path) -> str:
    """Run ``git args`` in ``cwd``; a failing command raises RuntimeError, a missing git FileNotFoundError."""
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args], cwd=cwd, capture_output=True, text=True,
            encoding="utf-8", errors="replace", timeout=GIT_TIMEOUT_S, check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(redact(f"git {' '.join(args[:3])} did not finish within {GIT_TIMEOUT_S:g} s in {cwd}")) from None
    if proc.returncode != 0:
        # The arguments or stderr can quote a secret (a revision, a line of a file): redact both.
        raise RuntimeError(redact(f"git {' '.join(args[:3])} failed in {cwd}: {proc.stderr.strip()[:300]}"))
    return proc.stdout


class _RedactingRunner:
    """A runner whose output passes :func:`redact_git_output` before any caller sees it."""

    def __init__(self, inner: GitRunner) -> None:
        self.inner = inner

    def __call__(self, args: list[str], cwd: Path) -> str:
        return redact_git_output(args, self.inner(args, cwd))


def redacting(runner: GitRunner) -> GitRunner:
    """``runner`` with its output redacted (returned as is when it already is)."""
    return runner if isinstance(runner, _RedactingRunner) else _RedactingRunner(runner)


#: The default runner: git itself, redacted.
run_git: GitRunner = _RedactingRunner(_run_git_process)


# ---------------------------------------------------------------------------------------------
# What git prints


def _subcommand(args: list[str]) -> tuple[str, list[str]]:
    rest = list(args)
    while rest and rest[0].startswith("-"):  # global options: -c key=value, -C dir, --no-pager
        flag = rest.pop(0)
        if flag in ("-c", "-C") and rest:
            rest.pop(0)
    return (rest[0], rest[1:]) if rest else ("", [])


def prints_secret_file(args: list[str]) -> bool:
    """True for a command whose output is a secret file's contents (blame of it, ``show REV:PATH``)."""
    command, rest = _subcommand(args)
    if command in ("blame", "annotate"):
        paths = rest[rest.index("--") + 1 :] if "--" in rest else rest[-1:]
        return any(is_secret_file(p) for p in paths)
    if command in ("show", "cat-file", "archive"):
        return any(":" in a and is_secret_file(a.split(":", 1)[1]) for a in rest if not a.startswith("-"))
    return False


def redact_git_output(args: list[str], out: str) -> str:
    """What a caller may see of ``git args``' output: secret files withheld, secrets redacted."""
    if prints_secret_file(args):
        return SECRET_FILE_MARKER + "\n"
    return redact_text(withhold_secret_diffs(out))


_DIFF_HEADER = re.compile(r"^diff --(?:git|cc|combined) ")
_BODY_START = ("@@", "Binary files", "GIT binary patch")
_BODY_LINE = ("+", "-", " ", "\\", "@@", "literal ", "delta ")
_TOKEN = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|(\S+)")


def _header_names_secret(lines: list[str]) -> bool:
    for line in lines:
        for quoted, plain in _TOKEN.findall(line):
            token = quoted or plain
            if token[:2] in ("a/", "b/"):
                token = token[2:]
            if token and token != "/dev/null" and is_secret_file(token):
                return True
    return False


def withhold_secret_diffs(text: str) -> str:
    """``text`` with the body of every diff section of a secret file replaced by a marker line.

    The section's header (``diff --git``, ``---``/``+++``) stays, so a reader still sees that the
    file changed; its hunks, which would show the credentials, do not."""
    if "diff --" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not _DIFF_HEADER.match(line):
            out.append(line)
            i += 1
            continue
        header = [line]
        i += 1
        while i < len(lines) and not _DIFF_HEADER.match(lines[i]) and not lines[i].startswith(_BODY_START):
            if lines[i].startswith(("@@",)) or not lines[i] or lines[i].startswith(("commit ",)):
                break
            header.append(lines[i])
            i += 1
        out.extend(header)
        if not _header_names_secret(header):
            continue
        out.append(SECRET_FILE_MARKER)
        # Skip the body: hunks and binary patches, up to the next section or non-diff line.
        while i < len(lines) and not _DIFF_HEADER.match(lines[i]):
            current = lines[i]
            if current.startswith(_BODY_START) or current.startswith(_BODY_LINE) or _is_binary_patch_line(current):
                i += 1
                continue
            break
    return "\n".join(out)


def _is_binary_patch_line(line: str) -> bool:
    # Lines of a "GIT binary patch" are base85 with a length letter first.
    return bool(line) and line[0].isalpha() and " " not in line and len(line) > 1


# ---------------------------------------------------------------------------------------------
# Files


def is_binary(head: bytes) -> bool:
    """Git's rule (a NUL byte in the first 8 KiB) plus invalid UTF-8 in a mostly non-text prefix."""
    if b"\x00" in head:
        return True
    if not head:
        return False
    try:
        head.decode("utf-8")
        return False
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a multi-byte character cut by the sniff window
            return False
    # Not UTF-8: a legacy-encoded text file has few control bytes and a minority of high bytes.
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    high = sum(1 for b in head if b >= 0x80)
    return controls / len(head) > 0.02 or high / len(head) > 0.3


def read_text(root: str | os.PathLike[str], path: str) -> str | None:
    """The redacted text of ``root/path``; None for a binary file or a secret file (never read)."""
    if is_secret_file(path):
        return None
    data = (Path(root) / path).read_bytes()
    if is_binary(data[:_SNIFF_BYTES]):
        return None
    return redact(data.decode("utf-8", errors="replace"))

"""Built-in tools for ``tool`` nodes, confined to the run's working tree.

Every path a tool touches is resolved (symlinks included) and must stay inside the working tree;
``..``, absolute paths elsewhere and links pointing out are refused before anything is written.
Commands run without a shell, in the working tree, with a timeout.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any, Callable

from contextflow.core.builtin_tools import BUILTIN_TOOL_PARAMS, RUNTIME_ARGUMENT, ToolParams
from contextflow.core.errors import UserError

# Side effects each built-in declares: the autonomy levels decide from these which tools wait.
BUILTIN_SIDE_EFFECTS: dict[str, tuple[str, ...]] = {
    "write_file": ("write_files",),
    "apply_patch": ("apply_patch",),
    "run_command": ("run_command",),
    "read_file": (),
}


class ToolError(Exception):
    """A tool ran but did not do its job (a patch that does not apply, a failing command)."""


def confine(workdir: Path, path: str | os.PathLike[str]) -> Path:
    """``path`` resolved inside ``workdir``; raises UserError when it would escape."""
    root = Path(workdir).resolve()
    candidate = Path(path)
    target = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if target != root and root not in target.parents:
        raise UserError(
            f"refused: '{path}' is outside the working tree {root}",
            hint="tools may only touch files inside the run's working tree",
        )
    return target


def write_file(*, workdir: str, path: str, content: str, create_dirs: bool = True) -> dict[str, Any]:
    target = confine(Path(workdir), path)
    if create_dirs:
        target.parent.mkdir(parents=True, exist_ok=True)
    existed = target.exists()
    target.write_text(content, encoding="utf-8")
    return {"path": str(target.relative_to(Path(workdir).resolve())), "bytes": len(content.encode()), "created": not existed}


def read_file(*, workdir: str, path: str) -> str:
    return confine(Path(workdir), path).read_text(encoding="utf-8")


_PATCH_PATH = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", re.MULTILINE)


def patch_paths(patch: str) -> list[str]:
    return sorted({p for p in _PATCH_PATH.findall(patch) if p != "/dev/null"})


def apply_patch(*, workdir: str, patch: str, check_only: bool = False) -> dict[str, Any]:
    """Apply a unified diff with ``git apply`` after checking every path it names."""
    root = Path(workdir).resolve()
    paths = patch_paths(patch)
    if not paths:
        raise UserError("the patch names no files", hint="pass a unified diff (---/+++ headers)")
    for path in paths:
        confine(root, path)
    args = ["git", "apply", "--recount", "--whitespace=nowarn"]
    if check_only:
        args.append("--check")
    try:
        done = subprocess.run(args, cwd=root, input=patch, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise UserError("git is not installed", hint="apply_patch uses 'git apply'") from None
    if done.returncode != 0:
        raise ToolError(f"the patch does not apply: {done.stderr.strip() or done.stdout.strip()}")
    return {"files": paths, "applied": not check_only}


def run_command(
    *, workdir: str, command: str | list[str], timeout_s: float = 120.0, check: bool = True, env: dict[str, str] | None = None
) -> dict[str, Any]:
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not args:
        raise UserError("run_command needs a command")
    full_env = {**os.environ, **(env or {})}
    try:
        done = subprocess.run(
            args, cwd=Path(workdir).resolve(), capture_output=True, text=True, timeout=timeout_s, env=full_env, check=False
        )
    except FileNotFoundError:
        raise UserError(f"command not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"command did not finish within {timeout_s:g} s: {shlex.join(args)}") from None
    result = {"command": shlex.join(args), "returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-500:]
        raise ToolError(f"command exited with {done.returncode}: {shlex.join(args)}\n{tail}")
    return result


BUILTIN_TOOLS: dict[str, Callable[..., Any]] = {
    "write_file": write_file,
    "read_file": read_file,
    "apply_patch": apply_patch,
    "run_command": run_command,
}


def _declared_params(fn: Callable[..., Any]) -> ToolParams:
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != RUNTIME_ARGUMENT]
    return ToolParams(tuple(p.name for p in params if p.default is inspect.Parameter.empty),
                      tuple(p.name for p in params if p.default is not inspect.Parameter.empty))


def check_builtin_table() -> None:
    """The pipeline checks validate tool nodes against core's table; it must describe these functions."""
    actual = {name: _declared_params(fn) for name, fn in BUILTIN_TOOLS.items()}
    if actual != BUILTIN_TOOL_PARAMS:
        raise RuntimeError(
            f"contextflow.core.builtin_tools.BUILTIN_TOOL_PARAMS is out of date: the built-in tools take {actual}"
        )


check_builtin_table()

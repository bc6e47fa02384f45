"""``contextflow approve|edit|reject RUN NODE`` and ``contextflow pending RUN``: decide at approval gates.

A decision is recorded in the run store (with who, when and the diff of an edit) and in the trace;
``contextflow resume RUN`` (or ``--resume`` here) then continues the run.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import typer

from contextflow.core.errors import UserError
from contextflow.core.waiting import Waiting
from contextflow.api import resume
from contextflow.runtime.approvals import pending
from contextflow.api import approve
from contextflow.api import edit
from contextflow.runtime.approvals import editable
from contextflow.api import reject


def parse_sets(pairs: list[str], base: Any) -> Any:
    """Apply ``field=value`` edits (dotted paths into objects; values parsed as JSON when they are)."""
    value = json.loads(json.dumps(base))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set '{pair}' is not FIELD=VALUE", hint="e.g. --set path=notes.txt")
        try:
            parsed: Any = json.loads(raw)
        except json.JSONDecodeError:
            parsed = raw
        if key == "." or (key == "output" and not isinstance(value, dict)):
            value = parsed
            continue
        if not isinstance(value, dict):
            raise UserError(f"--set {key}=...: the value being edited is a {type(value).__name__}, not an object",
                            hint="replace it whole with --set .=VALUE or --file FILE")
        target = value
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                raise UserError(f"--set {key}=...: '{part}' is not an object")
            target = nxt
        target[parts[-1]] = parsed
    return value


def _from_editor(current: Any) -> Any:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise UserError("nothing to edit with", hint="pass --set FIELD=VALUE or --file FILE, or set $EDITOR")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as handle:
        json.dump(current, handle, indent=2, ensure_ascii=False)
        path = Path(handle.name)
    try:
        subprocess.run([*shlex.split(editor), str(path)], check=True)
        return _read_json(path)
    finally:
        path.unlink(missing_ok=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no file {path}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None


def show_proposal(node_id: str, held: Waiting) -> str:
    """A plain-text rendering of what a waiting node proposes."""
    lines = [f"{node_id}: waiting ({held.reason}, {held.phase})"]
    shown = held.proposal
    if isinstance(shown, dict) and shown.get("diff"):
        lines.append(str(shown["diff"]))
    elif isinstance(shown, dict) and shown.get("command"):
        lines.append(f"$ {shown['command']}    (in {shown.get('cwd')})")
    elif shown is not None:
        lines.append(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
    if held.phase == "after":
        lines.append(json.dumps(held.output, indent=2, ensure_ascii=False, default=str))
    return "\n".join(lines)


def _resume(run_id: str, project: Optional[Path]) -> None:
    result = resume(run_id, project=project)
    typer.echo(f"run {run_id}: {result.status}")
    if result.status == "waiting":
        typer.echo(f"still waiting: {', '.join(n for n, r in result.nodes.items() if r.status == 'waiting')}")


def register(app: typer.Typer) -> None:
    project_opt = typer.Option(None, "--project", help="Project folder of the run.")
    actor_opt = typer.Option(None, "--as", help="Who decides (default: your user name).")
    comment_opt = typer.Option(None, "--comment", "-c", help="Why.")
    resume_opt = typer.Option(False, "--resume", help="Continue the run right away in this process.")

    @app.command("pending")
    def pending_command(run_id: str, project: Optional[Path] = project_opt,
                        as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List a run's waiting nodes and what each would do."""

        waiting = pending(run_id, project=project)
        if as_json:
            shown = {node_id: held.to_dict() for node_id, held in waiting.items()}
            typer.echo(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
            return
        if not waiting:
            typer.echo(f"run {run_id} has no waiting nodes")
        for node_id, held in waiting.items():
            typer.echo(show_proposal(node_id, held))

    @app.command("approve")
    def approve_command(run_id: str, node: str, project: Optional[Path] = project_opt,
                        actor: Optional[str] = actor_opt, comment: Optional[str] = comment_opt,
                        resume: bool = resume_opt) -> None:
        """Let a waiting node go on."""

        approve(run_id, node, project=project, actor=actor, comment=comment)
        typer.echo(f"approved {node}; continue with: contextflow resume {run_id}")
        if resume:
            _resume(run_id, project)

    @app.command("edit")
    def edit_command(
        run_id: str, node: str, sets: list[str] = typer.Option([], "--set", help="FIELD=VALUE; repeatable."),
        file: Optional[Path] = typer.Option(None, "--file", help="JSON file with the whole new value."),
        project: Optional[Path] = project_opt, actor: Optional[str] = actor_opt,
        comment: Optional[str] = comment_opt, resume: bool = resume_opt,
    ) -> None:
        """Change a waiting node's tool arguments (before it acts) or its output (before it flows on)."""

        waiting = pending(run_id, project=project)
        if node not in waiting:
            raise UserError(f"node '{node}' of run '{run_id}' is not waiting",
                            hint=f"waiting nodes: {', '.join(waiting) or 'none'}")
        current = editable(waiting[node])
        if file is not None:
            value = parse_sets(sets, _read_json(file))
        elif sets:
            value = parse_sets(sets, current)
        else:
            value = _from_editor(current)
        edit(run_id, node, value, project=project, actor=actor, comment=comment)
        typer.echo(f"edited {node}; continue with: contextflow resume {run_id}")
        if resume:
            _resume(run_id, project)

    @app.command("reject")
    def reject_command(
        run_id: str, node: str, abort: bool = typer.Option(False, "--abort", help="Stop the whole run."),
        project: Optional[Path] = project_opt, actor: Optional[str] = actor_opt,
        comment: Optional[str] = comment_opt, resume: bool = resume_opt,
    ) -> None:
        """Skip a waiting node and the branch below it (or --abort the run)."""

        reject(run_id, node, abort=abort, project=project, actor=actor, comment=comment)
        typer.echo(f"rejected {node}" + ("; run aborted" if abort else f"; continue with: contextflow resume {run_id}"))
        if resume and not abort:
            _resume(run_id, project)


def prompt_decisions(run_id: str, project: Optional[Path]) -> bool:
    """Ask at the terminal about each waiting node; True when something was decided (resume then)."""

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    decided = False
    for node_id, held in pending(run_id, project=project).items():
        typer.echo(show_proposal(node_id, held), err=True)
        answer = typer.prompt("[a]pprove, [e]dit, [r]eject, [s]kip for now", default="s", err=True).strip().lower()
        if answer.startswith("a"):
            approve(run_id, node_id, project=project)
        elif answer.startswith("e"):
            edit(run_id, node_id, _from_editor(editable(held)), project=project)
        elif answer.startswith("r"):
            reject(run_id, node_id, project=project)
        else:
            continue
        decided = True
    return decided


def decide_at_terminal(result: Any, project: Optional[Path]) -> Any:
    """During ``contextflow run`` at a terminal: ask about each waiting node and resume in this
    process until nothing waits or the person leaves the rest for later."""

    while result.status == "waiting" and prompt_decisions(result.run_id, project):
        result = resume(result.run_id, project=project)
    return result

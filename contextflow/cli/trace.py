"""``contextflow trace list|show|export`` and ``contextflow ui``."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Optional

import typer

from contextflow.core.errors import UserError
from contextflow.core.state import StateDir
from contextflow.trace import TraceStore
from contextflow.trace import TraceNotFound
from contextflow.ui.page import exported_page
from contextflow.trace.otlp import export_run
from contextflow.ui.app import DEFAULT_HOST, DEFAULT_PORT, serve, viewer_access

trace_app = typer.Typer(help="Recorded runs: list, show and export traces.", no_args_is_help=True)


def _store(project: Optional[Path]):
    return TraceStore(StateDir.for_project(project).traces_db)


def _run(project: Optional[Path], run_id: str) -> dict:
    try:
        return _store(project).run(run_id)
    except ValueError as exc:
        raise UserError(str(exc), hint="run ids are listed by `contextflow trace list`") from None
    except TraceNotFound:
        raise UserError(f"no trace for run '{run_id}'", hint="`contextflow trace list` shows the recorded runs") from None


@trace_app.command("list")
def list_runs(
    project: Optional[Path] = typer.Option(None, "--project", help="Project folder."),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status."),
    limit: int = typer.Option(30, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recorded runs with status, cost, tokens, duration and model mix."""
    runs = _store(project).list_runs(limit=limit, status=status)
    if as_json:
        typer.echo(json.dumps(runs, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if console.width < 110:  # a narrow terminal: plain lines keep ids and figures whole
        for r in runs:
            duration = f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else "-"
            typer.echo(f"{r['run_id']}  {r['status'] or '':<15} ${r['cost_usd']:.6f} {r['tokens']:>8} tok"
                       f" {duration:>9}  {r['pipeline'] or ''}")
        return
    table = Table("run", "pipeline", "status", "cost", "tokens", "duration", "models")
    for r in runs:
        duration = f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else "-"
        models = ", ".join(f"{m} x{n}" for m, n in r["models"].items())
        table.add_row(r["run_id"], r["pipeline"] or "", r["status"] or "", f"${r['cost_usd']:.6f}", str(r["tokens"]),
                      duration, models)
    console.print(table)


@trace_app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Run id."),
    project: Optional[Path] = typer.Option(None, "--project"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Totals, per-node and per-model rollups and the critical path of one run."""
    run = _run(project, run_id)
    if as_json:
        typer.echo(json.dumps(run, default=str))
        return
    typer.echo(f"run {run['run_id']} ({run['pipeline']}): {run['status']}")
    typer.echo(f"cost ${run['cost_usd']:.6f}  tokens {run['input_tokens']} in / {run['output_tokens']} out")
    typer.echo("critical path: " + " -> ".join(run["critical_path"]))
    for node, entry in run["by_node"].items():
        latency = f"{entry['latency_s']:.3f}s" if entry.get("latency_s") is not None else "-"
        typer.echo(f"  {node:<24} {entry.get('status') or '':<10} ${entry['cost_usd']:.6f} {entry['tokens']:>7} tok {latency:>9} {entry.get('model') or ''}")


@trace_app.command("export")
def export(
    run_id: str = typer.Argument(..., help="Run id."),
    html: Optional[Path] = typer.Option(None, "--html", help="Write one self-contained HTML file."),
    otlp: Optional[str] = typer.Option(None, "--otlp", help="Send the spans to an OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318."),
    as_json: Optional[Path] = typer.Option(None, "--json", help="Write the trace as JSON."),
    project: Optional[Path] = typer.Option(None, "--project"),
) -> None:
    """Export a run's trace as HTML, JSON or OTLP (for Langfuse, Phoenix and other OTel tools)."""
    if not (html or otlp or as_json):
        raise UserError("choose at least one of --html FILE, --json FILE or --otlp ENDPOINT")
    run = _run(project, run_id)
    if html:
        html.write_text(exported_page(run, _store(project).list_runs(limit=50)), encoding="utf-8")
        typer.echo(f"wrote {html}")
    if as_json:
        as_json.write_text(json.dumps(run, default=str, indent=1), encoding="utf-8")
        typer.echo(f"wrote {as_json}")
    if otlp:
        sent = export_run(run, otlp)
        typer.echo(f"sent {sent} spans to {otlp}")


def register(app: typer.Typer) -> None:
    app.add_typer(trace_app, name="trace")

    @app.command("ui")
    def ui(
        project: Optional[Path] = typer.Option(None, "--project", help="Project folder."),
        host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to bind (loopback by default)."),
        port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535),
        allow_remote: bool = typer.Option(
            False, "--allow-remote",
            help="Allow a non-loopback --host (e.g. 0.0.0.0); every request then needs the printed access token."),
    ) -> None:
        """Serve the trace viewer on http://127.0.0.1:PORT."""
        access = viewer_access(host, port, allow_remote=allow_remote)
        if access.token:
            shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
            typer.echo(f"contextflow viewer on {access.url(shown)}  (Ctrl-C to stop)")
            typer.echo("every request needs this token; the connection is plain HTTP, so on an untrusted "
                       "network prefer --host 127.0.0.1 with an SSH tunnel")
        else:
            typer.echo(f"contextflow viewer on {access.url()}  (Ctrl-C to stop)")
        serve(StateDir.for_project(project), host=host, port=port, access=access)

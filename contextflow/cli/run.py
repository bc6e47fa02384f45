"""``contextflow run FILE`` and ``contextflow resume RUN_ID``: execute pipelines from the shell.

On a terminal a live table shows each node's state, model, cost and time; when standard output is
a terminal, the models' replies are printed there as they stream in instead (the table would
redraw over them). With ``--json`` (or when the output is not a terminal) only the result is
printed. Ctrl-C cancels in-flight calls,
keeps every finished node and prints the command that resumes the run.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from contextflow.core.errors import UserError
from contextflow.core.events import TokenDelta
from contextflow.core.results import to_jsonable
from contextflow.runtime.interrupts import cancel_on_sigint
from contextflow.cli.approvals import decide_at_terminal
from contextflow.dags.spec import BudgetSpec
from contextflow.api import arun
from contextflow.runtime.api import bind_inputs
from contextflow.runtime.api import new_run_id
from contextflow.cost.model_choice import ModelOptions, choose_models
from contextflow.dags.compiler import compile
from contextflow.dags.spec import PipelineSpec
from contextflow.api import aresume
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.core.state import StateDir
from contextflow.runtime.dask_executor import DaskExecutor

_EXIT_FOR_STATUS = {"succeeded": 0, "waiting": 0, "failed": 1, "budget_exceeded": 1, "cancelled": 130}
_STYLE = {
    "pending": "dim", "running": "yellow", "succeeded": "green", "cached": "cyan", "skipped": "dim",
    "failed": "red", "waiting": "magenta", "cancelled": "red",
}


def parse_inputs(pairs: list[str], declared: dict[str, Any]) -> dict[str, Any]:
    """``k=v`` pairs typed by the pipeline's input declarations; ``k=@path`` reads a file."""
    values: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"--input '{pair}' is not KEY=VALUE", hint="e.g. --input question='what does x do?'")
        key, _, raw = pair.partition("=")
        key = key.strip()
        if raw.startswith("@"):
            path = Path(raw[1:]).expanduser()
            if not path.is_file():
                raise UserError(f"--input {key}=@{path}: no such file")
            raw = path.read_text(encoding="utf-8")
        decl = declared.get(key)
        kind = decl.type if decl is not None else "string"
        values[key] = _coerce(key, raw, kind)
    return values


def _coerce(key: str, raw: str, kind: str) -> Any:
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
        if kind == "boolean":
            lowered = raw.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(raw)
        if kind in ("array", "object"):
            value = json.loads(raw)
            if not isinstance(value, list if kind == "array" else dict):
                raise ValueError(raw)
            return value
    except ValueError:
        raise UserError(f"--input {key}={raw!r} is not a valid {kind}") from None
    return raw


class LiveView:
    """An event sink that keeps a rich table of node states up to date."""

    def __init__(self, node_ids: list[str], title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.rows: dict[str, dict[str, Any]] = {n: {"status": "pending"} for n in node_ids}
        self.cost = 0.0
        self.started = time.monotonic()
        self.live = Live(self._table(), console=Console(stderr=True), refresh_per_second=8, transient=False)

    def __enter__(self) -> "LiveView":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.update(self._table())
        self.live.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        kind = type(event).__name__
        node_id = getattr(event, "node_id", None)
        row = self.rows.setdefault(node_id, {"status": "pending"}) if node_id else None
        if kind == "NodeStarted" and row is not None:
            row.update(status="running", t0=event.ts)
        elif kind == "NodeFinished" and row is not None:
            row.update(status=event.status, model=event.model, cost=event.cost_usd, secs=event.duration_s)
            self.cost += event.cost_usd
        elif kind == "NodeFailed" and row is not None:
            row.update(status="failed", error=event.error)
        elif kind == "NodeSkipped" and row is not None:
            row.update(status="skipped")
        elif kind == "NodeWaiting" and row is not None:
            row.update(status="waiting")
        elif kind == "AttemptStarted" and row is not None:
            row["attempt"] = event.attempt
            row["model"] = event.model
        else:
            return
        self.live.update(self._table())

    def _table(self) -> Any:
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        table = Table(title=f"{self.title}  ${self.cost:.4f}  {elapsed:.1f}s", title_justify="left")
        for column in ("node", "status", "model", "try", "cost $", "time s"):
            table.add_column(column)
        for node_id, row in self.rows.items():
            status = row["status"]
            secs = row.get("secs")
            table.add_row(
                node_id, f"[{_STYLE.get(status, '')}]{status}[/]", str(row.get("model") or ""),
                str(row.get("attempt") or ""), f"{row['cost']:.5f}" if row.get("cost") else "",
                f"{secs:.2f}" if secs else "",
            )
        return table


# C0/C1 control characters but tab and newline: a model's reply must not drive the terminal
# (cursor moves, colours, a rewritten title) while it is printed raw.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class TokenPrinter:
    """An event sink that prints each model reply to a terminal as it streams in, under a header
    naming the node (and the map element and attempt, when there are several)."""

    consumes_token_deltas = True

    def __init__(self, out: Any) -> None:
        self.out = out
        self.current: tuple[str, int | None, int] | None = None

    def __call__(self, event: Any) -> None:
        if not isinstance(event, TokenDelta):
            return
        key = (event.node_id, event.item, event.attempt)
        if key != self.current:
            label = event.node_id + (f"[{event.item}]" if event.item is not None else "")
            label += f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self.out.write(("\n" if self.current is not None else "") + f"── {label} ──\n")
            self.current = key
        self.out.write(_TERMINAL_CONTROLS.sub("\ufffd", event.text))
        self.out.flush()

    def close(self) -> None:
        if self.current is not None:
            self.out.write("\n\n")
            self.out.flush()
            self.current = None


def token_printer(as_json: bool) -> TokenPrinter | None:
    """A printer of streamed replies when standard output is a terminal (never for ``--json``)."""
    if as_json or not sys.stdout.isatty():
        return None
    return TokenPrinter(sys.stdout)


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.summary(), ensure_ascii=False, default=str))
        return
    for name, value in result.outputs.items():
        plain = to_jsonable(value)
        text = plain if isinstance(plain, str) else json.dumps(plain, indent=2, ensure_ascii=False)
        typer.echo(f"== {name} ==\n{text}")
    usage = result.usage
    typer.echo(
        f"status: {result.status}   cost: ${result.cost_usd:.6f}   tokens: {usage.input_tokens} in /"
        f" {usage.output_tokens} out   run id: {result.run_id}"
    )
    typer.echo(f"view the trace: contextflow ui   (then http://127.0.0.1:8321/#/run/{result.run_id})")
    if result.error:
        typer.echo(f"error: {result.error}", err=True)
    if result.status in ("failed", "budget_exceeded", "cancelled", "waiting"):
        typer.echo(f"resume with: contextflow resume {result.run_id}", err=True)


def _print_models(name: str, explained: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(explained, ensure_ascii=False))
        return
    typer.echo(f"models for {name}:")
    for node_id, chosen in explained["nodes"].items():
        line = f"  {node_id} ({chosen['strategy']}): {' -> '.join(chosen['models'])}"
        if chosen.get("step_down"):
            line += f"   steps down within {' -> '.join(chosen['step_down'])}"
        typer.echo(line)
    if explained.get("hosted_ladder"):
        typer.echo(f"an API key is set: what was meant for the local model runs on {' -> '.join(explained['hosted_ladder'])}")


def _execute(
    coro_factory: Any, node_ids: list[str], title: str, as_json: bool, run_id: str, project: Any = None
) -> None:

    live = None
    printer = token_printer(as_json)
    if printer is None and not as_json and sys.stderr.isatty():
        live = LiveView(node_ids, title)
    sinks: list[Any] = [live] if live is not None else [printer] if printer is not None else []
    try:
        if live is not None:
            with live:
                result = asyncio.run(cancel_on_sigint(coro_factory(sinks)))
        else:
            result = asyncio.run(cancel_on_sigint(coro_factory(sinks)))
    except KeyboardInterrupt:
        if printer is not None:
            printer.close()
        typer.echo(f"cancelled; finished nodes are saved. resume with: contextflow resume {run_id}", err=True)
        raise typer.Exit(130) from None
    if printer is not None:
        printer.close()
    if result.status == "waiting" and not as_json:
        result = decide_at_terminal(result, project)
    _print_result(result, as_json)
    raise typer.Exit(_EXIT_FOR_STATUS.get(result.status, 1))


def make_executor(kind: str, address: str | None) -> Any:
    """None for the local executor (the runtime makes its own), or a Dask executor."""
    if kind == "local":
        if address:
            raise UserError("--address needs --executor dask")
        return None
    if kind == "dask":
        return DaskExecutor(address)
    raise UserError(f"unknown executor '{kind}'", hint="use --executor local or --executor dask")


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        file: Path = typer.Argument(..., help="Pipeline YAML file."),
        inputs: list[str] = typer.Option([], "--input", "-i", help="KEY=VALUE (or KEY=@file); repeatable."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object with outputs, cost and run id."),
        model: Optional[str] = typer.Option(
            None, "--model", "-m", envvar="CONTEXTFLOW_MODEL",
            help="Model for nodes that name none, and the one rung of every cascade/route node.",
        ),
        project: Optional[Path] = typer.Option(None, "--project", help="Project folder (state in PROJECT/.contextflow)."),
        max_cost: Optional[float] = typer.Option(None, "--max-cost", help="Hard cap on the run's cost in $."),
        max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Hard cap on the run's tokens."),
        max_wall: Optional[float] = typer.Option(None, "--max-wall", help="Hard cap on the run's wall time in s."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the result cache."),
        allow_import: list[str] = typer.Option([], "--allow-import", help="Module prefix python nodes may import."),
        checkpoint: str = typer.Option("node", "--checkpoint", help="node | background | off"),
        no_trace: bool = typer.Option(False, "--no-trace", help="Do not record a trace."),
        ladder: Optional[str] = typer.Option(
            None, "--ladder", envvar="CONTEXTFLOW_LADDER",
            help="Comma-separated models, cheapest first, for every cascade/route node.",
        ),
        plan_models: bool = typer.Option(
            False, "--plan-models",
            help="Before the run, cap each ladder at the best rung the budget affords; step down as it drains.",
        ),
        executor: str = typer.Option("local", "--executor", help="local | dask"),
        autonomy: Optional[str] = typer.Option(
            None, "--autonomy", help="suggest | ask | budgeted | full (default: the pipeline's defaults.autonomy)."
        ),
        address: Optional[str] = typer.Option(
            None, "--address", help="Dask scheduler address (tcp://HOST:PORT); default: a local cluster on 127.0.0.1."
        ),
        explain_models: bool = typer.Option(
            False, "--explain-models",
            help="Print the models each llm node would call (and the planned rungs) and exit without running.",
        ),
    ) -> None:
        """Run a pipeline and print its outputs, cost and run id."""

        plan = compile(file, allow_imports=allow_import)
        spec = plan.spec
        budget = None
        if max_cost is not None or max_tokens is not None or max_wall is not None:
            base = spec.defaults.budget
            budget = BudgetSpec(
                max_cost_usd=max_cost if max_cost is not None else base.max_cost_usd,
                max_tokens=max_tokens if max_tokens is not None else base.max_tokens,
                max_wall_s=max_wall if max_wall is not None else base.max_wall_s,
            )
        # The library chooses the models (arun does it again, with the same options and environment);
        # the choice is asked for here only to say what it is.
        choice = choose_models(spec, ModelOptions.from_environment(model=model, ladder=ladder),
                               plan=plan_models and explain_models, budget=budget)
        if explain_models:
            _print_models(spec.name, choice.explain(), as_json)
            return
        if choice.hosted_ladder:
            typer.echo(f"an API key is set: what was meant for the local model runs on {' -> '.join(choice.hosted_ladder)}"
                       " (keep it local with CONTEXTFLOW_OFFLINE=1, or choose with --model/--ladder)", err=True)
        values = bind_inputs(spec, parse_inputs(inputs, spec.inputs))
        run_id = new_run_id()

        chosen = make_executor(executor, address)

        async def start(sinks: list[Any]) -> Any:
            try:
                if chosen is not None:
                    await chosen.start()  # an unreachable --address is a clear error before the run starts
                return await arun(
                    plan, values, project=project, sinks=sinks, trace=not no_trace, run_id=run_id, budget=budget,
                    model=model, ladder=ladder, cache=not no_cache, allow_imports=allow_import, checkpoint=checkpoint,  # type: ignore[arg-type]
                    executor=chosen, autonomy=autonomy, plan_models=plan_models,
                )
            finally:
                if chosen is not None:
                    await chosen.aclose()

        _execute(start, spec.node_ids, f"{spec.name} {run_id}", as_json, run_id, project=project)

    @app.command("resume")
    def resume_command(
        run_id: str = typer.Argument(..., help="The run id printed by 'contextflow run'."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        project: Optional[Path] = typer.Option(None, "--project", help="Project folder."),
        max_cost: Optional[float] = typer.Option(None, "--max-cost", help="New cap on the run's total cost in $."),
        no_trace: bool = typer.Option(False, "--no-trace", help="Do not record a trace."),
        executor: str = typer.Option("local", "--executor", help="local | dask"),
        address: Optional[str] = typer.Option(None, "--address", help="Dask scheduler address (tcp://HOST:PORT)."),
    ) -> None:
        """Finish an interrupted, failed or budget-stopped run; finished nodes are not run again."""

        state = StateDir.for_project(project)
        if not state.runs_db.exists():
            raise UserError(f"no run store at {state.runs_db}", hint="pass --project FOLDER of the run")
        with SQLiteRunStore(state.runs_db, readonly=True) as store:
            record = store.get_run(run_id)
        if record is None:
            raise UserError(f"no run '{run_id}' in {state.runs_db}", hint="list runs with 'contextflow runs'")
        node_ids = PipelineSpec.model_validate(record.spec).node_ids
        budget = BudgetSpec(max_cost_usd=max_cost) if max_cost is not None else None

        chosen = make_executor(executor, address)

        async def start(sinks: list[Any]) -> Any:
            try:
                if chosen is not None:
                    await chosen.start()
                return await aresume(run_id, project=project, sinks=sinks, trace=not no_trace, budget=budget,
                                     executor=chosen)
            finally:
                if chosen is not None:
                    await chosen.aclose()

        _execute(start, node_ids, f"{record.pipeline} {run_id} (resumed)", as_json, run_id)

    @app.command("runs")
    def runs_command(
        project: Optional[Path] = typer.Option(None, "--project", help="Project folder."),
        limit: int = typer.Option(20, "--limit", help="How many runs to list."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List recent runs with their status and cost."""

        state = StateDir.for_project(project)
        if not state.runs_db.exists():
            typer.echo("no runs yet")
            return
        with SQLiteRunStore(state.runs_db, readonly=True) as store:
            records = store.list_runs(limit)
        rows = [
            {"run_id": r.run_id, "pipeline": r.pipeline, "status": r.status, "cost_usd": r.cost_usd,
             "created_at": r.created_at}
            for r in records
        ]
        if as_json:
            typer.echo(json.dumps(rows))
            return
        for row in rows:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created_at"]))
            typer.echo(f"{row['run_id']}  {stamp}  {row['status']:<16} ${row['cost_usd']:.6f}  {row['pipeline']}")

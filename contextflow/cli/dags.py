"""``contextflow validate``, ``contextflow graph`` and ``contextflow schema``: pipelines from the shell.

``validate`` exits 0 for a valid pipeline and 2 for an invalid one, printing every problem as
``file:line:col: code: message`` with a hint; bad input never ends in a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from contextflow.dags.problems import Problem
from contextflow.dags.validate import check_file
from contextflow.dags.render import render_graph
from contextflow.dags.spec import PipelineSpec
from contextflow.core.errors import UserError

_ALLOW_HELP = "Allow python/tool import paths under this module prefix (repeatable)."


def _print_problems(problems: list[Problem], console: Console) -> None:
    for problem in problems:
        console.print(
            f"[bold]{escape(problem.location)}[/bold]: [red]{escape(problem.code)}[/red]: {escape(problem.message)}"
        )
        if problem.hint:
            console.print(f"  [cyan]hint[/cyan]: {escape(problem.hint)}")


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        files: List[Path] = typer.Argument(..., help="Pipeline YAML files."),
        allow_import: Optional[List[str]] = typer.Option(None, "--allow-import", help=_ALLOW_HELP),
        output_format: str = typer.Option("text", "--format", help="text or json."),
        no_models: bool = typer.Option(False, "--no-models", help="Skip model, context-window and budget checks."),
    ) -> None:
        """Check pipelines before they run: exit 0 when all are valid, 2 with every problem listed when not."""

        if output_format not in ("text", "json"):
            raise _bad_flag("--format", output_format, "text, json")
        console = Console(highlight=False, soft_wrap=True)
        results = []
        all_ok = True
        for file in files:
            report = check_file(file, allow_imports=allow_import or (), check_models=not no_models)
            all_ok = all_ok and report.ok
            if output_format == "json":
                results.append({"file": str(file), "valid": report.ok,
                                "problems": [p.to_dict() for p in report.problems]})
            elif report.ok:
                edges = report.graph.number_of_edges() if report.graph is not None else 0
                count = len(report.spec.nodes) if report.spec else 0
                console.print(f"[green]{escape(str(file))}: valid[/green] ({count} nodes, {edges} edges)")
            else:
                _print_problems(report.problems, console)
                n = len(report.problems)
                console.print(f"[red]{escape(str(file))}: {n} problem{'s' if n != 1 else ''}[/red]")
        if output_format == "json":
            typer.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        if not all_ok:
            raise typer.Exit(code=2)

    @app.command("graph")
    def graph(
        file: Path = typer.Argument(..., help="A pipeline YAML file."),
        output_format: str = typer.Option("text", "--format", help="mermaid, dot or text."),
        allow_import: Optional[List[str]] = typer.Option(None, "--allow-import", help=_ALLOW_HELP),
    ) -> None:
        """Draw a pipeline's dependency graph."""

        if output_format not in ("mermaid", "dot", "text"):
            raise _bad_flag("--format", output_format, "mermaid, dot, text")
        report = check_file(file, allow_imports=allow_import or (), check_models=False)
        if report.problems or report.spec is None or report.graph is None:
            _print_problems(report.problems, Console(stderr=True, highlight=False, soft_wrap=True))
            raise typer.Exit(code=2)
        typer.echo(render_graph(report.spec, report.graph, output_format))  # type: ignore[arg-type]

    @app.command("schema")
    def schema(
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead."),
    ) -> None:
        """Print the JSON Schema of the pipeline YAML format (for editor completion)."""

        document = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                    **PipelineSpec.model_json_schema(by_alias=True)}
        document["title"] = "contextflow pipeline"
        text = json.dumps(document, indent=2)
        if output is None:
            typer.echo(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
            typer.echo(f"wrote {output}")


def _bad_flag(flag: str, value: str, choices: str) -> Exception:
    return UserError(f"{flag} {value!r} is not supported", hint=f"use one of: {choices}")

"""``contextflow version``: what is installed and where state lives."""

from __future__ import annotations

import typer

import contextflow

from contextflow.core.state import StateDir


def register(app: typer.Typer) -> None:
    @app.command("version")
    def version() -> None:
        """Print the contextflow version and the state folder in use."""
        typer.echo(f"contextflow {contextflow.__version__}")
        typer.echo(f"state folder: {StateDir.for_project().root}")

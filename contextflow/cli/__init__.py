"""The ``contextflow`` command line: a thin layer over the library.

Each module in this package contributes its commands through ``register(app)``, so features add
commands without editing a central file. Bad input must end in a plain message and exit code 2,
never a traceback: commands raise :class:`contextflow.core.errors.UserError` and ``main`` reports it.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from contextflow.core.errors import UserError

app = typer.Typer(
    name="contextflow",
    help="Context engineering, typed LLM-call DAGs, a cost-aware scheduler and a trace viewer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Context engineering, typed LLM-call DAGs, a cost-aware scheduler and a trace viewer."""


def _register_all() -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{module.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    try:
        app(standalone_mode=True)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)

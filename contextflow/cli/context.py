"""``contextflow index REPO`` and ``contextflow context REPO``: the retrieval engine from the shell."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from contextflow.core.errors import UserError
from contextflow.core.state import StateDir
from contextflow.retrievers.dask_embed import DaskEncoder
from contextflow.context.builder import embeddings_available
from contextflow.retrievers.index import open_index
from contextflow.context import build_context


def _state(state_dir: Optional[Path], repo: Path):  # noqa: ANN202 - StateDir imported lazily
    return StateDir(state_dir.expanduser().resolve()) if state_dir else StateDir.for_project(repo)


def _check_repo(repo: Path) -> Path:
    if not repo.is_dir():
        raise UserError(f"{repo} is not a folder", hint="pass the path of a repository or a folder of text files")
    return repo.resolve()


def _print_report(report, console) -> None:  # noqa: ANN001
    def listing(title: str, paths: list[str]) -> None:
        if not paths:
            return
        shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        console.print(f"  {title} ({len(paths)}): {shown}")

    console.print(
        f"indexed {report.files} files, {report.chunks} chunks in {report.seconds:.1f}s"
        f" ({'git repository' if report.git else 'plain folder'})"
    )
    if not report.changed_anything:
        console.print("  no file changed since the last index")
    listing("added", report.added)
    listing("changed", report.changed)
    listing("removed", report.removed)
    console.print(
        f"  chunks: +{report.chunks_added} -{report.chunks_removed}; re-embedded {report.embedded}"
        f" (from cache {report.embeddings_from_cache}, vectors deleted {report.embeddings_deleted})"
    )
    for reason, paths in sorted(report.skipped.items()):
        console.print(f"  skipped ({reason}): {len(paths)}")


def _dask_encoder(index: object, address: str, model: Optional[str]):  # noqa: ANN202 - distributed is optional
    """Point the index's embedding store at a Dask cluster; returns the client to close."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--dask needs the [dask] extra", hint="pip install 'contextflow[dask]'") from None

    if address == "local":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    index.embedding_store(model, encoder=DaskEncoder(client, model))  # type: ignore[attr-defined]
    return client


def register(app: typer.Typer) -> None:
    @app.command("index")
    def index_command(
        repo: Path = typer.Argument(..., help="Repository (or plain folder) to index."),
        embeddings: bool = typer.Option(True, "--embeddings/--no-embeddings", help="Also embed chunks (slow on CPU)."),
        embedding_model: Optional[str] = typer.Option(None, "--embedding-model", help="sentence-transformers model name or path."),
        state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="State folder (default REPO/.contextflow)."),
        as_json: bool = typer.Option(False, "--json", help="Print what changed as one JSON object."),
        dask: Optional[str] = typer.Option(
            None, "--dask", help="Embed on a Dask cluster: tcp://HOST:PORT, or 'local' for one on 127.0.0.1."
        ),
    ) -> None:
        """Index REPO incrementally and show what changed since the last index."""
        from dataclasses import asdict

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


        root = _check_repo(repo)
        console = Console(stderr=as_json)
        index = open_index(root, _state(state_dir, root))
        client = _dask_encoder(index, dask, embedding_model) if dask and embeddings else None
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            report = index.update(embeddings=embeddings and embeddings_available(), model=embedding_model,
                                  progress=progress)
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
        if as_json:
            sys.stdout.write(json.dumps({k: v for k, v in asdict(report).items() if k != "skipped"}
                                        | {"skipped": {k: len(v) for k, v in report.skipped.items()}}) + "\n")
        else:
            _print_report(report, console)

    @app.command("context")
    def context_command(
        repo: Path = typer.Argument(..., help="Repository (or plain folder) to draw context from."),
        query: Optional[str] = typer.Option(None, "--query", "-q", help="The task, as text."),
        query_file: Optional[Path] = typer.Option(None, "--query-file", help="File holding the task (issue, question, diff)."),
        budget: int = typer.Option(8000, "--budget", help="Token budget of the window."),
        fmt: str = typer.Option("json", "--format", help="json (the contract), markdown or xml."),
        retrievers: Optional[str] = typer.Option(None, "--retrievers", help="Comma-separated: bm25,ast,git,embeddings."),
        model: Optional[str] = typer.Option(None, "--model", help="Model whose tokenizer counts tokens."),
        state_dir: Optional[Path] = typer.Option(None, "--state-dir", help="State folder (default REPO/.contextflow)."),
    ) -> None:
        """Build a token-budgeted context window of REPO for a query and print it."""

        root = _check_repo(repo)
        if fmt not in ("json", "markdown", "xml"):
            raise UserError(f"unknown format {fmt!r}", hint="use json, markdown or xml")
        if (query is None) == (query_file is None):
            raise UserError("give the task with exactly one of --query or --query-file")
        if query_file is not None:
            if not query_file.is_file():
                raise UserError(f"query file {query_file} does not exist")
            query = query_file.read_text(encoding="utf-8", errors="replace")
        window = build_context(
            root, query or "", budget_tokens=budget, retrievers=retrievers, model=model,
            fmt="markdown" if fmt == "json" else fmt,  # type: ignore[arg-type]
            state=_state(state_dir, root),
        )
        if fmt == "json":
            sys.stdout.write(json.dumps(window.to_contract_json()) + "\n")
        else:
            sys.stdout.write(window.render())

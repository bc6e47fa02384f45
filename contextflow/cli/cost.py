"""``contextflow router train|evaluate`` and ``contextflow replay RUN_ID --policy FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from contextflow.core.errors import UserError
from contextflow.core.state import StateDir
from contextflow.cost.outcomes_csv import read_outcomes
from contextflow.cost.router import calibrate
from contextflow.cost.router import fit
from contextflow.analysis.outcomes import outcomes_from_runs
from contextflow.cost.evaluation import evaluate_router
from contextflow.cost.router import Router
from contextflow.analysis.whatif import load_policy
from contextflow.analysis.whatif import replay_export
from contextflow.analysis.whatif import replay_run

DEFAULT_WEAK = "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"
DEFAULT_STRONG = "gpt-4-1106-preview"


def _router_path(name_or_path: str, project: Optional[Path]) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".json" or path.parent != Path("."):
        return path
    return StateDir.for_project(project).routers_dir / f"{name_or_path}.json"


def register(app: typer.Typer) -> None:
    router_app = typer.Typer(help="Train and evaluate learned routers (cheap vs strong model).", no_args_is_help=True)
    app.add_typer(router_app, name="router")

    @router_app.command("train")
    def train(
        csv_path: Optional[Path] = typer.Argument(
            None, help="Outcomes CSV: prompt, weak_correct[, strong_correct, weak_response, subject]."),
        from_runs: bool = typer.Option(False, "--from-runs",
                                       help="Train on the project's recorded cascade verdicts (run + trace stores)."),
        node: Optional[str] = typer.Option(None, help="With --from-runs: only this node's outcomes."),
        name: str = typer.Option("router", "--name", "-o", "--output",
                                 help="Router name (saved under .contextflow/routers/) or a .json path."),
        mode: Optional[str] = typer.Option(None, help="prompt (route before calling) or cascade (reads the cheap "
                                           "answer); default: cascade when the CSV has weak_response."),
        weak: str = typer.Option(DEFAULT_WEAK, help="The cheaper model."),
        strong: str = typer.Option(DEFAULT_STRONG, help="The stronger model."),
        strong_share: Optional[float] = typer.Option(None, "--strong-share", "--target-strong-share", min=0, max=1,
                                                     help="Calibrate: send this share of calls strong."),
        target_quality: Optional[float] = typer.Option(None, min=0, max=1, help="Calibrate: reach this fraction of strong accuracy."),
        pca_dims: int = typer.Option(32, min=0, help="Embedding dimensions kept (0: no embedding)."),
        project: Optional[Path] = typer.Option(None, help="Project folder (state lives in its .contextflow/)."),
    ) -> None:
        """Train a router on recorded outcomes and calibrate its threshold."""

        if from_runs == (csv_path is not None):
            raise UserError("give an outcomes CSV or --from-runs (one of the two)",
                            hint="contextflow router train outcomes.csv  |  contextflow router train --from-runs")
        if from_runs:
            state = StateDir.for_project(project)
            rows, source = outcomes_from_runs(state.runs_db, state.traces_db, node=node), f"the runs in {state.runs_db}"
        else:
            rows, source = read_outcomes(csv_path), str(csv_path)
        if mode not in (None, "prompt", "cascade"):
            raise UserError(f"unknown router mode '{mode}'", hint="use --mode prompt or --mode cascade")
        if mode == "cascade" and rows.weak_responses is None:
            raise UserError(f"--mode cascade reads the cheap model's answers, but {source} has no weak_response column",
                            hint="add the column or use --mode prompt")
        answers = None if mode == "prompt" else rows.weak_responses
        if target_quality is not None and rows.strong_correct is None:
            raise UserError("--target-quality needs a strong_correct column", hint="or use --strong-share")
        try:
            router = fit(rows.prompts, rows.weak_correct, weak=weak, strong=strong, answers=answers,
                         categories=rows.categories, pca_dims=pca_dims, name=name)
        except ValueError as exc:
            raise UserError(f"cannot train on {source}: {exc}") from None
        p = router.predict_many(rows.prompts, answers, rows.categories)
        if strong_share is not None or target_quality is not None:
            router.threshold = calibrate(p, strong_share=strong_share, weak_correct=rows.weak_correct,
                                         strong_correct=rows.strong_correct, target_quality=target_quality)
        share = float((p < router.threshold).mean())
        router.meta.update({"source": source, "train_strong_share": share})
        saved = router.save(_router_path(name, project))
        typer.echo(f"trained a {router.mode} router on {len(rows.prompts)} rows; threshold {router.threshold:.4f} "
                   f"sends {share:.1%} of training prompts to {strong}")
        typer.echo(f"saved: {saved}")

    @router_app.command("evaluate")
    def evaluate(
        csv_path: Path = typer.Argument(..., help="Held-out outcomes CSV with strong_correct."),
        name: str = typer.Option("router", "--name", "--router", help="Router name or .json path."),
        plot: Optional[Path] = typer.Option(None, help="Save the cost-vs-quality curve as this PNG."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        project: Optional[Path] = typer.Option(None),
    ) -> None:
        """Accuracy, $ cost, strong share, APGR and CPT(50/80/95) of a router on held-out outcomes."""


        router = Router.load(_router_path(name, project))
        rows = read_outcomes(csv_path)
        if rows.strong_correct is None:
            raise UserError(f"{csv_path} lacks a strong_correct column", hint="evaluation compares against the strong model")
        if router.mode == "cascade" and rows.weak_responses is None:
            raise UserError(f"the router '{name}' reads the cheap answer, but {csv_path} has no weak_response column")
        report = evaluate_router(router, rows, plot_path=plot)
        if as_json:
            typer.echo(json.dumps(report))
            return
        for key, value in report.items():
            typer.echo(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")

    @app.command("replay")
    def replay(
        run_id: str = typer.Argument(..., help="A run id from the run store, or a JSON export file with --export."),
        policy: Path = typer.Option(..., "--policy", help="YAML/JSON: models:, prices:, quality:, nodes:."),
        export: bool = typer.Option(False, "--export", help="RUN_ID is a JSON export, not a stored run."),
        as_json: bool = typer.Option(False, "--json"),
        project: Optional[Path] = typer.Option(None),
    ) -> None:
        """Re-price a recorded run under another policy, offline; per-node cost and quality differences."""

        rules = load_policy(policy)
        if export:
            report = replay_export(Path(run_id), rules)
        else:
            db = StateDir.for_project(project).runs_db
            if not Path(db).exists():
                raise UserError(f"no run store at {db}", hint="run a pipeline first, or pass --project")
            report = replay_run(db, run_id, rules)
        if as_json:
            typer.echo(json.dumps(report.as_dict()))
            return
        _print_report(report)


def _print_report(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"what-if replay of run {report.run_id}")  # type: ignore[attr-defined]
    for column in ("node", "before", "$ before", "q before", "after", "$ after", "Δ$", "q after", "Δq", "source"):
        table.add_column(column, justify="right" if column.startswith(("$", "q", "Δ")) else "left")
    for n in report.nodes:  # type: ignore[attr-defined]
        table.add_row(n.node_id, " → ".join(n.before_models), f"{n.before_cost_usd:.6f}", f"{n.before_quality:.2f}",
                      " → ".join(n.after_models), f"{n.after_cost_usd:.6f}", f"{n.cost_delta:+.6f}",
                      f"{n.after_quality:.2f}", f"{n.after_quality - n.before_quality:+.2f}", n.source)
    console = Console()
    console.print(table)
    before, after = report.before_cost_usd, report.after_cost_usd  # type: ignore[attr-defined]
    ratio = f" ({after / before:.1%} of before)" if before else ""
    console.print(f"total: ${before:.6f} → ${after:.6f}{ratio}")

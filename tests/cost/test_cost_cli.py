"""``contextflow router train`` flags: --mode, -o, --target-strong-share, and plain errors for bad input."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from contextflow.cost.router import Router
from contextflow.core.errors import UserError


def outcomes(path: Path, *, with_answers: bool) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "weak_correct", "strong_correct"] + (["weak_response"] if with_answers else []))
        for i in range(40):
            hard = i % 3 == 0
            prompt = f"Question {i}: " + ("explain every step of the long derivation in detail " * 4 if hard else "add 1")
            writer.writerow([prompt, str(not hard), "True"] + (["#### 1"] if with_answers else []))
    return path


def test_train_with_mode_output_and_strong_share(tmp_path: Path, state_home: Path) -> None:
    from contextflow.cli import app

    data = outcomes(tmp_path / "o.csv", with_answers=True)
    saved = tmp_path / "out" / "r.json"
    done = CliRunner().invoke(app, ["router", "train", str(data), "--mode", "prompt", "-o", str(saved),
                                    "--pca-dims", "0", "--target-strong-share", "0.25"])
    assert done.exit_code == 0, done.output
    router = Router.load(saved)
    assert router.mode == "prompt"  # the answers column was there, --mode prompt ignored it
    share = float(re.search(r"sends ([0-9.]+)%", done.output).group(1))
    assert 20 <= share <= 30  # calibrated: about a quarter of the training prompts go strong
    png = tmp_path / "curve.png"
    evaluated = CliRunner().invoke(app, ["router", "evaluate", str(data), "--router", str(saved), "--json",
                                         "--plot", str(png)])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output.strip().splitlines()[-1])
    assert {"accuracy", "strong_share", "apgr"} <= set(report) and png.stat().st_size > 1000


def test_bad_mode_and_missing_answers_are_plain_errors(tmp_path: Path, state_home: Path) -> None:
    from contextflow.cli import app

    data = outcomes(tmp_path / "o.csv", with_answers=False)
    done = CliRunner().invoke(app, ["router", "train", str(data), "--mode", "cascade", "--pca-dims", "0"])
    assert isinstance(done.exception, UserError) and "no weak_response column" in str(done.exception)
    cli = [sys.executable, "-m", "contextflow", "router", "train", str(data), "--mode", "sideways"]
    bad = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown router mode 'sideways'" in bad.stderr and "Traceback" not in bad.stderr


def test_train_a_router_from_recorded_cascade_verdicts(tmp_path: Path, state_home: Path) -> None:
    from contextflow.cli import app
    from contextflow.analysis.outcomes import outcomes_from_runs
    from contextflow.providers import simulated
    from contextflow.api import run
    from contextflow.core.state import StateDir

    simulated.configure("fr-weak", reply="ANSWER: 1", script={"derivation": "not sure"})
    simulated.configure("fr-strong", reply="ANSWER: 2")
    prompts = [f"Question {i}: " + ("explain the long derivation in detail, step by step " * 3 if i % 3 == 0 else "add 1")
               for i in range(12)]
    nodes = [{"id": f"q{i}", "kind": "llm", "prompt": p, "strategy": "cascade", "models": ["sim/fr-weak", "sim/fr-strong"],
              "verify": [{"kind": "regex", "pattern": "ANSWER: \\d"}]} for i, p in enumerate(prompts)]
    assert run({"name": "fr", "nodes": nodes}, cache=False).status == "succeeded"  # traced

    state = StateDir.for_project()
    rows = outcomes_from_runs(state.runs_db, state.traces_db)
    by_prompt = dict(zip(rows.prompts, rows.weak_correct))
    assert len(rows.prompts) == 12 and all(by_prompt[p] == (i % 3 != 0) for i, p in enumerate(prompts))
    assert rows.strong_correct is None  # the easy ones never reached the strong rung
    assert set(rows.weak_responses) == {"ANSWER: 1", "not sure"}

    saved = tmp_path / "from-runs.json"
    done = CliRunner().invoke(app, ["router", "train", "--from-runs", "--mode", "prompt", "-o", str(saved),
                                    "--pca-dims", "0"])
    assert done.exit_code == 0, done.output
    router = Router.load(saved)
    assert router.predict(prompts[0]) < router.predict(prompts[1])  # the long derivation needs the strong model
    neither = CliRunner().invoke(app, ["router", "train"])
    assert isinstance(neither.exception, UserError) and "one of the two" in str(neither.exception)


def test_run_plan_models_flag_keeps_a_tight_budget(state_home, tmp_path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from contextflow.cli import app
    from contextflow.providers import simulated

    simulated.configure("cli-plan-cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("cli-plan-strong", input_cost_per_token=1e-4, output_cost_per_token=1e-4)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "name: cli-plan\ndefaults: {budget: {max_cost_usd: 0.004}}\nnodes:\n"
        "  - {id: n0, kind: llm, prompt: Summarise the change., strategy: cascade, max_output_tokens: 50,\n"
        "     models: [sim/cli-plan-cheap, sim/cli-plan-strong], verify: [{kind: regex, pattern: '^NEVER$'}]}\n")
    runner = CliRunner()
    plain = runner.invoke(app, ["run", str(pipeline), "--json", "--no-trace", "--no-cache"])
    assert _json.loads(plain.output.strip().splitlines()[-1])["status"] != "succeeded"
    planned = runner.invoke(app, ["run", str(pipeline), "--json", "--no-trace", "--no-cache", "--plan-models"])
    summary = _json.loads(planned.output.strip().splitlines()[-1])
    assert summary["status"] == "succeeded" and summary["cost_usd"] <= 0.004

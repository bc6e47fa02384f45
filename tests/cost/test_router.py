"""Router training, prediction, calibration, persistence and the router CLI on a small CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from contextflow.cost.router import Router, calibrate, fit

WEAK, STRONG = "gpt-4o-mini", "gpt-4o"


def synthetic_rows(n: int = 80) -> list[dict[str, str]]:
    """A cheap model that is right exactly when its calculator note is right."""
    rows = []
    for i in range(n):
        a, b = i % 9 + 2, i % 7 + 3
        ok = i % 3 != 0
        shown = a * b if ok else a * b + 1
        rows.append({
            "prompt": f"Tom has {a} bags with {b} apples each. How many apples?",
            "weak_response": f"{a}*{b}=<<{a}*{b}={shown}>>{shown}\n#### {shown}",
            "strong_response": f"#### {a * b}",
            "weak_correct": str(ok), "strong_correct": "True",
        })
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_cascade_router_learns_that_wrong_arithmetic_means_escalate(tmp_path: Path) -> None:
    rows = synthetic_rows()
    train, test = rows[:60], rows[60:]
    router = fit([r["prompt"] for r in train], [r["weak_correct"] == "True" for r in train], weak=WEAK, strong=STRONG,
                 answers=[r["weak_response"] for r in train], pca_dims=0)
    p = router.predict_many([r["prompt"] for r in test], [r["weak_response"] for r in test])
    truth = np.array([r["weak_correct"] == "True" for r in test])
    assert p[truth].min() > p[~truth].max()  # held-out rows separate perfectly
    loaded = Router.load(router.save(tmp_path / "r.json"))
    assert loaded.predict(test[0]["prompt"], test[0]["weak_response"]) == pytest.approx(float(p[0]))
    model, decision = loaded.choose(test[0]["prompt"], [WEAK, STRONG], answer=test[0]["weak_response"])
    assert model == (WEAK if truth[0] else STRONG) and decision["candidates"] == [WEAK, STRONG]


def test_prompt_router_with_the_sentence_embedding() -> None:
    prompts = [f"Translate the word number {i} into French" for i in range(10)] + \
              [f"Prove theorem {i} about prime gaps rigorously" for i in range(10)]
    outcomes = [True] * 10 + [False] * 10
    router = fit(prompts, outcomes, weak=WEAK, strong=STRONG, pca_dims=4)
    assert len(router.pca_components) == 4
    assert router.predict("Translate the word cat into French") > router.predict("Prove a theorem about prime gaps")


def test_calibration_to_a_strong_share_and_to_a_target_quality() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    threshold = calibrate(p, strong_share=0.3)
    assert (p < threshold).sum() == 3
    weak = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    strong = np.ones(10, dtype=bool)
    threshold = calibrate(p, weak_correct=weak, strong_correct=strong, target_quality=1.0)
    assert (p < threshold).sum() == 2


def test_training_needs_both_outcomes() -> None:
    with pytest.raises(ValueError, match="both successes and failures"):
        fit(["a", "b"], [True, True], weak=WEAK, strong=STRONG, pca_dims=0)


def test_router_cli_train_and_evaluate(tmp_path: Path, state_home: Path) -> None:
    from contextflow.cli import app

    rows = synthetic_rows(90)
    train, test = write_csv(tmp_path / "train.csv", rows[:60]), write_csv(tmp_path / "test.csv", rows[60:])
    runner = CliRunner()
    trained = runner.invoke(app, ["router", "train", str(train), "--name", "apples", "--pca-dims", "0",
                                  "--weak", WEAK, "--strong", STRONG, "--target-quality", "0.95"])
    assert trained.exit_code == 0, trained.output
    assert (state_home / "routers" / "apples.json").is_file()
    png = tmp_path / "curve.png"
    evaluated = runner.invoke(app, ["router", "evaluate", str(test), "--name", "apples", "--json", "--plot", str(png)])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output.strip().splitlines()[-1])
    assert report["accuracy"] == pytest.approx(1.0)  # wrong arithmetic goes strong, the strong model is right
    assert report["strong_share"] == pytest.approx(1 / 3, abs=0.05)
    assert 0 < report["cost_share"] < 0.6
    assert report["apgr"] == pytest.approx(1 - 1 / 6, abs=0.02)  # perfect ranking: PGR climbs over the first third
    assert png.stat().st_size > 1000


def test_router_cli_reports_bad_input_without_a_traceback(tmp_path: Path, state_home: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.csv"
    bad.write_text("question,label\nhi,True\n")
    done = subprocess.run([sys.executable, "-m", "contextflow", "router", "train", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "lacks the column(s) prompt, weak_correct" in done.stderr
    assert "Traceback" not in done.stderr


def test_gain_per_dollar_beats_random_where_gain_alone_does_not() -> None:
    from contextflow.cost.evaluation import Outcomes, curve, gain_per_dollar, metrics

    # Long prompts are slightly more likely to need the strong model but cost ten times more to send.
    n = 200
    long = np.arange(n) % 2 == 0
    half = np.arange(n) // 2
    weak_ok = np.where(long, half % 20 >= 3, half % 25 >= 3)  # 15% vs 12% wrong
    strong_cost = np.where(long, 10.0, 1.0)
    outcomes = Outcomes(weak_ok, np.ones(n, dtype=bool), np.zeros(n), strong_cost, cascade=False)
    p_weak = np.where(long, 0.85, 0.88)  # what a calibrated head would say
    by_gain = metrics(outcomes, curve(outcomes, p_weak))
    per_dollar = metrics(outcomes, curve(outcomes, gain_per_dollar(p_weak, None, strong_cost)))
    assert per_dollar["cost_share_at_95"] < by_gain["cost_share_at_95"]
    assert per_dollar["beats_random_everywhere"] and not by_gain["beats_random_everywhere"]

"""``contextflow router train`` flags: --mode, -o, --target-strong-share, and plain errors for bad input."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from contextflow.cost.router import Router
from contextflow.errors import UserError


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


def test_bad_mode_and_missing_answers_are_plain_errors(tmp_path: Path, state_home: Path) -> None:
    from contextflow.cli import app

    data = outcomes(tmp_path / "o.csv", with_answers=False)
    done = CliRunner().invoke(app, ["router", "train", str(data), "--mode", "cascade", "--pca-dims", "0"])
    assert isinstance(done.exception, UserError) and "no weak_response column" in str(done.exception)
    cli = [sys.executable, "-m", "contextflow", "router", "train", str(data), "--mode", "sideways"]
    bad = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown router mode 'sideways'" in bad.stderr and "Traceback" not in bad.stderr

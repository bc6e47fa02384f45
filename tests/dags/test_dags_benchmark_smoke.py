"""The scale benchmark runs end to end on tiny sizes and ends with its JSON line (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "validate_scale.py"


def test_benchmark_prints_growth_exponent_as_last_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("validate_scale", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--sizes", "40", "80", "--repeat", "1", "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    data = json.loads(last)
    assert data["sizes"] == [40, 80]
    assert isinstance(data["growth_exponent"], float) and len(data["load_validate_s"]) == 2
    assert all(row["edges"] > 0 for row in data["rows"])

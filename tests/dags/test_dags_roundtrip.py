"""Valid pipelines load clean and round-trip: YAML -> model -> YAML -> model gives equal models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contextflow.dags.builder import Pipeline
from contextflow.dags.loader import dump_pipeline, load_pipeline, load_pipeline_text
from contextflow.dags.compiler import compile

ALLOW = ("cf_test_functions",)  # importable through tests/dags/conftest.py

VALID = sorted((Path(__file__).parent / "valid").glob("*.yaml"))


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_file_round_trips(path: Path) -> None:
    spec = load_pipeline(path, allow_imports=ALLOW)
    text = dump_pipeline(spec)
    again = load_pipeline_text(text, allow_imports=ALLOW)
    assert again == spec
    assert dump_pipeline(again) == text
    # Nothing the author wrote is lost: every key of the original survives the round trip.
    original = yaml.safe_load(path.read_text())
    dumped = yaml.safe_load(text)
    assert [n["id"] for n in dumped["nodes"]] == [n["id"] for n in original["nodes"]]
    assert dumped["outputs"] == original.get("outputs", {})


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_pipeline_from_yaml_to_yaml(path: Path) -> None:
    pipeline = Pipeline.from_yaml(path, allow_imports=ALLOW)
    assert Pipeline.from_yaml(pipeline.to_yaml(), allow_imports=ALLOW) == pipeline


def test_valid_example_plans_in_dependency_order() -> None:
    spec = load_pipeline(Path(__file__).parent / "valid" / "code_review.yaml", allow_imports=ALLOW)
    plan = compile(spec, allow_imports=ALLOW)
    order = plan.order
    assert order.index("context") < order.index("review") < order.index("fixes")
    assert set(plan.deps["report"]) == {"review"}

"""The pipelines guide stays true: its Python tour runs and its YAML example checks clean."""

from __future__ import annotations

import re
from pathlib import Path

from contextflow.dags.validate import validate_text

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", GUIDE.read_text(), re.S)


def test_python_tour_runs() -> None:
    code = "\n".join(line for line in _blocks("python")[0].splitlines() if "review.yaml" not in line)
    namespace: dict[str, object] = {}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    pipeline = namespace["p"]
    assert pipeline.validate() == []  # type: ignore[attr-defined]
    assert type(pipeline).from_yaml(namespace["text"]) == pipeline  # type: ignore[attr-defined]


def test_yaml_example_is_valid_but_for_its_placeholder_module() -> None:
    report = validate_text(_blocks("yaml")[0], file="guide.yaml")
    assert [(p.code, p.message.split("'")[1]) for p in report.problems] == [
        ("import-not-allowed", "mypkg.steps:count_items")]

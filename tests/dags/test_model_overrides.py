"""Choosing models without editing a pipeline: --model/--ladder, $CONTEXTFLOW_MODEL and API keys."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from contextflow.cli import app
from contextflow.dags.loader import load_pipeline
from contextflow.dags.overrides import apply_key_ladder, apply_model_overrides, ladder_for_keys

DAGS = Path(__file__).resolve().parents[2] / "dags"

MIXED = {
    "name": "mixed",
    "defaults": {"model": "local/smollm2-135m"},
    "nodes": [
        {"id": "local_ladder", "kind": "llm", "prompt": "a", "strategy": "cascade",
         "models": ["local/smollm2-135m", "local/smollm2-135m@medium"], "verify": [{"kind": "schema"}]},
        {"id": "hosted_ladder", "kind": "llm", "prompt": "b", "strategy": "cascade",
         "models": ["gpt-4o-mini", "gpt-4o"], "verify": [{"kind": "schema"}]},
        {"id": "pinned", "kind": "llm", "prompt": "c", "model": "local/smollm2-135m"},
        {"id": "plain", "kind": "llm", "prompt": "d"},
    ],
}


def _mixed():
    from contextflow.dags.spec import PipelineSpec

    return PipelineSpec.model_validate(MIXED)


def test_a_key_moves_only_what_was_meant_for_the_local_model() -> None:
    spec, ladder = apply_key_ladder(_mixed(), {"OPENAI_API_KEY": "sk-test"})
    assert ladder == ["gpt-4o-mini", "gpt-4o"]
    nodes = {n.id: n for n in spec.nodes}
    assert nodes["local_ladder"].models == ["gpt-4o-mini", "gpt-4o"]
    assert nodes["hosted_ladder"].models == ["gpt-4o-mini", "gpt-4o"]  # named by the author: untouched
    assert nodes["pinned"].model == "local/smollm2-135m"  # a fixed model is the author's choice
    assert spec.defaults.model == "gpt-4o-mini"  # what `plain` runs on


def test_no_key_or_offline_keeps_the_pipeline_as_written() -> None:
    spec = _mixed()
    assert apply_key_ladder(spec, {}) == (spec, None)
    assert apply_key_ladder(spec, {"OPENAI_API_KEY": "sk-test", "CONTEXTFLOW_OFFLINE": "1"}) == (spec, None)
    assert ladder_for_keys({"ANTHROPIC_API_KEY": "x"}) == ["claude-haiku-4-5", "claude-sonnet-4-5"]


def test_the_shipped_pipelines_move_to_the_key_ladder_and_stay_valid() -> None:
    from contextflow.dags.loader import check_pipeline

    for name in ("code_review", "repo_qa", "release_notes"):
        spec, ladder = apply_key_ladder(load_pipeline(DAGS / f"{name}.yaml"), {"OPENAI_API_KEY": "sk-test"})
        assert ladder is not None, name
        models = {m for n in spec.nodes for m in (getattr(n, "models", None) or [])}
        assert not any(m.startswith("local/") for m in models), (name, models)
        check_pipeline(spec)  # raises PipelineError on any problem (model names, context fit, budget)
    review = apply_model_overrides(load_pipeline(DAGS / "code_review.yaml"), ladder=["a/cheap", "a/strong"])
    assert {n.id: n.models for n in review.nodes if n.kind == "llm"}["security"] == ["a/cheap", "a/strong"]


def test_contextflow_model_in_the_environment_acts_as_the_flag(state_home, tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: env-model\ndefaults: {model: local/smollm2-135m}\n"
                        "nodes:\n  - {id: ask, kind: llm, prompt: hello there}\noutputs: {answer: '${ask}'}\n")
    result = CliRunner().invoke(app, ["run", str(pipeline), "--json", "--no-trace"],
                                env={"CONTEXTFLOW_MODEL": "sim/echo"})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["status"] == "succeeded" and summary["outputs"] == {"answer": "hello there"}

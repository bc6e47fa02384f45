"""Choosing models without editing a pipeline: --model/--ladder, $CONTEXTFLOW_MODEL and API keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contextflow.cli import app
from contextflow.cost.model_choice import ModelOptions, choose_models, ladder_for_keys, models_to_call
from contextflow.core.errors import UserError
from contextflow.dags.loader import check_pipeline, load_pipeline
from contextflow.dags.spec import LLMNode, PipelineSpec

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
        {"id": "each", "kind": "map", "over": "${inputs.items}",
         "node": {"id": "one", "kind": "llm", "prompt": "${item}"}},
    ],
}


def _mixed() -> PipelineSpec:
    return PipelineSpec.model_validate(MIXED)


def _choose(spec: PipelineSpec, environ: dict[str, str], **given: object):
    return choose_models(spec, ModelOptions.from_environment(environ=environ, **given))  # type: ignore[arg-type]


def _models(choice) -> dict[str, list[str]]:
    return {node_id: list(m.models) for node_id, m in choice.nodes.items()}


def test_a_key_moves_only_what_was_meant_for_the_local_model() -> None:
    choice = _choose(_mixed(), {"OPENAI_API_KEY": "sk-test"})
    assert choice.hosted_ladder == ("gpt-4o-mini", "gpt-4o")
    assert _models(choice) == {
        "local_ladder": ["gpt-4o-mini", "gpt-4o"],
        "hosted_ladder": ["gpt-4o-mini", "gpt-4o"],  # named by the author: untouched
        "pinned": ["local/smollm2-135m"],  # a fixed model is the author's choice
        "plain": ["gpt-4o-mini"],  # the local default moved to the key's cheap model
        "each": ["gpt-4o-mini"],  # inside a map too
    }
    assert choice.spec.defaults.model == "gpt-4o-mini"


def test_no_key_or_offline_keeps_the_pipeline_local() -> None:
    expected = {"local_ladder": ["local/smollm2-135m", "local/smollm2-135m@medium"],
                "hosted_ladder": ["gpt-4o-mini", "gpt-4o"], "pinned": ["local/smollm2-135m"],
                "plain": ["local/smollm2-135m"], "each": ["local/smollm2-135m"]}
    for environ in ({}, {"OPENAI_API_KEY": "sk-test", "CONTEXTFLOW_OFFLINE": "1"}):
        choice = _choose(_mixed(), environ)
        assert _models(choice) == expected, environ
        assert choice.hosted_ladder is None
    assert ladder_for_keys({"ANTHROPIC_API_KEY": "x"}) == ("claude-haiku-4-5", "claude-sonnet-4-5")
    assert ladder_for_keys({"GEMINI_API_KEY": "x", "CONTEXTFLOW_OFFLINE": "yes"}) is None


def test_a_node_without_any_model_follows_the_key_unless_offline() -> None:
    spec = PipelineSpec.model_validate({"name": "bare", "nodes": [{"id": "ask", "kind": "llm", "prompt": "hi"}]})
    assert _models(_choose(spec, {}))["ask"] == ["local/smollm2-135m"]
    keyed = _choose(spec, {"GEMINI_API_KEY": "g"})
    assert _models(keyed)["ask"] == ["gemini/gemini-2.5-flash"]
    assert keyed.hosted_ladder == ("gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro")  # the CLI says so
    assert _models(_choose(spec, {"GEMINI_API_KEY": "g", "CONTEXTFLOW_OFFLINE": "1"}))["ask"] == ["local/smollm2-135m"]


def test_model_and_ladder_and_their_environment_forms() -> None:
    spec = _mixed()
    by_model = _models(_choose(spec, {"OPENAI_API_KEY": "sk"}, model="sim/m"))
    assert by_model == {"local_ladder": ["sim/m"], "hosted_ladder": ["sim/m"], "pinned": ["local/smollm2-135m"],
                        "plain": ["sim/m"], "each": ["sim/m"]}
    assert _models(_choose(spec, {"CONTEXTFLOW_MODEL": "sim/m"})) == by_model
    by_ladder = _models(_choose(spec, {}, ladder="sim/a, sim/b"))
    assert by_ladder["local_ladder"] == by_ladder["hosted_ladder"] == ["sim/a", "sim/b"]
    assert by_ladder["plain"] == ["local/smollm2-135m"]  # the ladder is for cascades; the default stays
    assert _models(_choose(spec, {"CONTEXTFLOW_LADDER": "sim/a,sim/b"})) == by_ladder
    both = _models(_choose(spec, {}, model="sim/m", ladder=["sim/a", "sim/b"]))
    assert both["local_ladder"] == ["sim/a", "sim/b"] and both["plain"] == ["sim/m"]
    # An option given in code beats its environment form.
    assert _models(_choose(spec, {"CONTEXTFLOW_MODEL": "sim/env"}, model="sim/m"))["plain"] == ["sim/m"]


def test_choosing_again_changes_nothing() -> None:
    for environ in ({}, {"OPENAI_API_KEY": "sk"}):
        once = _choose(_mixed(), environ)
        assert _choose(once.spec, environ).spec == once.spec


def test_a_fixed_node_calls_its_model_then_its_fallbacks() -> None:
    node = LLMNode(id="a", prompt="x", model="sim/one", fallbacks=["sim/one", "sim/two"])
    assert models_to_call(node) == ["sim/one", "sim/two"]
    with pytest.raises(UserError, match="no model chosen"):
        models_to_call(LLMNode(id="b", prompt="x"))


def test_the_shipped_pipelines_move_to_the_key_ladder_and_stay_valid() -> None:
    for name in ("code_review", "repo_qa", "release_notes"):
        choice = _choose(load_pipeline(DAGS / f"{name}.yaml"), {"OPENAI_API_KEY": "sk-test"})
        assert choice.hosted_ladder is not None, name
        models = {m for chosen in choice.nodes.values() for m in chosen.models}
        assert not any(m.startswith("local/") for m in models), (name, models)
        check_pipeline(choice.spec)  # raises PipelineError on any problem (model names, context fit, budget)
    review = _choose(load_pipeline(DAGS / "code_review.yaml"), {}, ladder=["a/cheap", "a/strong"])
    assert review.nodes["security"].models == ("a/cheap", "a/strong")


def test_the_planner_caps_the_chosen_ladder_and_gives_the_step_down_ladder() -> None:
    spec = PipelineSpec.model_validate({
        "name": "planned",
        "defaults": {"budget": {"max_cost_usd": 0.001}},
        "nodes": [{"id": "solve", "kind": "llm", "prompt": "2+2?", "strategy": "cascade", "max_output_tokens": 200,
                   "models": ["local/smollm2-135m", "local/smollm2-135m@medium"], "verify": [{"kind": "schema"}]}],
    })
    choice = choose_models(spec, ModelOptions.from_environment(environ={"OPENAI_API_KEY": "sk"}), plan=True)
    # The key's ladder first, then the planner: gpt-4o's worst case does not fit $0.001.
    assert choice.planned == {"solve": "gpt-4o-mini"}
    assert choice.nodes["solve"].models == ("gpt-4o-mini",)
    assert choice.step_down_ladder("solve") == ("gpt-4o-mini",)
    assert choose_models(spec, ModelOptions()).step_down_ladder("solve") is None  # no plan, no stepping


def test_contextflow_model_in_the_environment_acts_as_the_flag(state_home, tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: env-model\ndefaults: {model: local/smollm2-135m}\n"
                        "nodes:\n  - {id: ask, kind: llm, prompt: hello there}\noutputs: {answer: '${ask}'}\n")
    result = CliRunner().invoke(app, ["run", str(pipeline), "--json", "--no-trace"],
                                env={"CONTEXTFLOW_MODEL": "sim/echo"})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["status"] == "succeeded" and summary["outputs"] == {"answer": "hello there"}

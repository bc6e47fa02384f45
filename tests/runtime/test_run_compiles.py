"""``run()`` takes whatever ``compile()`` takes, checks it before any call, and resumes on a recompiled plan."""

from __future__ import annotations

from pathlib import Path

import pytest

import runtime_helpers as rh
from contextflow.api import resume, run
from contextflow.dags import Pipeline, compile
from contextflow.dags.problems import PipelineError
from contextflow.providers import simulated
from contextflow.runtime import api as engine
from contextflow.runtime.memory_store import MemoryRunStore


def test_a_builder_pipeline_runs(state_home, sim_model) -> None:
    model = sim_model()
    p = (Pipeline("built").input("question").defaults(model=model)
         .llm("ask", "${inputs.question}")
         .output("answer", "${ask.output}"))
    result = run(p, {"question": "what is two plus two"}, trace=False)
    assert result.status == "succeeded", result.error
    assert result.outputs == {"answer": "what is two plus two"}  # sim models echo by default
    assert simulated.stats(model).calls == 1


def test_a_compiled_plan_and_the_engine_entry_point_run(state_home, sim_model) -> None:
    model = sim_model()
    plan = compile({"name": "planned", "defaults": {"model": model},
                    "nodes": [{"id": "ask", "kind": "llm", "prompt": "hello"}], "outputs": {"out": "${ask.output}"}})
    assert run(plan, trace=False).outputs == {"out": "hello"}
    assert engine.run(plan, store=MemoryRunStore()).outputs == {"out": "hello"}  # the engine's own synchronous form


@pytest.mark.parametrize("form", ["dict", "spec"])
def test_a_bad_reference_fails_before_any_model_call(state_home, sim_model, form) -> None:
    model = sim_model()
    data = {"name": "bad", "inputs": {"question": {"type": "string"}}, "defaults": {"model": model},
            "nodes": [{"id": "first", "kind": "llm", "prompt": "${inputs.question}"},
                      {"id": "second", "kind": "llm", "prompt": "Answer ${inputs.nope} using ${first.output}"}]}
    before = simulated.provider_stats().calls
    with pytest.raises(PipelineError) as raised:
        run(data if form == "dict" else rh.pipeline(data["nodes"], **{k: data[k] for k in ("name", "inputs", "defaults")}),
            {"question": "hi"}, trace=False)
    assert "node 'second'" in str(raised.value) and "${inputs.nope}" in str(raised.value)
    assert [p.code for p in raised.value.problems] == ["unknown-input-ref"]
    assert simulated.stats(model).calls == 0 and simulated.provider_stats().calls == before
    assert not list(state_home.rglob("runs.db"))  # not even a run record: nothing started


def test_allow_imports_reach_the_checks(state_home, tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: imports\nnodes:\n  - {id: add, kind: python, function: 'runtime_helpers:add',"
                        " args: {a: 1, b: 2}}\noutputs: {sum: '${add.output}'}\n")
    assert run(pipeline, trace=False).outputs == {"sum": 3}  # registered functions are allowlisted


def test_resume_recompiles_the_stored_spec_and_keeps_its_models(state_home, sim_model, tmp_path, monkeypatch) -> None:
    first, later = sim_model(), sim_model()
    counter = tmp_path / "flaky"
    spec = rh.pipeline([
        {"id": "ask", "kind": "llm", "prompt": "one"},
        {"id": "flaky", "kind": "python", "function": "runtime_helpers:flaky_connection",
         "args": {"counter": str(counter)}, "retry": {"attempts": 1}, "depends_on": ["ask"]},
        {"id": "after", "kind": "llm", "prompt": "two ${flaky.output}"},
    ], name="resumable")
    monkeypatch.setenv("CONTEXTFLOW_MODEL", first)
    failed = run(spec, trace=False)
    assert failed.status == "failed" and failed.nodes["ask"].model == first
    monkeypatch.setenv("CONTEXTFLOW_MODEL", later)  # the environment changes between the start and the resume
    done = resume(failed.run_id, trace=False)
    assert done.status == "succeeded", done.error
    assert done.nodes["after"].model == first  # the run's own choice, not today's environment
    assert simulated.stats(later).calls == 0

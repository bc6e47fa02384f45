"""``compile()``: one check of anything runnable, the problems of ``contextflow validate``, an immutable plan."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import networkx as nx
import pytest
import yaml
from typer.testing import CliRunner

import contextflow
from contextflow.cli import app
from contextflow.core.errors import UserError
from contextflow.dags import Pipeline, Plan, compile
from contextflow.dags import check_refs
from contextflow.dags.problems import PipelineError
from contextflow.dags.spec import PipelineSpec
from contextflow.dags.validate import check_file

HERE = Path(__file__).parent
VALID = HERE / "valid" / "code_review.yaml"
INVALID = sorted((HERE / "invalid").glob("*.yaml"))
ALLOW = ("cf_test_functions",)

SMALL = {
    "name": "small",
    "inputs": {"question": {"type": "string"}},
    "defaults": {"model": "sim/echo"},
    "nodes": [
        {"id": "ask", "kind": "llm", "prompt": "${inputs.question}"},
        {"id": "again", "kind": "llm", "prompt": "${ask.output} ${inputs.question}"},
    ],
    "outputs": {"answer": "${again.output}"},
}


def _builder() -> Pipeline:
    return (Pipeline("small").input("question").defaults(model="sim/echo")
            .llm("ask", "${inputs.question}")
            .llm("again", "${ask.output} ${inputs.question}")
            .output("answer", "${again.output}"))


@pytest.mark.parametrize("make", [
    lambda tmp: SMALL,
    lambda tmp: PipelineSpec.model_validate(SMALL),
    lambda tmp: _builder(),
    lambda tmp: _write(tmp / "small.yaml", SMALL),
    lambda tmp: str(_write(tmp / "small.yaml", SMALL)),
], ids=["dict", "spec", "builder", "path", "str-path"])
def test_every_form_compiles_to_the_same_plan(make, tmp_path: Path) -> None:
    plan = compile(make(tmp_path))
    assert isinstance(plan, Plan)
    assert plan.order == ("ask", "again")
    assert plan.deps == {"ask": (), "again": ("ask",)}
    assert plan.dependents["ask"] == ("again",)
    assert plan.spec == PipelineSpec.model_validate(SMALL)
    assert compile(plan) is plan  # a plan is already checked


def test_the_top_level_package_exports_compile() -> None:
    assert contextflow.compile is compile
    assert "compile" in contextflow.__all__


def test_a_plan_is_immutable(tmp_path: Path) -> None:
    spec = PipelineSpec.model_validate(SMALL)
    plan = compile(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.order = ("again", "ask")  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.spec = spec  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.deps["ask"] = ("again",)  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.nodes["extra"] = spec.nodes[0]  # type: ignore[index]
    with pytest.raises(nx.NetworkXError):
        plan.graph.add_edge("again", "ask")
    # The plan holds its own copy: changing what was compiled changes nothing in it.
    spec.nodes[1].prompt = "${inputs.question}"
    assert plan.node("again").prompt == "${ask.output} ${inputs.question}"
    builder = _builder()
    built = compile(builder)
    builder.llm("late", "${again.output}")
    assert list(built.nodes) == ["ask", "again"]


def test_with_spec_takes_other_models_and_nothing_else() -> None:
    plan = compile(SMALL)
    nodes = [n.model_copy(update={"model": "sim/other"}) for n in plan.spec.nodes]
    other = plan.with_spec(plan.spec.model_copy(update={"nodes": nodes}))
    assert other.node("ask").model == "sim/other" and other.graph is plan.graph
    rewired = [plan.spec.nodes[0], plan.spec.nodes[1].model_copy(update={"prompt": "${inputs.question}"})]
    with pytest.raises(ValueError, match="other models"):
        plan.with_spec(plan.spec.model_copy(update={"nodes": rewired}))


def test_the_graph_is_built_once_by_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[nx.DiGraph] = []
    original = nx.DiGraph.__init__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(self)
        original(self, *args, **kwargs)

    returned: list[nx.DiGraph] = []
    run = check_refs.RefChecker.run

    def spy(self):  # type: ignore[no-untyped-def]
        graph = run(self)
        returned.append(graph)
        return graph

    monkeypatch.setattr(nx.DiGraph, "__init__", counting)
    monkeypatch.setattr(check_refs.RefChecker, "run", spy)
    plan = compile(VALID)
    assert len(returned) == 1 and len(built) == 1
    assert plan.graph is returned[0] is built[0]
    assert set(plan.graph.edges) >= {("context", "review"), ("review", "fixes")}


def test_a_plan_knows_where_each_node_was_declared(tmp_path: Path) -> None:
    plan = compile(VALID)
    lines = VALID.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == "- id: review")
    assert plan.where("review") == f"{VALID}:{line}:{lines[line - 1].index('review') + 1}"
    built = compile(_builder())
    assert built.where("again").startswith(f"{__file__}:")  # the line of the .llm(...) call
    assert compile(SMALL).where("ask") == "<pipeline>"  # plain data has no positions


def test_a_yaml_file_has_exactly_the_problems_validate_reports() -> None:
    for path in INVALID:
        report = check_file(path)
        cli = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
        assert cli.exit_code == 2, path
        listed = json.loads(cli.output)["problems"]
        if path.stem == "missing_model":
            assert compile(path).spec.nodes[0].model is None  # runs on the model chosen at run time
            continue
        with pytest.raises(PipelineError) as raised:
            compile(path)
        assert raised.value.problems == report.problems, path
        assert [p.to_dict() for p in raised.value.problems] == listed, path


def test_a_dict_has_the_problems_of_the_same_yaml_without_positions() -> None:
    compared = 0
    for path in INVALID:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue  # not data at all: only a file can have this problem
        expected = check_file(path).problems
        codes = {p.code for p in expected}
        if not isinstance(data, dict) or codes & {"duplicate-key", "missing-model"} or any(
                c.startswith("yaml-") for c in codes):
            continue  # a mapping cannot repeat a key; missing-model alone compiles; aliases are YAML's
        with pytest.raises(PipelineError) as raised:
            compile(data)
        got = raised.value.problems
        assert sorted((p.code, p.message) for p in got) == sorted((p.code, p.message) for p in expected), path
        if path.stem != "duplicate_node":  # its hint gives the first node's line in a file
            assert sorted(p.hint or "" for p in got) == sorted(p.hint or "" for p in expected), path
        assert all(p.line == 0 for p in got)
        compared += 1
    assert compared >= 30


def test_a_bad_reference_in_a_dict_is_reported_with_the_node() -> None:
    data = {**SMALL, "nodes": [{"id": "ask", "kind": "llm", "prompt": "${inputs.nope}"}], "outputs": {}}
    with pytest.raises(PipelineError) as raised:
        compile(data)
    (problem,) = raised.value.problems
    assert (problem.code, problem.node) == ("unknown-input-ref", "ask")
    text = str(raised.value)
    assert text.startswith("pipeline 'small': 1 problem")
    assert "<pipeline>, node 'ask': unknown-input-ref: ${inputs.nope} refers to input 'nope'" in text
    assert "hint: declare it under 'inputs:' (nope: {type: string})" in text


def test_only_a_missing_model_is_let_through(tmp_path: Path) -> None:
    bare = {"name": "bare", "nodes": [{"id": "a", "kind": "llm", "prompt": "hi"}]}
    assert compile(bare).node("a").model is None
    with pytest.raises(PipelineError) as raised:
        compile({**bare, "nodes": [*bare["nodes"], {"id": "b", "kind": "llm", "prompt": "${nope.output}"}]})
    assert {p.code for p in raised.value.problems} == {"missing-model", "unknown-node-ref"}


def test_allow_imports_and_model_checks_pass_through() -> None:
    simulated = HERE / "valid" / "simulated_cascade.yaml"
    with pytest.raises(PipelineError, match="import-not-allowed"):
        compile(simulated)
    assert compile(simulated, allow_imports=ALLOW).order
    unknown = {"name": "u", "defaults": {"model": "no-such-model-anywhere"},
               "nodes": [{"id": "a", "kind": "llm", "prompt": "hi"}]}
    with pytest.raises(PipelineError, match="unknown-model"):
        compile(unknown)
    assert compile(unknown, check_models=False).order == ("a",)


def test_something_else_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="cannot run a int") as raised:
        compile(42)  # type: ignore[arg-type]
    assert "Pipeline" in (raised.value.hint or "")
    with pytest.raises(PipelineError, match="file-not-found"):
        compile("no/such/pipeline.yaml")


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path

"""The Python declaration produces the same spec as the YAML one, and is checked the same way."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from contextflow.dags.builder import Pipeline
from contextflow.dags.imports import Allowlist, resolve_callable
from contextflow.dags.loader import load_pipeline_text
from contextflow.dags.problems import PipelineError
from contextflow.dags.spec import LLMNode
from contextflow.core.errors import UserError


class Review(BaseModel):
    findings: list[str]
    severity: str


def _review_pipeline() -> Pipeline:
    p = (
        Pipeline("review", description="Review a diff")
        .input("diff", str, description="the diff")
        .input("limit", int, default=5)
        .defaults(model="gpt-4o-mini")
        .retrieve("ctx", query="${inputs.diff}", budget_tokens=2000)
        .llm("review", prompt="Context:\n${ctx.output}\nDiff:\n${inputs.diff}", output=Review)
    )

    @p.python_node
    def count(review: dict, limit: int) -> int:
        return min(len(review["findings"]), limit)

    p.output("count", p.out.count).output("findings", p.out.review.findings)
    return p


YAML_EQUIVALENT = """
name: review
description: Review a diff
inputs:
  diff: {type: string, description: the diff}
  limit: {type: integer, default: 5}
defaults: {model: gpt-4o-mini}
nodes:
  - id: ctx
    kind: retrieve
    query: ${inputs.diff}
    budget_tokens: 2000
  - id: review
    kind: llm
    prompt: "Context:\\n${ctx.output}\\nDiff:\\n${inputs.diff}"
    output_schema: SCHEMA
  - id: count
    kind: python
    function: FUNCTION
    args: {review: "${review.output}", limit: "${inputs.limit}"}
    output_schema: {type: integer}
outputs:
  count: ${count.output}
  findings: ${review.output.findings}
"""


def test_builder_and_yaml_give_the_same_spec() -> None:
    import json

    p = _review_pipeline()
    function = p.spec.node("count").function  # type: ignore[union-attr]
    text = YAML_EQUIVALENT.replace("SCHEMA", json.dumps(Review.model_json_schema())).replace("FUNCTION", function)
    assert load_pipeline_text(text) == p.spec
    assert p.validate() == []


def test_decorated_function_is_registered_and_allowed() -> None:
    p = _review_pipeline()
    path = p.spec.node("count").function  # type: ignore[union-attr]
    assert Allowlist.build(env=False).allows(path)
    func = resolve_callable(path)
    assert func({"findings": ["a", "b", "c"]}, 2) == 2


def test_round_trip_through_yaml() -> None:
    p = _review_pipeline()
    again = Pipeline.from_yaml(p.to_yaml())
    assert again == p
    assert again.to_yaml() == p.to_yaml()


def test_unbound_parameter_is_a_clear_error() -> None:
    p = Pipeline("x").input("q", str)

    @p.python_node
    def step(q: str, missing: int) -> str:
        return q

    with pytest.raises(UserError) as caught:
        _ = p.spec
    assert "missing" in str(caught.value) and caught.value.hint


def test_python_pipeline_problems_are_found_without_a_file() -> None:
    p = Pipeline("x").llm("a", prompt="${b.output}", model="gpt-4o-mini").llm("b", prompt="${a.output}",
                                                                                model="gpt-4o-mnii")
    codes = sorted(problem.code for problem in p.validate())
    assert codes == ["cycle", "unknown-model"]
    with pytest.raises(PipelineError):
        p.check()


def test_reference_helpers() -> None:
    p = Pipeline("x")
    assert p.inputs.question == "${inputs.question}"
    assert p.out.review.findings == "${review.output.findings}"
    assert p.out.review.findings[0] == "${review.output.findings.0}"
    assert p.out["split"] == "${split.output}"


def test_map_and_tool_nodes() -> None:
    p = (
        Pipeline("m").input("files", list).defaults(model="gpt-4o-mini")
        .map("each", over="${inputs.files}", node=LLMNode(id="one", prompt="Summarise ${item}"))
        .tool("save", "write_file", args={"path": "out.md", "content": "${each.output}"},
              side_effects=["write_files"])
    )
    assert p.validate() == []
    assert p.spec.node("save").side_effects == ["write_files"]  # type: ignore[union-attr]
    assert Pipeline.from_yaml(p.to_yaml()) == p


def test_type_mismatch_with_annotated_function() -> None:
    p = Pipeline("t").defaults(model="gpt-4o-mini").llm("draft", prompt="write")

    @p.python_node
    def lines(draft: list) -> int:
        return len(draft)

    assert [problem.code for problem in p.validate()] == ["type-mismatch"]


def test_problems_point_at_the_declaring_python_line() -> None:
    import inspect

    here = inspect.currentframe()
    assert here is not None
    p = Pipeline("x").defaults(model="gpt-4o-mini")
    line_llm = here.f_lineno + 1
    p.llm("a", prompt="${nope.output}")

    @p.python_node
    def b(a: list) -> int:
        return len(a)

    problems = {problem.code: problem for problem in p.validate()}
    assert set(problems) == {"unknown-node-ref", "type-mismatch"}
    assert problems["unknown-node-ref"].file == __file__
    assert problems["unknown-node-ref"].line == line_llm
    assert problems["type-mismatch"].line == b.__code__.co_firstlineno
    assert problems["unknown-node-ref"].location == f"{__file__}:{line_llm}"

"""The checks of fields a run would trip over: they fire on what fails, and stay quiet on what runs."""

from __future__ import annotations

from typing import Any

import pytest

from contextflow.core.builtin_tools import BUILTIN_TOOL_PARAMS
from contextflow.core.sim_options import SimOptions
from contextflow.dags import Pipeline
from contextflow.dags.option_schemas import type_words
from contextflow.dags.spec import PipelineSpec
from contextflow.dags.validate import validate_spec, validate_text


def problems_of(nodes: list[dict[str, Any]], **defaults: Any) -> list[tuple[str, str]]:
    spec = PipelineSpec.model_validate({"name": "t", "defaults": {"model": "sim/echo", **defaults}, "nodes": nodes})
    return [(p.code, p.message) for p in validate_spec(spec).problems]


def test_what_runs_passes() -> None:
    nodes = [
        {"id": "draft", "kind": "llm", "prompt": "hi", "params": {
            "temperature": 0.2, "max_tokens": 50, "stop": ["\n\n"], "custom_llm_flag": True,
            "sim": {"latency_ms": 5, "failure_rates": {"429": 0.5}, "fail_first": ["500", None],
                    "script": {"hi": "hello"}, "json_value": {"a": [1]}}}},
        {"id": "chat", "kind": "llm", "messages": [{"role": "user", "content": "${draft.output}"}],
         "verify": [{"kind": "regex", "pattern": "^h"}, {"kind": "schema"}]},
        {"id": "save", "kind": "tool", "tool": "write_file",
         "args": {"path": "${inputs.where}", "content": "${chat.output}", "create_dirs": "${inputs.mkdir}"}},
        {"id": "test", "kind": "tool", "tool": "run_command", "args": {"command": ["pytest", "-q"], "timeout_s": 30}},
        {"id": "ctx", "kind": "retrieve", "query": "x", "retrievers": ["bm25", "git"]},
    ]
    spec = PipelineSpec.model_validate({
        "name": "t", "inputs": {"where": {"type": "string"}, "mkdir": {"type": "boolean"}},
        "defaults": {"model": "sim/echo", "provider_limits": {"sim": 1, "sim/echo": 4}}, "nodes": nodes})
    assert validate_spec(spec).problems == []


def test_every_built_in_tool_with_its_required_arguments_passes() -> None:
    for name, params in BUILTIN_TOOL_PARAMS.items():
        args = {arg: "x" for arg in params.required}
        assert problems_of([{"id": "t", "kind": "tool", "tool": name, "args": args}]) == [], name


def test_an_import_path_tool_is_left_to_the_allowlist_check() -> None:
    found = problems_of([{"id": "t", "kind": "tool", "tool": "os:system"}])
    assert [code for code, _ in found] == ["import-not-allowed"]


def test_a_python_built_pipeline_is_checked_at_the_line_that_declared_the_node() -> None:
    p = Pipeline("p").defaults(model="sim/echo", provider_limits={"sim": 0})
    p.tool("save", "write_fil", args={"path": "a"})
    line = test_a_python_built_pipeline_is_checked_at_the_line_that_declared_the_node.__code__.co_firstlineno + 2
    found = {(pr.code, pr.line) for pr in p.validate()}
    assert ("unknown-tool", line) in found
    assert "invalid-value" in {code for code, _ in found}  # the provider limit of 0


@pytest.mark.parametrize("prompt", [None, ""])
def test_a_system_message_alone_is_no_prompt(prompt: str | None) -> None:
    node: dict[str, Any] = {"id": "a", "kind": "llm", "system": "You are terse."}
    if prompt is not None:
        node["prompt"] = prompt
    assert [code for code, _ in problems_of([node])] == ["missing-prompt"]


def test_problems_inside_a_map_node_are_found() -> None:
    found = problems_of([
        {"id": "each", "kind": "map", "over": "${inputs.xs}", "node": {"id": "one", "kind": "tool", "tool": "read"}},
    ])
    assert ("unknown-tool", "node 'one' names the tool 'read', which is not built in") in found


def test_a_bool_is_not_a_number_for_a_tool() -> None:
    found = problems_of([{"id": "t", "kind": "tool", "tool": "run_command",
                          "args": {"command": "ls", "timeout_s": True}}])
    assert [code for code, _ in found] == ["wrong-type"]


def test_every_sim_option_has_a_readable_hint() -> None:
    for name, info in SimOptions.model_fields.items():
        words = type_words(info.annotation)
        assert words and "typing" not in words and "Annotated" not in words and "FieldInfo" not in words, name


def test_sim_option_problems_point_at_each_key() -> None:
    text = ("name: t\ndefaults: {model: sim/echo}\nnodes:\n  - id: a\n    kind: llm\n    prompt: hi\n"
            "    params:\n      sim:\n        hang_s: -1\n        fail_first: [timeout, nope]\n")
    found = sorted((p.code, p.line, p.column) for p in validate_text(text).problems)
    assert found == [("invalid-value", 9, 17), ("invalid-value", 10, 31)]

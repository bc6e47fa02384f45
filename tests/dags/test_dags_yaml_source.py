"""Source positions: keys, values, references inside quoted and block scalars, both loaders."""

from __future__ import annotations

import pytest

from contextflow.dags.validate import validate_text
from contextflow.dags.yaml_source import parse_yaml

TEXT = """name: t   # comment
inputs:
  q: {type: string}
nodes:
  - id: a
    kind: llm
    prompt: |
      Line one
        indented ${inputs.q} and ${inputs.q}
    system: "héllo ${inputs.q}"
base: &base {x: 1}
derived:
  <<: *base
  y: 2
defaults: {model: gpt-4o-mini}
"""


@pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure"])
def test_positions_of_keys_values_and_references(pure: bool) -> None:
    parsed = parse_yaml(TEXT, pure=pure)
    assert parsed.problems == []
    source = parsed.source
    assert source.key(("nodes", 0, "prompt")) == (7, 5)
    assert source.value(("nodes", 0, "id")) == (5, 9)
    assert source.key(("inputs", "q")) == (3, 3)
    prompt = parsed.data["nodes"][0]["prompt"]
    second = prompt.index("${inputs.q}", prompt.index("${inputs.q}") + 1)
    assert source.in_value(("nodes", 0, "prompt"), prompt, second, second + 11) == (9, 34)
    system = parsed.data["nodes"][0]["system"]
    assert source.in_value(("nodes", 0, "system"), system, 6, 17) == (10, 20)  # after a non-ASCII letter
    assert parsed.data["derived"] == {"x": 1, "y": 2}


@pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure"])
def test_duplicate_keys_are_reported_at_the_second(pure: bool) -> None:
    parsed = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", pure=pure)
    assert [(p.code, p.line, p.column) for p in parsed.problems] == [("duplicate-key", 4, 3)]
    assert "line 3, column 3" in (parsed.problems[0].hint or "")


def test_only_safe_tags() -> None:
    report = validate_text("name: !!python/object/apply:os.system ['echo hi']\nnodes: []\n")
    assert [(p.code, p.line, p.column) for p in report.problems] == [("yaml-syntax", 1, 7)]
    report = validate_text("name: t\nnodes: !!python/object:os.Foo {}\n")
    assert [(p.code, p.line, p.column) for p in report.problems] == [("yaml-syntax", 2, 8)]


def test_block_scalar_reference_is_located() -> None:
    report = validate_text(TEXT.replace("and ${inputs.q}", "and ${inputs.qq}"), file="t.yaml")
    problems = [(p.code, p.line, p.column) for p in report.problems if p.code != "unknown-key"]
    assert problems == [("unknown-input-ref", 9, 34)]


def test_problems_are_sorted_and_all_collected() -> None:
    text = "name: t\nnodez: []\nversion: x\ndefaults: {model: gpt-4o-mini, retry: {atempts: 1}}\n"
    report = validate_text(text)
    assert [(p.code, p.line) for p in report.problems] == [
        ("unknown-key", 2), ("wrong-type", 3), ("unknown-key", 4)]

"""Hostile YAML: aliases of aliases, deep nesting, cycles and merges of merges are refused (or
resolved) without expanding anything, with a positioned problem; and quoted values stay short."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contextflow.dags.preview import preview
from contextflow.dags.validate import validate_text
from contextflow.dags.yaml_source import DEFAULT_LIMITS, YamlLimits, parse_yaml

LOADERS = pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pure"])


def laughs(levels: int, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nname: laughs\nnodes: *a{levels}\n"


def codes(parsed) -> list[tuple[str, int, int]]:
    return [(p.code, p.line, p.column) for p in parsed.problems]


@LOADERS
@pytest.mark.parametrize("levels", [9, 10, 30])
def test_billion_laughs_stops_at_the_alias_that_passes_the_limit(pure: bool, levels: int) -> None:
    parsed = parse_yaml(laughs(levels), file="lol.yaml", pure=pure)
    assert parsed.data is None
    assert codes(parsed) == [("yaml-alias-expansion", 6, 5)]  # a5 is the first level over 1,000,000
    (problem,) = parsed.problems
    assert "1,000,000 characters" in problem.message and problem.hint
    assert problem.format().startswith("lol.yaml:6:5: yaml-alias-expansion:")


def test_billion_laughs_through_the_cli_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(laughs(10))
    done = subprocess.run([sys.executable, "-m", "contextflow", "validate", str(path)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    output = done.stdout + done.stderr
    assert f"{path}:6:5: yaml-alias-expansion" in output and "Traceback" not in output


def test_aliases_within_the_limits_still_work() -> None:
    text = ("common: &common {kind: llm, prompt: hi, retry: {attempts: 2}}\n"
            "name: t\ndefaults: {model: gpt-4o-mini}\nnodes:\n"
            + "".join(f"  - {{<<: *common, id: n{i}}}\n" for i in range(500)))
    parsed = parse_yaml(text)
    assert parsed.problems == []
    parsed.data.pop("common")
    report = validate_text(yaml.safe_dump(parsed.data))
    assert report.problems == [] and len(report.spec.nodes) == 500
    assert report.spec.nodes[499].retry.attempts == 2
    parsed = parse_yaml(laughs(3))  # 9^3 strings: a few thousand characters, well inside
    assert parsed.problems == [] and len(parsed.data["nodes"]) == 9
    assert parsed.data["nodes"][0] is parsed.data["nodes"][1]  # shared, never copied


@LOADERS
def test_too_many_aliases(pure: bool) -> None:
    limits = YamlLimits(max_aliases=5)
    text = "x: &x 1\nname: t\nnodes: [*x, *x, *x, *x, *x, *x]\n"
    parsed = parse_yaml(text, pure=pure, limits=limits)
    assert codes(parsed) == [("yaml-too-many-aliases", 3, 8)]
    assert "more than 5 aliases" in parsed.problems[0].message
    assert parse_yaml(text, pure=pure, limits=YamlLimits(max_aliases=6)).problems == []


def test_the_default_alias_limit() -> None:
    count = DEFAULT_LIMITS.max_aliases
    text = "x: &x 1\nname: t\nnodes:\n" + "  - *x\n" * (count + 1)
    assert codes(parse_yaml(text)) == [("yaml-too-many-aliases", 4, 3)]
    assert parse_yaml(text.replace("  - *x\n", "", 1)).problems == []


@LOADERS
def test_an_alias_of_a_big_string_counts_its_length(pure: bool) -> None:
    text = f"big: &big {'x' * 400_000}\nname: t\nnodes: [*big, *big, *big]\n"
    assert codes(parse_yaml(text, pure=pure)) == [("yaml-alias-expansion", 3, 8)]
    assert parse_yaml(text.replace(", *big, *big", ""), pure=pure).problems == []


@LOADERS
def test_alias_cycles(pure: bool) -> None:
    assert codes(parse_yaml("name: t\nnodes: &n [*n]\n", pure=pure)) == [("yaml-alias-cycle", 2, 8)]
    assert codes(parse_yaml("a: &a\n  <<: *a\nname: t\n", pure=pure)) == [("yaml-alias-cycle", 2, 3)]


@LOADERS
@pytest.mark.parametrize("depth", [101, 400, 5000])
def test_deep_nesting_is_refused_not_a_recursion_error(pure: bool, depth: int) -> None:
    text = "name: t\nnodes: " + "[" * depth + "]" * depth + "\n"
    parsed = parse_yaml(text, pure=pure)
    assert parsed.data is None
    ((code, line, column),) = codes(parsed)
    assert (code, line) == ("yaml-too-deep", 2)
    assert column == (107 if depth <= 1000 or pure else 1007)  # libyaml stops at 1000 by itself
    ok = "name: t\nnodes: " + "[" * 99 + "]" * 99 + "\n"  # 99 lists in the top mapping: 100 levels
    assert parse_yaml(ok, pure=pure).problems == []


@LOADERS
def test_depth_counts_through_aliases(pure: bool) -> None:
    deep = "[" * 60 + "]" * 60
    text = f"d: &d {deep}\nname: t\nnodes: [{deep.replace('[]', '[*d]', 1)}]\n"
    # at the innermost list, the one holding the alias (a 61st level whose value is 60 deep)
    assert codes(parse_yaml(text, pure=pure)) == [("yaml-too-deep", 3, 68)]


@LOADERS
def test_merges_of_merges_are_resolved_once(pure: bool) -> None:
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: lol" for i in range(9)) + "}"]
    for i in range(1, 15):  # PyYAML's own flatten_mapping would copy 9^14 pairs here
        lines.append(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}], own{i}: {i}}}")
    parsed = parse_yaml("\n".join(lines) + "\n", pure=pure)
    assert parsed.problems == []
    assert parsed.data["m14"] == {**{f"k{i}": "lol" for i in range(9)}, **{f"own{i}": i for i in range(1, 15)}}


@LOADERS
def test_merge_semantics_match_pyyaml(pure: bool) -> None:
    text = ("base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\n"
            "d: {<<: [*b, *o], x: 0}\ne:\n  <<: {q: 1}\n  r: 2\n")
    parsed = parse_yaml(text, pure=pure)
    assert parsed.problems == []  # an own key overriding a merged one is the point of merging
    assert parsed.data == yaml.safe_load(text)
    assert list(parsed.data["d"]) == list(yaml.safe_load(text)["d"])
    assert parsed.source.key(("d", "z")) == (2, 18)  # a merged key points at where it is written
    assert parsed.source.key(("e", "q")) == (5, 8)
    twice = parse_yaml("a: &a {x: 1}\nd:\n  <<: *a\n  <<: *a\n", pure=pure)
    assert codes(twice) == [("duplicate-key", 4, 3)]
    bad = parse_yaml("d:\n  <<: 3\n", pure=pure)
    assert [p.code for p in bad.problems] == ["yaml-syntax"]


def test_wrong_type_messages_quote_a_bounded_preview() -> None:
    text = laughs(3).replace("nodes: *a3", "nodes: []\ndescription: *a3")
    (problem,) = [p for p in validate_text(text).problems if p.code != "unknown-key"]  # a0..a3
    assert problem.code == "wrong-type" and "(got [[[['lol'" in problem.message
    assert len(problem.message) < 200


def test_preview_is_repr_for_small_values_and_short_for_huge_ones() -> None:
    for value in ["abc", [1, 2.5, None, True], {"a": [1, {"b": "c"}]}, (1,), (), set(), {3}, frozenset()]:
        assert preview(value) == repr(value)
    huge: list = ["lol"] * 9
    for _ in range(40):  # 9^40 strings if expanded
        huge = [huge] * 9
    shown = preview(huge)
    assert len(shown) == 60 and shown.endswith("...") and shown.startswith("[[[[")
    cyclic: list = []
    cyclic.append(cyclic)
    assert len(preview(cyclic)) == 60
    assert preview("x" * 10_000_000) == "'" + "x" * 56 + "..."
    assert preview(10 ** 5000) == "<int of 16610 bits>"
    assert preview(list(range(100)), limit=20) == "[0, 1, 2, 3, 4, 5..."

"""``when:`` conditions: evaluated without eval, and everything but the safe subset rejected."""

from __future__ import annotations

import pytest

from contextflow.dags.expressions import ExpressionError, evaluate_condition, parse_condition
from contextflow.dags.refs import RefError

SCOPE = {
    "inputs": {"strict": True, "limit": 3, "mode": "fast"},
    "review": {"severity": "high", "findings": ["a", "b"], "score": 0.7},
    "empty": [],
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("${review.output.severity} == 'high'", True),
        ("${review.output.severity} in ['medium', 'high']", True),
        ("${review.output.severity} not in ('low',)", True),
        ("${review.output.score} >= 0.5 and ${inputs.limit} < 3", False),
        ("${review.output.score} >= 0.5 or ${inputs.limit} < 3", True),
        ("not ${inputs.strict}", False),
        ("${empty}", False),
        ("${review.output.findings}", True),
        ("0 < ${inputs.limit} <= 3", True),
        ("${review.output.findings.1} == 'b'", True),
        ("${inputs.mode} != null and true", True),
        ("-${inputs.limit} < 0", True),
        ("'a' in ${review.output.findings}", True),
    ],
)
def test_conditions_evaluate(expr: str, expected: bool) -> None:
    assert evaluate_condition(expr, SCOPE) is expected


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("len(${review.output.findings}) > 1", "function calls"),
        ("__import__('os').system('echo hi')", "function calls"),
        ("${review.output}.severity == 'high'", "attribute"),
        ("${review.output}['severity']", "indexing"),
        ("severity == 'high'", "not a reference"),
        ("lambda: 1", "Lambda"),
        ("${review.output} if 1 else 2", "IfExp"),
        ("${a} ==", "not a valid expression"),
        ("${inputs.} == 1", "malformed reference"),
        ("", "empty"),
        ("[x for x in ${empty}]", "ListComp"),
        ("${review.output.score} * 2 > 1", "BinOp"),
    ],
)
def test_unsafe_or_broken_conditions_are_rejected(expr: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_condition(expr)
    assert fragment in str(caught.value)


def test_error_offsets_point_into_the_original_text() -> None:
    expr = "${review.output.severity} == 'x' and len(${empty})"
    with pytest.raises(ExpressionError) as caught:
        parse_condition(expr)
    assert expr[caught.value.offset:].startswith("len(")


def test_missing_values_raise_ref_errors() -> None:
    with pytest.raises(RefError):
        evaluate_condition("${review.output.nope} == 1", SCOPE)


def test_refs_are_exposed_for_static_checks() -> None:
    condition = parse_condition("${a.output.x} == 1 and ${inputs.y}")
    assert [(r.root, r.path) for r in condition.refs] == [("a", ("output", "x")), ("inputs", ("y",))]

"""``when:`` conditions: a small, safe expression language over upstream results.

A condition is Python expression syntax restricted to literals, ``${...}`` references,
comparisons (``== != < <= > >= in not in is is not``), ``and``/``or``/``not`` and unary minus.
Calls, attributes, subscripts, names and lambdas are rejected, and nothing is passed to ``eval``:
the expression is parsed with :mod:`ast` and walked by :func:`evaluate_condition`.

    when: "${review.output.severity} in ['high', 'critical'] and not ${inputs.dry_run}"
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from contextflow.dags.refs import _REF, Ref, _to_ref, lookup

_PLACEHOLDER = "__cf_ref_{}"

_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_LITERAL_NAMES = {"True": True, "False": False, "None": None, "true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """A condition that is not valid; ``offset`` is the 0-based character offset in the source."""

    def __init__(self, message: str, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True)
class Condition:
    source: str
    tree: ast.Expression
    refs: tuple[Ref, ...]


@lru_cache(maxsize=4096)
def parse_condition(expr: str) -> Condition:
    """Parse and check a condition; raises :class:`ExpressionError` with the offending offset."""
    refs: list[Ref] = []
    pieces: list[str] = []
    offsets: list[tuple[int, int, int]] = []  # (rewritten start, original start, length delta)
    last = 0
    shift = 0
    for match in _REF.finditer(expr):
        ref = _to_ref(match)
        name = _PLACEHOLDER.format(len(refs))
        pieces.append(expr[last:match.start()])
        pieces.append(name)
        offsets.append((match.start() + shift, match.start(), len(name) - (match.end() - match.start())))
        shift += len(name) - (match.end() - match.start())
        last = match.end()
        refs.append(ref)
    pieces.append(expr[last:])
    rewritten = "".join(pieces)

    def original(offset: int) -> int:
        delta = 0
        for start, _orig, change in offsets:
            if offset > start:
                delta += change
        return max(0, offset - delta)

    stray = rewritten.find("${")
    if stray >= 0:
        raise ExpressionError("malformed reference; write ${node.output.field} or ${inputs.name}",
                              original(stray))
    if not rewritten.strip():
        raise ExpressionError("the condition is empty")
    try:
        tree = ast.parse(rewritten.strip(), mode="eval")
    except SyntaxError as exc:
        lead = len(rewritten) - len(rewritten.lstrip())
        raise ExpressionError(f"not a valid expression: {exc.msg}", original(lead + max((exc.offset or 1) - 1, 0))) from None
    lead = len(rewritten) - len(rewritten.lstrip())
    for node in ast.walk(tree):
        problem = _disallowed(node, len(refs))
        if problem:
            col = getattr(node, "col_offset", 0) + lead
            raise ExpressionError(problem[0], original(col), problem[1])
    return Condition(expr, tree, tuple(refs))


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.Compare, ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Load, ast.Name,
    *tuple(_COMPARE),
)


def _disallowed(node: ast.AST, ref_count: int) -> tuple[str, str | None] | None:
    if isinstance(node, ast.Name):
        if node.id in _LITERAL_NAMES:
            return None
        if node.id.startswith("__cf_ref_") and int(node.id.rsplit("_", 1)[1]) < ref_count:
            return None
        return (f"'{node.id}' is not a reference or a literal",
                f"write ${{{node.id}.output}} or ${{inputs.{node.id}}}, or quote it as a string: '{node.id}'")
    if isinstance(node, ast.Call):
        return "function calls are not allowed in a condition", "compare values with ==, <, in, and, or, not"
    if isinstance(node, ast.Attribute):
        return "attribute access is not allowed; reach fields through the reference", "write ${node.output.field}"
    if isinstance(node, ast.Subscript):
        return "indexing is not allowed; reach items through the reference", "write ${node.output.items.0}"
    if not isinstance(node, _ALLOWED):
        return f"'{type(node).__name__}' is not allowed in a condition", \
            "use literals, ${...} references, comparisons, and/or/not"
    return None


def evaluate_condition(expr: str, scope: Mapping[str, Any]) -> bool:
    """Evaluate a ``when:`` condition against finished results (``scope`` as for ``lookup``)."""
    condition = parse_condition(expr)
    values = [lookup(ref, scope) for ref in condition.refs]
    return bool(_eval(condition.tree.body, values))


def _eval(node: ast.AST, values: list[Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _LITERAL_NAMES:
            return _LITERAL_NAMES[node.id]
        return values[int(node.id.rsplit("_", 1)[1])]
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, values)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = _eval(value, values)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, values)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_eval(e, values) for e in node.elts]
        return set(items) if isinstance(node, ast.Set) else items
    raise ExpressionError(f"'{type(node).__name__}' is not allowed in a condition")

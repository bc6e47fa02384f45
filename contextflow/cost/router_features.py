"""Cheap features a router reads: of the prompt, and of the cheap model's answer in a cascade.

In a cascade the weak answer has already been paid for, so checking it is free evidence: a
GSM8K-style answer whose ``<<a*b=c>>`` calculator notes do not add up, or whose final answer
does not follow from its last step, is much more likely wrong than one that checks out.
"""

from __future__ import annotations

import ast
import math
import operator
import re

import numpy as np

_CALC = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_FINAL = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")
_HEDGES = ("assum", "approximately", "cannot", "not possible", "unclear", "not enough", "however", "but wait", "i think")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}

PROMPT_FEATURES = ("log_prompt_chars", "prompt_numbers", "prompt_questions", "prompt_lines")
ANSWER_FEATURES = (
    "calc_count", "calc_wrong", "calc_wrong_share", "has_final", "final_is_number", "final_matches_last_calc",
    "final_in_text_count", "log_answer_chars", "answer_lines", "hedges", "new_numbers_share", "final_is_integer",
    "inline_count", "inline_wrong", "any_wrong", "prompt_numbers_unused", "final_not_last_line", "final_markers",
    "final_has_decimal",
)
# Arithmetic written in the prose ("15 + 25 = 40"), checked like the calculator notes.
_INLINE = re.compile(r"((?:\d[\d,]*\.?\d*\s*[-+*/x\u00d7]\s*)+\d[\d,]*\.?\d*)\s*=\s*\$?(-?\d[\d,]*\.?\d*)")


def safe_arithmetic(expression: str) -> float | None:
    """Evaluate + - * / // % ** on numbers only (never ``eval``); None when it is not arithmetic."""
    try:
        tree = ast.parse(expression.replace(",", "").strip(), mode="eval")
    except SyntaxError:
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 12:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        raise ValueError("not arithmetic")

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _number(text: str) -> float | None:
    match = _NUMBER.search(text or "")
    if not match:
        return None
    try:
        return float(match.group(0).replace(",", ""))
    except ValueError:
        return None


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def check_calculations(answer: str) -> tuple[int, int]:
    """(calculator notes, notes whose arithmetic is wrong)."""
    total = wrong = 0
    for expression, result in _CALC.findall(answer or ""):
        total += 1
        if not _close(safe_arithmetic(expression), _number(result)):
            wrong += 1
    return total, wrong


def arithmetic_consistent(value: object, text: str = "") -> bool:
    """Verifier: every calculator note is right and the final answer follows from the last one."""
    answer = text or str(value or "")
    total, wrong = check_calculations(answer)
    if wrong:
        return False
    final = _FINAL.search(answer)
    if final is None:
        return False
    notes = _CALC.findall(answer)
    return not notes or _close(_number(notes[-1][1]), _number(final.group(1)))


def prompt_features(prompt: str) -> list[float]:
    return [
        math.log1p(len(prompt)),
        float(len(_NUMBER.findall(prompt))),
        float(prompt.count("?")),
        float(prompt.count("\n") + 1),
    ]


def answer_features(prompt: str, answer: str) -> list[float]:
    answer = answer or ""
    total, wrong = check_calculations(answer)
    final = _FINAL.search(answer)
    final_value = _number(final.group(1)) if final else None
    notes = _CALC.findall(answer)
    last = _number(notes[-1][1]) if notes else None
    prompt_numbers = {n.replace(",", "") for n in _NUMBER.findall(prompt)}
    answer_numbers = [n.replace(",", "") for n in _NUMBER.findall(answer)]
    new_share = (sum(n not in prompt_numbers for n in answer_numbers) / len(answer_numbers)) if answer_numbers else 0.0
    lowered = answer.lower()
    final_text = final.group(1).strip() if final else ""
    return [
        float(total), float(wrong), wrong / total if total else 0.0, float(final is not None),
        float(final_value is not None), float(_close(final_value, last)) if notes else 0.5,
        float(answer.count(final_text)) if final_text else 0.0, math.log1p(len(answer)),
        float(answer.count("\n") + 1), float(sum(lowered.count(h) for h in _HEDGES)), new_share,
        float(final_value is not None and float(final_value).is_integer()),
        *_prose_checks(prompt, answer, final_text),
    ]


def _prose_checks(prompt: str, answer: str, final_text: str) -> list[float]:
    total = wrong = 0
    for expression, result in _INLINE.findall(answer.replace("<<", " ").replace(">>", " ")):
        value = safe_arithmetic(expression.replace("x", "*").replace("\u00d7", "*"))
        if value is None:
            continue
        total += 1
        wrong += not _close(value, _number(result))
    prompt_numbers = [n.replace(",", "").rstrip(".") for n in _NUMBER.findall(prompt)]
    used = {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(answer)}
    unused = sum(n not in used for n in prompt_numbers) / len(prompt_numbers) if prompt_numbers else 0.0
    lines = answer.rstrip().split("\n")
    return [float(total), float(wrong), float(wrong > 0), unused, float(not lines[-1].lstrip().startswith("####")),
            float(answer.count("####")), float("." in final_text)]


def feature_matrix(prompts: list[str], answers: list[str] | None = None) -> np.ndarray:
    rows = []
    for index, prompt in enumerate(prompts):
        row = prompt_features(prompt)
        if answers is not None:
            row += answer_features(prompt, answers[index])
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)

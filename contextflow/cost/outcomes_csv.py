"""Reading recorded outcomes (a CSV like ``../shared/data/routellm``) for router training.

Columns: ``prompt`` and ``weak_correct`` are required; ``strong_correct`` is needed to evaluate
and to calibrate to a target quality; ``weak_response`` makes a cascade router (it reads the
cheap answer), ``strong_response`` prices the strong call's output; ``subject`` is a category.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contextflow.core.errors import UserError

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


@dataclass
class OutcomeRows:
    prompts: list[str]
    weak_correct: np.ndarray
    strong_correct: np.ndarray | None
    weak_responses: list[str] | None
    strong_responses: list[str] | None
    categories: list[str] | None


def _flag(value: str, path: Path, line: int, column: str) -> bool:
    lowered = (value or "").strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UserError(f"{path}:{line}: column '{column}' holds {value!r}, not true/false",
                    hint="write True/False or 1/0")


def read_outcomes(path: str | Path, *, limit: int | None = None) -> OutcomeRows:
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}", hint="give a CSV with prompt and weak_correct columns") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in ("prompt", "weak_correct") if c not in columns]
        if missing:
            raise UserError(f"{path} lacks the column(s) {', '.join(missing)}",
                            hint=f"its columns are {', '.join(columns) or '(none)'}; needed: prompt, weak_correct")
        rows = []
        for line, row in enumerate(reader, start=2):
            rows.append((line, row))
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise UserError(f"{path} has no data rows", hint="record some outcomes first")
    has = set(columns)
    return OutcomeRows(
        prompts=[r["prompt"] for _, r in rows],
        weak_correct=np.array([_flag(r["weak_correct"], path, n, "weak_correct") for n, r in rows]),
        strong_correct=np.array([_flag(r["strong_correct"], path, n, "strong_correct") for n, r in rows])
        if "strong_correct" in has else None,
        weak_responses=[r["weak_response"] for _, r in rows] if "weak_response" in has else None,
        strong_responses=[r["strong_response"] for _, r in rows] if "strong_response" in has else None,
        categories=[r["subject"] for _, r in rows] if "subject" in has else None,
    )

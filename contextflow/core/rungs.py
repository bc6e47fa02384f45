"""Rungs of a model ladder: a model, optionally with test-time compute (``reasoning_effort``).

A ladder lists rungs cheapest first. A rung is written ``model`` or ``model@effort`` (for example
``o3-mini@low`` then ``o3-mini@high``), so the same model at more reasoning effort is a higher
rung. The scheduler calls litellm with ``rung.model`` and merges ``rung.params`` into the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contextflow.core.errors import UserError
from contextflow.core import catalog

EFFORTS = ("minimal", "low", "medium", "high")
# Reasoning tokens are billed as output; more effort means more of them. These multipliers of
# the output limit are what the planner assumes when it has no recorded usage for the rung.
EFFORT_OUTPUT_FACTOR = {"minimal": 0.5, "low": 1.0, "medium": 2.0, "high": 4.0}


@dataclass(frozen=True)
class Rung:
    model: str
    effort: str | None = None
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.model}@{self.effort}" if self.effort else self.model

    @property
    def output_factor(self) -> float:
        return EFFORT_OUTPUT_FACTOR.get(self.effort or "", 1.0)


def parse_rung(rung: str | dict[str, Any]) -> Rung:
    """``"o3-mini@high"`` or ``{"model": "o3-mini", "reasoning_effort": "high"}`` -> Rung."""
    if isinstance(rung, dict):
        if "model" not in rung:
            raise UserError(f"a ladder rung needs a model: {rung!r}", hint="write {model: NAME, reasoning_effort: high}")
        effort = rung.get("reasoning_effort")
        extra = {k: v for k, v in rung.items() if k not in ("model", "reasoning_effort")}
        return _make(str(rung["model"]), effort, extra, repr(rung))
    model, sep, effort = str(rung).rpartition("@")
    if not sep:
        return Rung(model=str(rung))
    if effort not in EFFORTS and _is_known_model(str(rung)):
        return Rung(model=str(rung))  # '@' inside a real model name, e.g. vertex_ai/claude-3-5-sonnet@20240620
    return _make(model, effort, {}, str(rung))


def _is_known_model(name: str) -> bool:
    return catalog.lookup(name) is not None


def _make(model: str, effort: str | None, extra: dict[str, Any], source: str) -> Rung:
    if effort is not None and effort not in EFFORTS:
        raise UserError(f"unknown reasoning effort '{effort}' in rung {source}",
                        hint=f"use one of {', '.join(EFFORTS)}, e.g. o3-mini@high")
    if not model:
        raise UserError(f"rung {source} names no model", hint="write MODEL@EFFORT, e.g. o3-mini@high")
    params = dict(extra)
    if effort is not None:
        params["reasoning_effort"] = effort
    return Rung(model=model, effort=effort, params=params)

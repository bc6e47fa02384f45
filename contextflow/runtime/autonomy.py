"""Autonomy levels and the policy that decides where a run stops for a person.

Levels, from most to least supervised:

- ``suggest``: every model step's result waits; side effects and risky escalations wait too.
- ``ask``: side-effecting tools wait before they act; a model call or cascade escalation whose
  worst case could pass the budget waits.
- ``budgeted``: only a model call or escalation whose worst case could pass the budget waits.
- ``full``: nothing waits (per-node ``approval: always`` still does).

A node's own ``approval`` refines the level for that node: ``always`` waits at every level
(tools before they act, other nodes after); ``never`` never waits; below ``full``,
``on_side_effect`` makes its side effects wait (even at ``budgeted``) and ``on_escalation`` makes
every escalation wait, whatever it costs. At ``full`` only ``always`` stops a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from contextflow.core.errors import UserError
from contextflow.runtime.tools import BUILTIN_SIDE_EFFECTS

LEVELS: tuple[str, ...] = ("suggest", "ask", "budgeted", "full")
Phase = Literal["before", "after"]


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise UserError(f"unknown autonomy level '{level}'", hint=f"use one of: {', '.join(LEVELS)}")
    return level


def side_effects_of(node: Any) -> tuple[str, ...]:
    """What a node does to the world: declared ``side_effects`` or those of its built-in tool."""
    if node.kind == "map":
        return side_effects_of(node.node)
    if node.kind != "tool":
        return ()
    declared = tuple(node.side_effects or ())
    return declared or BUILTIN_SIDE_EFFECTS.get(node.tool, ())


@dataclass(frozen=True)
class GateRule:
    """Where one node stops: ``phase`` (before it runs / after, before its result flows on)."""

    phase: Phase
    reason: Literal["side_effect", "model_step", "always"]


def node_rule(level: str, node: Any) -> GateRule | None:
    """The before/after gate of ``node`` at ``level`` (escalations are decided separately)."""
    approval = getattr(node, "approval", None)
    effects = side_effects_of(node)
    if approval == "never":
        return None
    if approval == "always":
        return GateRule("before", "always") if effects else GateRule("after", "always")
    if approval == "on_side_effect":
        return GateRule("before", "side_effect") if effects and level != "full" else None
    if approval == "on_escalation":
        return None
    if effects and level in ("suggest", "ask"):
        return GateRule("before", "side_effect")
    if level == "suggest" and (node.kind == "llm" or (node.kind == "map" and node.node.kind == "llm")):
        return GateRule("after", "model_step")
    return None


def escalation_waits(level: str, node: Any, could_pass_budget: bool) -> bool:
    """Whether escalating ``node``'s cascade to a pricier rung needs a person first."""
    approval = getattr(node, "approval", None)
    if approval == "never":
        return False
    if level == "full":
        return False
    return approval == "on_escalation" or could_pass_budget


def needs_gate(level: str, spec: Any) -> bool:
    """True when some node of ``spec`` could stop at ``level`` (otherwise the run needs no gate)."""
    for node in spec.nodes:
        if node_rule(level, node) is not None:
            return True
        if getattr(node, "strategy", None) == "cascade" and escalation_waits(level, node, True):
            return True
        if node.kind == "llm" and level != "full" and getattr(node, "approval", None) != "never":
            return True  # a call whose worst case could pass the budget waits (checked at run time)
    return False

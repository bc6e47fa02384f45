"""Running a pipeline on other models than it names: ``--model`` and ``--ladder``.

A pipeline written for the offline local model should run on any litellm model without editing
the file. ``ladder`` replaces the rungs of every ``cascade``/``route`` node; ``model`` becomes the
default model and, when no ladder is given, a one-rung ladder (verification without escalation).
Nodes that name a fixed ``model:`` keep it.
"""

from __future__ import annotations

from typing import Sequence

from contextflow.dags.spec import LLMNode, MapNode, Node, PipelineSpec


def parse_ladder(text: str | None) -> list[str] | None:
    if not text:
        return None
    rungs = [part.strip() for part in text.split(",") if part.strip()]
    return rungs or None


def _override(node: Node, model: str | None, ladder: Sequence[str] | None) -> Node:
    if isinstance(node, MapNode):
        return node.model_copy(update={"node": _override(node.node, model, ladder)})
    if not isinstance(node, LLMNode) or node.strategy == "fixed":
        return node
    rungs = list(ladder) if ladder else ([model] if model else None)
    return node.model_copy(update={"models": rungs}) if rungs else node


def apply_model_overrides(spec: PipelineSpec, *, model: str | None = None,
                          ladder: Sequence[str] | None = None) -> PipelineSpec:
    """A copy of ``spec`` running on ``model`` / ``ladder`` (see the module docstring)."""
    if not model and not ladder:
        return spec
    defaults = spec.defaults.model_copy(update={"model": model}) if model else spec.defaults
    nodes = [_override(node, model, ladder) for node in spec.nodes]
    return spec.model_copy(update={"defaults": defaults, "nodes": nodes})

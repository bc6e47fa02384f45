"""Running a pipeline on other models than it names: ``--model``, ``--ladder`` and API keys.

A pipeline written for the offline local model should run on any litellm model without editing
the file. ``ladder`` replaces the rungs of every ``cascade``/``route`` node; ``model`` becomes the
default model and, when no ladder is given, a one-rung ladder (verification without escalation).
Nodes that name a fixed ``model:`` keep it.

When the user names no model and a provider's API key is set, :func:`apply_key_ladder` moves what
was meant for the offline local model (local-only ladders, a local default model) onto that
provider's cheap-to-strong ladder; models a pipeline names explicitly stay as they are.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

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


#: Cheap first, strong last, for the first provider whose key is set (in this order).
KEY_LADDERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("OPENAI_API_KEY", ("gpt-4o-mini", "gpt-4o")),
    ("ANTHROPIC_API_KEY", ("claude-haiku-4-5", "claude-sonnet-4-5")),
    ("GEMINI_API_KEY", ("gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro")),
)
OFFLINE_ENV = "CONTEXTFLOW_OFFLINE"


def ladder_for_keys(environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The cheap-to-strong ladder of the first provider with an API key set, unless kept offline."""
    env = os.environ if environ is None else environ
    if env.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return None
    for key, ladder in KEY_LADDERS:
        if env.get(key):
            return list(ladder)
    return None


def _local_only(models: Sequence[str] | None) -> bool:
    return bool(models) and all(m.split("/", 1)[0] == "local" for m in models or ())


def _onto_ladder(node: Node, ladder: Sequence[str]) -> Node:
    if isinstance(node, MapNode):
        return node.model_copy(update={"node": _onto_ladder(node.node, ladder)})
    if isinstance(node, LLMNode) and node.strategy != "fixed" and _local_only(node.models):
        return node.model_copy(update={"models": list(ladder)})
    return node


def apply_key_ladder(spec: PipelineSpec, environ: Mapping[str, str] | None = None) -> tuple[PipelineSpec, list[str] | None]:
    """``spec`` with its local-model parts on the key's ladder, and that ladder (None: unchanged)."""
    ladder = ladder_for_keys(environ)
    if not ladder:
        return spec, None
    local_default = _local_only([spec.defaults.model] if spec.defaults.model else None)
    nodes = [_onto_ladder(node, ladder) for node in spec.nodes]
    if not local_default and nodes == list(spec.nodes):
        return spec, None
    defaults = spec.defaults.model_copy(update={"model": ladder[0]}) if local_default else spec.defaults
    return spec.model_copy(update={"defaults": defaults, "nodes": nodes}), ladder

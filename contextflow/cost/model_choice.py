"""Which models each llm node of a run calls: the one place that decides, for the CLI and the library.

``contextflow run FILE`` and ``run()``/``arun()`` both pass their options here and run what comes
back, so the same pipeline, flags and environment always give the same models. The rules, first
match wins:

1. ``model=`` (``--model``; ``$CONTEXTFLOW_MODEL`` when none is given) becomes the pipeline's
   default model and, unless a ladder is given, the one rung of every cascade/route node
   (verification without escalation).
2. ``ladder=`` (``--ladder``; ``$CONTEXTFLOW_LADDER``) replaces the rungs of every cascade/route
   node. Nodes with a fixed ``model:`` keep it under both.
3. With neither, an API key (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``: the
   first one set) moves what was meant for the local model onto that provider's cheap-to-strong
   ladder: local-only ladders, a local default model, and nodes that name no model at all.
   Models a pipeline names explicitly stay as written. ``CONTEXTFLOW_OFFLINE=1`` keeps
   everything local.
4. A fixed node naming no model runs on the pipeline's default model; without one, on the key
   provider's cheap model (not offline), else on the embedded local model.
5. With ``plan=True`` the budget planner (:func:`contextflow.cost.planner.plan_rungs`) caps each
   ladder at the best rung the run's budget affords, and the capped ladder is what a call may
   step down within as the budget drains (:meth:`ModelChoice.step_down_ladder`).

The choice is written into the spec (every llm node ends up naming its models), so the stored
run shows what ran and a resumed run keeps it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from contextflow.core.errors import UserError
from contextflow.cost import planner
from contextflow.dags.spec import LLMNode, MapNode, Node, PipelineSpec

LOCAL_DEFAULT_MODEL = "local/smollm2-135m"
MODEL_ENV = "CONTEXTFLOW_MODEL"
LADDER_ENV = "CONTEXTFLOW_LADDER"
OFFLINE_ENV = "CONTEXTFLOW_OFFLINE"

#: Cheap first, strong last, for the first provider whose key is set (in this order).
KEY_LADDERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("OPENAI_API_KEY", ("gpt-4o-mini", "gpt-4o")),
    ("ANTHROPIC_API_KEY", ("claude-haiku-4-5", "claude-sonnet-4-5")),
    ("GEMINI_API_KEY", ("gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro")),
)


def parse_ladder(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a, b"`` or ``["a", "b"]`` -> ``("a", "b")``; None when nothing is named."""
    if not value:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    rungs = tuple(str(part).strip() for part in parts if str(part).strip())
    return rungs or None


def is_offline(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def ladder_for_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...] | None:
    """The cheap-to-strong ladder of the first provider with an API key set, unless kept offline."""
    env = os.environ if environ is None else environ
    if is_offline(env):
        return None
    for key, ladder in KEY_LADDERS:
        if env.get(key):
            return ladder
    return None


@dataclass(frozen=True)
class ModelOptions:
    """What a run was asked for: the inputs of model choice, and all of them (so resume can replay)."""

    model: str | None = None
    ladder: tuple[str, ...] | None = None
    #: The hosted ladder an API key offers; None offline or without a key.
    key_ladder: tuple[str, ...] | None = None

    @classmethod
    def from_environment(cls, *, model: str | None = None, ladder: str | Sequence[str] | None = None,
                         environ: Mapping[str, str] | None = None) -> "ModelOptions":
        """The options of a run given ``model``/``ladder``, with the environment's forms of each."""
        env = os.environ if environ is None else environ
        return cls(
            model=(model or env.get(MODEL_ENV, "")).strip() or None,
            ladder=parse_ladder(ladder) or parse_ladder(env.get(LADDER_ENV)),
            key_ladder=ladder_for_keys(env),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ladder": list(self.ladder) if self.ladder else None,
                "key_ladder": list(self.key_ladder) if self.key_ladder else None}



@dataclass(frozen=True)
class NodeModels:
    """One llm node's models: what it calls, in order, and the ladder it may step down within."""

    node_id: str
    strategy: str
    models: tuple[str, ...]
    step_down: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "models": list(self.models),
                "step_down": list(self.step_down) if self.step_down else None}


@dataclass(frozen=True)
class ModelChoice:
    """The outcome: the spec with every llm node's models written in, and a summary per node."""

    spec: PipelineSpec
    options: ModelOptions
    nodes: Mapping[str, NodeModels] = field(default_factory=dict)
    #: The API key's ladder, when it moved (or filled in) something meant for the local model.
    hosted_ladder: tuple[str, ...] | None = None
    #: ``{node_id: rung}`` the budget planner chose (None when the run does not plan).
    planned: Mapping[str, str] | None = None

    def step_down_ladder(self, node_id: str) -> tuple[str, ...] | None:
        """The rungs (cheapest first) a call of ``node_id`` may step down within; None: no stepping."""
        node = self.nodes.get(node_id)
        return node.step_down if node is not None else None

    def explain(self) -> dict[str, Any]:
        """Plain data for ``contextflow run --explain-models``."""
        return {"nodes": {n: m.to_dict() for n, m in self.nodes.items()},
                "hosted_ladder": list(self.hosted_ladder) if self.hosted_ladder else None,
                "planned": dict(self.planned) if self.planned else None}


def choose_models(spec: PipelineSpec, options: ModelOptions | None = None, *, plan: bool = False,
                  budget: Any = None, planned: Mapping[str, str] | None = None) -> ModelChoice:
    """Every llm node's models for a run of ``spec`` (see the module docstring for the rules).

    ``options`` default to :meth:`ModelOptions.from_environment` with nothing given. ``plan``:
    cap the ladders with the budget planner (``budget``: a BudgetSpec or dollars; default the
    pipeline's). ``planned``: rungs an earlier plan already applied to ``spec`` (a resumed run),
    so the ladders are kept and only the step-down ladders are worked out again.
    """
    options = options if options is not None else ModelOptions.from_environment()
    resolved, hosted = _resolve(spec, options)
    if plan:
        planned = planner.plan_rungs(resolved, budget)
        resolved = planner.apply_plan(resolved, planned)
    step_down = planner.planned_ladders(resolved) if planned else {}
    nodes = {
        node.id: NodeModels(node.id, inner.strategy, tuple(models_to_call(inner)),
                            tuple(step_down[node.id]) if node.id in step_down else None)
        for node in resolved.nodes
        if isinstance(inner := _llm_of(node), LLMNode)
    }
    return ModelChoice(resolved, options, MappingProxyType(nodes), hosted,
                       MappingProxyType(dict(planned)) if planned else None)


def models_to_call(node: LLMNode) -> list[str]:
    """The models a node of a chosen spec calls, in order: a cascade/route's ladder, or a fixed
    node's model followed by its fallbacks."""
    if node.strategy != "fixed" and node.models:
        return list(node.models)
    if not node.model:
        raise UserError(f"llm node '{node.id}' has no model chosen",
                        hint="run the pipeline with contextflow.run()/arun(), which choose every node's models")
    return [node.model, *[m for m in node.fallbacks if m != node.model]]


# -- the rules -------------------------------------------------------------------------------

def _resolve(spec: PipelineSpec, options: ModelOptions) -> tuple[PipelineSpec, tuple[str, ...] | None]:
    """The spec with rules 1-4 applied, and the key's ladder when the key decided some model."""
    key_ladder = options.key_ladder
    chosen_by_user = bool(options.model or options.ladder)
    default = options.model or spec.defaults.model
    default_from_key = False
    if not chosen_by_user and key_ladder and _local_only([default] if default else None):
        default, default_from_key = key_ladder[0], True
    if default is None:
        default = key_ladder[0] if key_ladder else LOCAL_DEFAULT_MODEL
        default_from_key = key_ladder is not None
    decided_by_key = False

    def choose(node: LLMNode) -> LLMNode:
        nonlocal decided_by_key
        update: dict[str, Any] = {}
        if node.strategy != "fixed":
            if chosen_by_user:
                update["models"] = list(options.ladder or (options.model,))  # type: ignore[arg-type]
            elif key_ladder and _local_only(node.models):
                update["models"] = list(key_ladder)
                decided_by_key = True
        elif not node.model:
            update["model"] = default
            decided_by_key = decided_by_key or default_from_key
        return node.model_copy(update=update) if update else node

    nodes = [_map_llm(node, choose) for node in spec.nodes]
    moved = decided_by_key or (default_from_key and spec.defaults.model is not None)
    hosted = key_ladder if moved and not chosen_by_user else None
    has_llm = any(isinstance(_llm_of(node), LLMNode) for node in spec.nodes)
    if all(new is old for new, old in zip(nodes, spec.nodes)) and (not has_llm or default == spec.defaults.model):
        return spec, hosted  # nothing to choose (no llm node, or every model already named)
    defaults = spec.defaults.model_copy(update={"model": default})  # the model nodes without one run on
    return spec.model_copy(update={"defaults": defaults, "nodes": nodes}), hosted


def _local_only(models: Sequence[str] | None) -> bool:
    return bool(models) and all(m.split("/", 1)[0] == "local" for m in models or ())


def _llm_of(node: Node) -> Any:
    return node.node if isinstance(node, MapNode) else node


def _map_llm(node: Node, choose: Callable[[LLMNode], LLMNode]) -> Node:
    if isinstance(node, MapNode) and isinstance(node.node, LLMNode):
        return node.model_copy(update={"node": choose(node.node)})
    if isinstance(node, LLMNode):
        return choose(node)
    return node

"""Budget-aware planning: which rung each llm node starts on so the run fits its budget.

Before a run: each llm node's expected and worst-case cost per rung, from its counted prompt
tokens (templates rendered with placeholders, since upstream values are not known yet) and its
output limit, priced by the catalog. Rungs are chosen to maximise the summed prior quality
(``catalog.quality_of``) while the *worst case* of the whole plan fits the budget, so the plan
alone can never pass a hard cap. During the run, :func:`step_down` picks the best rung whose
worst case still fits what is left; the scheduler's reservations remain the hard guard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from contextflow.core import catalog
from contextflow.core.rungs import Rung, parse_rung
from contextflow.core.errors import UserError
from contextflow.core.tokens import count_tokens

DEFAULT_OUTPUT_TOKENS = 1024
# Outputs rarely use their whole limit; the expected cost assumes this share of it.
EXPECTED_OUTPUT_SHARE = 0.35
_REF = re.compile(r"\$\{[^}]*\}")


@dataclass(frozen=True)
class RungEstimate:
    rung: str
    quality: float
    expected_usd: float
    worst_usd: float


@dataclass(frozen=True)
class NodeEstimate:
    node_id: str
    prompt_tokens: int
    output_tokens: int
    rungs: tuple[RungEstimate, ...]


def estimate_rung(rung: str | Rung, prompt_tokens: int, output_tokens: int) -> RungEstimate:
    parsed = rung if isinstance(rung, Rung) else parse_rung(rung)
    info = catalog.lookup(parsed.model)
    if info is None:
        try:
            catalog.get(parsed.model)
        except catalog.UnknownModelError as exc:
            raise UserError(f"the planner cannot price rung '{parsed.name}': {exc}",
                            hint="declare its prices under models: in the pipeline") from None
    out = int(output_tokens * parsed.output_factor)
    worst = info.cost(prompt_tokens, out)
    expected = info.cost(prompt_tokens, int(out * EXPECTED_OUTPUT_SHARE))
    return RungEstimate(parsed.name, catalog.quality_of(parsed.name), expected, worst)


def estimate_node(node: Any, *, ref_tokens: int = 200, default_model: str | None = None) -> NodeEstimate | None:
    """Estimates for an llm node's rungs (cheapest first); None for other node kinds."""
    if getattr(node, "kind", None) != "llm":
        return None

    ladder = list(node.models or ([node.model] if node.model else ([default_model] if default_model else [])))
    if not ladder:
        raise UserError(f"node '{node.id}' names no model", hint="set model:, models:, or defaults.model")
    texts = [node.prompt or "", node.system or ""] + [m.content for m in (node.messages or [])]
    model_for_tokens = parse_rung(ladder[-1]).model
    prompt_tokens = 0
    for text in texts:
        refs = len(_REF.findall(text))
        prompt_tokens += count_tokens(_REF.sub("", text), model_for_tokens) + refs * ref_tokens
    output = int(node.max_output_tokens or (node.params or {}).get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
    rungs = tuple(estimate_rung(r, prompt_tokens, output) for r in ladder)
    if getattr(node, "strategy", "fixed") == "cascade":
        rungs = _cascade_totals(rungs)
    return NodeEstimate(node.id, prompt_tokens, output, rungs)


def _cascade_totals(rungs: tuple[RungEstimate, ...]) -> tuple[RungEstimate, ...]:
    """A cascade capped at rung i may pay for every rung up to i: its worst case is their sum.

    Expected cost weights each rung by the chance the cascade reaches it (every cheaper rung
    failed, taking a rung's prior quality as its chance of passing); quality is the chance that
    some rung passes.
    """
    out, reach, worst, expected = [], 1.0, 0.0, 0.0
    for rung in rungs:
        worst += rung.worst_usd
        expected += reach * rung.expected_usd
        reach *= 1.0 - rung.quality
        out.append(RungEstimate(rung.rung, 1.0 - reach, expected, worst))
    return tuple(out)


def choose_rungs(estimates: Sequence[NodeEstimate], budget_usd: float | None) -> dict[str, str]:
    """Per node, the rung to use: all best rungs when they fit; else greedy downgrades.

    Greedy by the smallest quality lost per dollar saved, until the worst case fits. When even
    every cheapest rung does not fit, that is a clear error before any money is spent.
    """
    choice = {e.node_id: len(e.rungs) - 1 for e in estimates}
    by_id = {e.node_id: e for e in estimates}

    def worst_total() -> float:
        return sum(by_id[n].rungs[i].worst_usd for n, i in choice.items())

    if budget_usd is None:
        return {n: by_id[n].rungs[i].rung for n, i in choice.items()}
    while worst_total() > budget_usd + 1e-12:
        best: tuple[float, str] | None = None
        for node_id, index in choice.items():
            if index == 0:
                continue
            here, below = by_id[node_id].rungs[index], by_id[node_id].rungs[index - 1]
            saved = here.worst_usd - below.worst_usd
            if saved <= 0:
                continue
            loss_per_dollar = (here.quality - below.quality) / saved
            if best is None or loss_per_dollar < best[0]:
                best = (loss_per_dollar, node_id)
        if best is None:
            raise UserError(
                f"the budget of ${budget_usd:.4f} cannot cover even the cheapest rungs "
                f"(worst case ${worst_total():.4f})",
                hint="raise budget.max_cost_usd, lower max_output_tokens, or add cheaper models",
            )
        choice[best[1]] -= 1
    return {n: by_id[n].rungs[i].rung for n, i in choice.items()}


def plan_rungs(plan: Any, budget: Any = None, *, default_model: str | None = None) -> dict[str, str]:
    """The planner's entry point for the scheduler: ``{node_id: rung}`` for every llm node.

    ``plan`` is a dags Plan (or a PipelineSpec); ``budget`` a BudgetSpec, a runtime Budget, a
    number of dollars, or None.
    """
    spec = getattr(plan, "spec", plan)
    defaults = getattr(spec, "defaults", None)
    default_model = default_model or getattr(defaults, "model", None)
    if budget is None and defaults is not None:
        budget = defaults.budget
    estimates = [e for node in spec.nodes if (e := estimate_node(node, default_model=default_model))]
    return choose_rungs(estimates, _dollars(budget))


def apply_plan(spec: Any, rungs: Mapping[str, str]) -> Any:
    """A copy of ``spec`` whose llm nodes climb no higher than their planned rung.

    A cascade or route keeps its ladder up to that rung; a ladder cut to one rung becomes a fixed
    node on it. Nodes without a ladder are unchanged.
    """
    nodes = []
    for node in spec.nodes:
        chosen = rungs.get(node.id)
        names = [parse_rung(r).name for r in (getattr(node, "models", None) or [])]
        if getattr(node, "kind", None) != "llm" or chosen not in names:
            nodes.append(node)
            continue
        capped = list(node.models[: names.index(chosen) + 1])
        if len(capped) == 1 or node.strategy == "fixed":
            nodes.append(node.model_copy(update={"strategy": "fixed", "model": capped[-1], "models": capped}))
        else:
            nodes.append(node.model_copy(update={"models": capped}))
    return spec.model_copy(update={"nodes": nodes})


def planned_ladders(spec: Any) -> dict[str, list[str]]:
    """Per llm node with a ladder, the rungs it may step down to during the run (cheapest first)."""
    return {n.id: list(n.models) for n in spec.nodes if getattr(n, "kind", None) == "llm" and n.models}


def step_down(ladder: Sequence[str], prompt_tokens: int, output_tokens: int, remaining_usd: float | None,
              *, preferred: str | None = None) -> str | None:
    """During a run: the best rung (not above ``preferred``) whose worst case fits what is left.

    None when no rung fits; the scheduler then stops the node with a budget error.
    """
    names = [parse_rung(r).name for r in ladder]
    top = names.index(preferred) if preferred in names else len(names) - 1
    for rung in reversed(ladder[: top + 1]):
        estimate = estimate_rung(rung, prompt_tokens, output_tokens)
        if remaining_usd is None or estimate.worst_usd <= remaining_usd:
            return estimate.rung
    return None


def _dollars(budget: Any) -> float | None:
    if budget is None or isinstance(budget, (int, float)):
        return None if budget is None else float(budget)
    if hasattr(budget, "max_cost_usd"):
        return budget.max_cost_usd
    caps = getattr(budget, "caps", None)
    cap = getattr(caps, "max_cost_usd", None)
    if cap is None:
        return None
    return max(0.0, float(cap) - float(budget.spent_cost_usd))

"""Budget-aware planning: rungs chosen within a budget, steps down as it drains, never past a cap."""

from __future__ import annotations

import pytest

from contextflow.core import catalog
from contextflow.cost.planner import choose_rungs, estimate_node, plan_rungs, step_down
from contextflow.dags.spec import BudgetSpec, LLMNode, PipelineSpec
from contextflow.core.errors import UserError

LADDER = ["gpt-4o-mini", "gpt-4o"]


def spec(budget: float | None, nodes: int = 3) -> PipelineSpec:
    return PipelineSpec(name="p", nodes=[
        LLMNode(id=f"n{i}", prompt="Summarise this change: ${inputs.diff}" * (i + 1), models=LADDER,
                strategy="cascade", max_output_tokens=500) for i in range(nodes)
    ], defaults={"budget": {"max_cost_usd": budget}})


def worst(node_estimates, choice) -> float:
    return sum(next(r.worst_usd for r in e.rungs if r.rung == choice[e.node_id]) for e in node_estimates)


def test_estimates_price_counted_prompt_tokens_and_the_output_limit() -> None:
    estimate = estimate_node(LLMNode(id="a", prompt="hello world", model="gpt-4o", max_output_tokens=100))
    info = catalog.get("gpt-4o")
    assert estimate.prompt_tokens == 2 and estimate.output_tokens == 100
    assert estimate.rungs[0].worst_usd == pytest.approx(info.cost(2, 100))
    assert estimate.rungs[0].expected_usd < estimate.rungs[0].worst_usd


def test_a_generous_budget_keeps_every_best_rung() -> None:
    assert set(plan_rungs(spec(100.0)).values()) == {"gpt-4o"}


def test_a_tight_budget_steps_nodes_down_and_the_worst_case_fits() -> None:
    estimates = [estimate_node(n) for n in spec(None).nodes]
    all_best = sum(e.rungs[-1].worst_usd for e in estimates)
    all_cheap = sum(e.rungs[0].worst_usd for e in estimates)
    budget = (all_best + all_cheap) / 2
    choice = plan_rungs(spec(budget))
    assert "gpt-4o-mini" in choice.values() and "gpt-4o" in choice.values()
    assert worst(estimates, choice) <= budget


def test_a_budget_below_the_cheapest_plan_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="cannot cover even the cheapest rungs"):
        plan_rungs(spec(1e-9))


def test_reasoning_effort_rungs_cost_more_and_rank_higher() -> None:
    node = LLMNode(id="r", prompt="think", models=["o3-mini@low", "o3-mini@high"], max_output_tokens=1000)
    low, high = estimate_node(node).rungs
    assert high.worst_usd == pytest.approx(low.worst_usd + 3000 * catalog.get("o3-mini").output_cost_per_token, rel=1e-6)
    assert high.quality > low.quality
    assert choose_rungs([estimate_node(node)], low.worst_usd * 1.01) == {"r": "o3-mini@low"}


def test_step_down_as_the_budget_drains() -> None:
    best = step_down(LADDER, 1000, 500, remaining_usd=1.0)
    assert best == "gpt-4o"
    mini_worst = catalog.get("gpt-4o-mini").cost(1000, 500)
    assert step_down(LADDER, 1000, 500, remaining_usd=mini_worst * 1.5) == "gpt-4o-mini"
    assert step_down(LADDER, 1000, 500, remaining_usd=mini_worst / 2) is None
    assert step_down(LADDER, 1000, 500, remaining_usd=None, preferred="gpt-4o-mini") == "gpt-4o-mini"


def test_runtime_budget_object_counts_what_is_spent() -> None:
    from contextflow.cost.budget import Budget

    budget = Budget.from_spec(BudgetSpec(max_cost_usd=1.0))
    estimates = [estimate_node(n) for n in spec(None).nodes]
    all_best = sum(e.rungs[-1].worst_usd for e in estimates)
    budget = Budget.from_spec(BudgetSpec(max_cost_usd=all_best * 1.5))
    assert set(plan_rungs(spec(None), budget).values()) == {"gpt-4o"}
    spent = all_best  # after spending two thirds of it, the rest no longer covers the best rungs
    budget.settle(budget.reserve(spent, 10), spent, 10)
    assert "gpt-4o-mini" in plan_rungs(spec(None), budget).values()


def test_an_unpriced_rung_is_a_clear_error_and_sim_models_have_default_prices() -> None:
    with pytest.raises(UserError, match="cannot price rung 'nosuch/model'"):
        plan_rungs(PipelineSpec(name="p", nodes=[LLMNode(id="a", prompt="hi", model="nosuch/model")]), 1.0)
    assert plan_rungs(PipelineSpec(name="p", nodes=[LLMNode(id="a", prompt="hi", model="sim/unseen")]), 1.0) == {
        "a": "sim/unseen"}

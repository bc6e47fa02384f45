"""Model ladders: how an ``llm`` node with several models decides which to call.

``fixed`` calls the node's model (fallbacks after it). ``cascade`` tries the ladder cheapest
first and escalates while the node's ``verify:`` checks fail (the checks are
``contextflow.cost.verifiers``). ``route`` asks a trained router (``contextflow.cost.router``)
which rung the prompt needs. This is the one place the scheduler chooses models, so smarter
policies plug in here without touching the call loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contextflow.core.attempts import EscalationStop, RoutingDecision, Verdict
from contextflow.core.errors import UserError
from contextflow.core.rungs import parse_rung
from contextflow.core.events import Usage
from contextflow.cost.router import Router
from contextflow.cost.verifiers import run_verifiers
from contextflow.dags.spec import LLMNode
from contextflow.runtime.attempts import NodeError, NodeHeld
from contextflow.runtime.context import RunContext
from contextflow.runtime.gates import Escalation, Hold
from contextflow.runtime.llm import CallOutcome, LLMCaller


async def call_by_strategy(caller: LLMCaller, models: list[str], messages: list[dict[str, Any]]) -> CallOutcome:
    node = caller.node
    if node.strategy == "cascade":
        return await _cascade(caller, node.models or models[:1], messages)
    if node.strategy == "route":
        chosen, decision = _route(caller.ctx, node, messages)
        outcome = await caller.call_with_fallbacks([chosen, *node.fallbacks], messages)
        return caller.finish(outcome, routing=decision)
    return caller.finish(await caller.call_with_fallbacks(models, messages))


async def _cascade(caller: LLMCaller, ladder: list[str], messages: list[dict[str, Any]]) -> CallOutcome:
    """Climb ``ladder`` while the answer fails its checks; each rung's call is recorded with its
    verdicts (and, when the climb stops for the budget, why)."""
    last: CallOutcome | None = None
    for rung, model in enumerate(ladder):
        try:
            outcome = await caller.call_with_fallbacks([model], messages)
        except NodeError:
            if rung == len(ladder) - 1:
                raise
            continue
        verdicts = tuple(await run_verifiers(
            caller.node.verify, outcome.value, text=outcome.text, workdir=caller.ctx.workdir,
            schema=caller.node.output_schema, scope=caller.scope,
        ))
        _book_verifier_spend(caller, verdicts)
        last = outcome
        if all(v.passed for v in verdicts):
            return caller.finish(outcome, verdicts=verdicts, rung=rung)
        if rung + 1 == len(ladder):
            caller.finish(outcome, verdicts=verdicts, rung=rung)
            break
        upper = ladder[rung + 1]
        cost, tokens = caller.rung_worst_case(upper, messages)
        held = await _ask_guard(caller, outcome.model, upper, cost, tokens)
        if held is not None:
            caller.finish(outcome, verdicts=verdicts, rung=rung)
            raise NodeHeld(held.waiting, caller.spend)
        stopped = _unaffordable(caller, upper, cost)
        if stopped is not None:
            return caller.finish(outcome, verdicts=verdicts, rung=rung, escalation_stopped=stopped)
        caller.finish(outcome, verdicts=verdicts, rung=rung)
    assert last is not None
    return last


def _unaffordable(caller: LLMCaller, model: str, worst_usd: float) -> EscalationStop | None:
    """Why a budget-planned run keeps this answer instead of climbing to ``model``, or None.

    With budget-aware planning (``plan_models``) the run steps down as the budget drains: a rung
    whose worst case no longer fits what is left is not tried, and the answer in hand (with its
    failed verdicts on record) is kept rather than lost to a refused reservation. Without
    planning the climb goes on and the hard cap refuses it, as the run asked.
    """
    ctx = caller.ctx
    if caller.node_id not in ctx.model_plan or ctx.budget.caps.max_cost_usd is None:
        return None
    fit = ctx.budget.fits(worst_usd, 0, model=parse_rung(model).model)
    if fit:
        return None
    return EscalationStop(model, round(fit.cost_usd, 8), round(fit.left_cost_usd or 0.0, 8), "budget")


async def _ask_guard(caller: LLMCaller, from_model: str, to_model: str, cost: float, tokens: int) -> Hold | None:
    """Ask the run's escalation guard (its gate, ``contextflow.runtime.gates``) before stepping up
    to ``to_model``; a Hold stops the node there for a person."""
    guard = caller.ctx.escalation_guard
    if guard is None:
        return None
    verdict = await guard(caller.ctx, Escalation(caller.node_id, caller.node, from_model, to_model, cost, tokens))
    return verdict if isinstance(verdict, Hold) else None


def _book_verifier_spend(caller: LLMCaller, verdicts: tuple[Verdict, ...]) -> None:
    """A judge verifier calls a model: its cost is part of the node's and the run's spend.

    The judge's call is made by the verifier, so it is booked after the fact (not reserved first).
    """
    cost = sum(v.cost_usd for v in verdicts)
    used = Usage(
        sum(int(v.usage.get("input_tokens", 0)) for v in verdicts),
        sum(int(v.usage.get("output_tokens", 0)) for v in verdicts),
    )
    if not cost and not used.total_tokens:
        return
    caller.spend.cost_usd += cost
    caller.spend.usage.add(used)
    caller.ctx.budget.book(cost, used.total_tokens)


def _route(ctx: RunContext, node: LLMNode, messages: list[dict[str, Any]]) -> tuple[str, RoutingDecision]:
    if not node.router:
        raise UserError(f"node '{node.id}' uses strategy: route but names no router", hint="add router: PATH")
    path = Path(node.router)
    if not path.exists() and ctx.state is not None:
        path = ctx.state.routers_dir / node.router
    router = Router.load(path)
    prompt = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "user")
    model, decision = router.choose(prompt, list(node.models or []))
    return model, RoutingDecision.from_dict(decision)

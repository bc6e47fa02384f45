"""Model ladders: how an ``llm`` node with several models decides which to call.

``fixed`` calls the node's model (fallbacks after it). ``cascade`` tries the ladder cheapest
first and escalates while the node's ``verify:`` checks fail (the checks are
``contextflow.cost.verifiers``). ``route`` asks a trained router (``contextflow.cost.router``)
which rung the prompt needs. This is the one place the scheduler chooses models, so smarter
policies plug in here without touching the call loop.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from contextflow.cost.budget import Caps
from contextflow.dags.spec import LLMNode
from contextflow.core.errors import UserError
from contextflow.runtime.attempts import NodeError
from contextflow.runtime.context import RunContext
from contextflow.core.events import AttemptChecked, Usage
from contextflow.runtime.llm import CallOutcome, LLMCaller
from contextflow.cost.verifiers import run_verifiers
from contextflow.cost.router import Router


async def call_by_strategy(caller: LLMCaller, models: list[str], messages: list[dict[str, Any]]) -> CallOutcome:
    node = caller.node
    if node.strategy == "cascade":
        return await _cascade(caller, node.models or models[:1], messages)
    if node.strategy == "route":
        chosen, decision = _route(caller.ctx, node, messages)
        outcome = await caller.call_with_fallbacks([chosen, *node.fallbacks], messages)
        if caller.spend.attempts:
            caller.spend.attempts[-1]["routing"] = decision
            _announce(caller, routing=decision)
        return outcome
    return await caller.call_with_fallbacks(models, messages)


async def _cascade(caller: LLMCaller, ladder: list[str], messages: list[dict[str, Any]]) -> CallOutcome:
    last: CallOutcome | None = None
    for rung, model in enumerate(ladder):
        try:
            outcome = await caller.call_with_fallbacks([model], messages)
        except NodeError:
            if rung == len(ladder) - 1:
                raise
            continue
        verdicts = await run_verifiers(
            caller.node.verify, outcome.value, text=outcome.text, workdir=caller.ctx.workdir,
            schema=caller.node.output_schema, scope=caller.scope,
        )
        records = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else dict(v) for v in verdicts]
        _account_verifier_spend(caller, records)
        if caller.spend.attempts:
            caller.spend.attempts[-1]["verdicts"] = records
            caller.spend.attempts[-1]["rung"] = rung
            _announce(caller, verdicts=records, rung=rung)
        last = outcome
        if all(r.get("passed") for r in records):
            return outcome
        if rung + 1 < len(ladder):
            await _before_escalation(caller, ladder[rung + 1], messages)
            stopped = _unaffordable(caller, ladder[rung + 1], messages)
            if stopped is not None:
                caller.spend.attempts[-1]["escalation_stopped"] = stopped
                return outcome
    assert last is not None
    return last


def _unaffordable(caller: LLMCaller, model: str, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Why a budget-planned run keeps this answer instead of climbing to ``model``, or None.

    With budget-aware planning (``plan_models``) the run steps down as the budget drains: a rung
    whose worst case no longer fits what is left is not tried, and the answer in hand (with its
    failed verdicts on record) is kept rather than lost to a refused reservation. Without
    planning the climb goes on and the hard cap refuses it, as the run asked.
    """
    left = caller.planned_cost_left()
    if left is None:
        return None
    worst = caller.rung_worst_case(model, messages)
    if worst <= left:
        return None
    return {"next": model, "worst_case_usd": round(worst, 8), "budget_left_usd": round(left, 8), "reason": "budget"}


def _announce(caller: LLMCaller, **checked: Any) -> None:
    """Send the last attempt's verdicts or routing decision to the trace (AttemptChecked)."""
    last = caller.spend.attempts[-1]
    caller.ctx.emit(AttemptChecked(caller.ctx.run_id, caller.node_id, last["attempt"], item=caller.item, **checked))


async def _before_escalation(caller: LLMCaller, model: str, messages: list[dict[str, Any]]) -> None:
    """Ask the run's escalation guard (set by the approval gate, ``contextflow.runtime.approvals``)
    before stepping up to ``model``; it raises to stop the node at a gate for a person."""
    guard = caller.ctx.extras.get("escalation_guard")
    if guard is not None:
        await guard(caller, model, messages)


def _account_verifier_spend(caller: LLMCaller, records: list[dict[str, Any]]) -> None:
    """A judge verifier calls a model: its cost is part of the node's and the run's spend.

    The judge's call is made by the verifier, so it is booked after the fact (not reserved first).
    """
    cost = sum(float(r.get("cost_usd") or 0.0) for r in records)
    used = Usage(
        sum(int((r.get("usage") or {}).get("input_tokens", 0)) for r in records),
        sum(int((r.get("usage") or {}).get("output_tokens", 0)) for r in records),
    )
    if not cost and not used.total_tokens:
        return
    caller.spend.cost_usd += cost
    caller.spend.usage.add(used)
    ledger = caller.ctx.budget.ledger
    ledger.settle(ledger.reserve(Caps(), 0.0, 0), cost, used.total_tokens)


def _route(ctx: RunContext, node: LLMNode, messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    if not node.router:
        raise UserError(f"node '{node.id}' uses strategy: route but names no router", hint="add router: PATH")
    path = Path(node.router)
    if not path.exists() and ctx.state is not None:
        path = ctx.state.routers_dir / node.router
    router = Router.load(path)
    prompt = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "user")
    model, decision = router.choose(prompt, list(node.models or []))
    return model, decision

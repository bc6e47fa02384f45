"""The scheduler applies each verdict a gate returns; the gate itself never runs a node."""

from __future__ import annotations

from typing import Any

import pytest

import runtime_helpers as rh
from contextflow.api import arun
from contextflow.core.events import NodeSkipped, NodeWaiting
from contextflow.core.results import Attempt, NodeResult, Usage
from contextflow.core.waiting import Waiting
from contextflow.runtime.gates import (
    PROCEED, Escalation, Fail, GateVerdict, Hold, OpenGate, ProceedWith, Replay, Skip,
)

ADD = f"{rh.PREFIX}:add"


class _Scripted(OpenGate):
    """Answers ``before``/``after`` for one node with a fixed verdict; everything else proceeds."""

    def __init__(self, node_id: str, before: GateVerdict = PROCEED, after: GateVerdict = PROCEED) -> None:
        self.node_id = node_id
        self._before = before
        self._after = after
        self.asked_after: list[str] = []

    async def before(self, ctx: Any, node_id: str, node: Any, scope: Any) -> GateVerdict:
        return self._before if node_id == self.node_id else PROCEED

    async def after(self, ctx: Any, node_id: str, node: Any, result: NodeResult) -> GateVerdict:
        self.asked_after.append(node_id)
        return self._after if node_id == self.node_id else PROCEED


def _chain() -> Any:
    return rh.pipeline([
        {"id": "a", "kind": "python", "function": ADD, "args": {"a": 1}},
        {"id": "b", "kind": "python", "function": ADD, "args": {"a": "${a}", "b": 10}},
        {"id": "c", "kind": "python", "function": ADD, "args": {"a": "${b}"}},
    ])


async def _run(gate: Any, events: list | None = None) -> Any:
    sinks = [events.append] if events is not None else []
    return await arun(_chain(), gate=gate, trace=False, cache=False, sinks=sinks)


async def test_proceed_runs_the_node_and_asks_after(state_home) -> None:
    gate = _Scripted("b")
    result = await _run(gate)
    assert result.status == "succeeded" and result.nodes["b"].value == 11
    assert gate.asked_after == ["a", "b", "c"]


async def test_proceed_with_runs_the_edited_node_in_place_of_the_planned_one(state_home) -> None:
    edited = _chain().nodes[1].model_copy(update={"args": {"a": "${a}", "b": 100}})
    result = await _run(_Scripted("b", before=ProceedWith(edited)))
    assert result.nodes["b"].value == 101 and result.nodes["c"].value == 101


async def test_proceed_with_earlier_spend_counts_it_in_the_result_and_the_budget(state_home) -> None:
    earlier = NodeResult("b", "waiting", usage=Usage(7, 3), cost_usd=0.25,
                         attempts=[Attempt(1, True, "sim/x", cost_usd=0.25, usage=Usage(7, 3))])
    spent: list[float] = []

    class _Watch(_Scripted):
        async def after(self, ctx: Any, node_id: str, node: Any, result: NodeResult) -> GateVerdict:
            spent.append(ctx.budget.totals().spent_cost_usd)
            return PROCEED

    node = _chain().nodes[1]
    result = await _run(_Watch("b", before=ProceedWith(node, earlier=earlier)))
    b = result.nodes["b"]
    assert b.status == "succeeded" and b.cost_usd == pytest.approx(0.25) and b.usage.total_tokens == 10
    assert b.attempts[0].model == "sim/x" and len(b.attempts) == 2  # the earlier call, then this run's try
    assert spent[1:] == [pytest.approx(0.25)] * 2  # booked before b ran; still there for c
    assert result.cost_usd == pytest.approx(0.25)


async def test_hold_stores_a_waiting_node_and_blocks_only_its_branch(state_home) -> None:
    events: list = []
    held = Waiting("before", "custom", gate="review", proposal={"why": "look first"})
    result = await _run(_Scripted("b", before=Hold(held)), events)
    assert result.status == "waiting"
    assert {n: r.status for n, r in result.nodes.items()} == {"a": "succeeded", "b": "waiting", "c": "pending"}
    assert result.nodes["b"].waiting == held and result.nodes["b"].value is None
    event = next(e for e in events if isinstance(e, NodeWaiting))
    assert event.waiting == held


async def test_skip_skips_the_node_and_what_depends_only_on_it(state_home) -> None:
    events: list = []
    result = await _run(_Scripted("b", before=Skip("not today")), events)
    assert {n: r.status for n, r in result.nodes.items()} == {"a": "succeeded", "b": "skipped", "c": "skipped"}
    assert next(e for e in events if isinstance(e, NodeSkipped) and e.node_id == "b").reason == "not today"


async def test_replay_uses_the_stored_result_and_books_its_spend(state_home) -> None:
    stored = NodeResult("b", "succeeded", 42, Usage(5, 5), 0.5, "sim/x", [Attempt(1, True, "sim/x", cost_usd=0.5)])
    seen: dict[str, float] = {}

    class _Watch(_Scripted):
        async def after(self, ctx: Any, node_id: str, node: Any, result: NodeResult) -> GateVerdict:
            self.asked_after.append(node_id)
            seen[node_id] = ctx.budget.totals().spent_cost_usd
            return PROCEED

    gate = _Watch("b", before=Replay(stored))
    result = await _run(gate)
    assert result.nodes["b"] is stored and result.nodes["c"].value == 42  # c got the stored value
    assert gate.asked_after == ["a", "c"]  # b did not run, so there was nothing to ask after it
    assert seen == {"a": 0.0, "c": pytest.approx(0.5)}  # its spend is in the books from then on
    assert result.cost_usd == pytest.approx(0.5)


async def test_a_replayed_waiting_result_is_not_booked(state_home) -> None:
    stored = NodeResult("b", "waiting", None, Usage(5, 5), 0.5, waiting=Waiting("after", "model_step", output=3))
    result = await _run(_Scripted("b", before=Replay(stored)))
    assert result.status == "waiting" and result.nodes["b"].waiting.output == 3
    assert result.nodes["c"].status == "pending"


async def test_fail_fails_the_node_and_blocks_its_branch(state_home) -> None:
    result = await _run(_Scripted("b", before=Fail("run aborted by someone", "rejected")))
    assert result.status == "failed"
    b = result.nodes["b"]
    assert (b.status, b.error_type, b.error) == ("failed", "rejected", "run aborted by someone")
    assert result.nodes["c"].status == "pending"


@pytest.mark.parametrize("verdict, status", [
    (Hold(Waiting("after", "model_step", output=11)), "waiting"),
    (Skip("rejected by a reviewer"), "skipped"),
    (Fail("not allowed"), "failed"),
])
async def test_after_verdicts_keep_what_the_node_spent(state_home, verdict: GateVerdict, status: str) -> None:
    result = await _run(_Scripted("b", after=verdict))
    b = result.nodes["b"]
    assert b.status == status and [a.ok for a in b.attempts] == [True]  # the try it made stays on record


async def test_a_verdict_that_is_not_one_fails_the_node_with_a_clear_message(state_home) -> None:
    result = await _run(_Scripted("b", before="yes please"))  # type: ignore[arg-type]
    assert result.nodes["b"].status == "failed"
    assert "not a gate verdict" in (result.nodes["b"].error or "")
    after = await _run(_Scripted("b", after=Replay(NodeResult("b", "succeeded", 1))))
    assert "after a node ran, a gate may answer Proceed, Hold, Skip or Fail" in (after.nodes["b"].error or "")


async def test_an_escalation_hold_stops_a_cascade_with_the_cheap_rungs_spend(state_home, sim_model) -> None:
    cheap = sim_model(reply="not sure", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    strong = sim_model(reply="ANSWER: 42", input_cost_per_token=1e-5, output_cost_per_token=1e-5)
    asked: list[Escalation] = []

    class _Guard(OpenGate):
        async def escalation(self, ctx: Any, escalation: Escalation) -> Any:
            asked.append(escalation)
            return Hold(Waiting("escalation", "escalation", proposal={"to_model": escalation.to_model}))

    spec = rh.pipeline([{"id": "solve", "kind": "llm", "prompt": "6 x 7?", "models": [cheap, strong],
                         "strategy": "cascade", "verify": [{"kind": "regex", "pattern": "ANSWER: [0-9]+"}]}])
    result = await arun(spec, gate=_Guard(), trace=False, cache=False)
    node = result.nodes["solve"]
    assert result.status == "waiting" and node.status == "waiting"
    assert [(e.from_model, e.to_model) for e in asked] == [(cheap, strong)] and asked[0].worst_case_cost_usd > 0
    assert node.waiting.proposal == {"to_model": strong}
    assert [a.model for a in node.attempts] == [cheap] and node.attempts[0].verdicts[0].passed is False
    assert node.cost_usd == pytest.approx(node.attempts[0].cost_usd) and node.cost_usd > 0

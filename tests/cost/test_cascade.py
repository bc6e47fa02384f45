"""Cascade escalation and its accounting: as pure policy, and through the scheduler's real path."""

from __future__ import annotations

from typing import Any

import pytest

from contextflow.cost.cascade import Answer, Cascade
from contextflow.core.rungs import Rung
from contextflow.dags.spec import VerifySpec

HAS_FINAL = VerifySpec(kind="regex", pattern=r"^#### \d+$", name="final")


def scripted(replies: dict[str, str], costs: dict[str, float], calls: list[str], fail: set[str] = frozenset()):
    async def call(rung: Rung) -> Answer:
        calls.append(rung.name)
        if rung.name in fail:
            raise RuntimeError(f"{rung.name} is down")
        return Answer(replies[rung.name], replies[rung.name], costs[rung.name], {"input_tokens": 10, "output_tokens": 5})
    return call


async def test_escalates_until_a_rung_passes_and_books_every_attempt() -> None:
    calls: list[str] = []
    replies = {"cheap": "about 12", "mid@high": "#### 12", "best": "#### 12"}
    costs = {"cheap": 0.001, "mid@high": 0.01, "best": 0.1}
    result = await Cascade(["cheap", "mid@high", "best"], [HAS_FINAL]).run(scripted(replies, costs, calls))
    assert calls == ["cheap", "mid@high"]  # the best rung is never paid for
    assert result.passed and result.model == "mid@high" and result.answer.text == "#### 12"
    assert [a.passed for a in result.attempts] == [False, True]
    assert [a.verdicts[0].passed for a in result.attempts] == [False, True]
    assert result.cost_usd == pytest.approx(0.011)


async def test_no_rung_passes_keeps_the_last_answer_and_all_costs() -> None:
    calls: list[str] = []
    replies = {"cheap": "x", "best": "y"}
    result = await Cascade(["cheap", "best"], [HAS_FINAL]).run(scripted(replies, {"cheap": 1.0, "best": 2.0}, calls))
    assert not result.passed and result.model == "best" and result.cost_usd == pytest.approx(3.0)
    assert len(result.attempts) == 2


async def test_a_failing_rung_is_recorded_and_skipped() -> None:
    calls: list[str] = []
    result = await Cascade(["cheap", "best"], [HAS_FINAL]).run(
        scripted({"best": "#### 3"}, {"best": 0.5}, calls, fail={"cheap"}))
    assert result.passed and result.model == "best"
    assert result.attempts[0].error == "RuntimeError: cheap is down" and result.attempts[0].cost_usd == 0


async def test_the_last_rung_failing_raises_with_the_attempts_attached() -> None:
    with pytest.raises(RuntimeError) as caught:
        await Cascade(["only"], []).run(scripted({}, {}, [], fail={"only"}))
    assert len(caught.value.cascade_attempts) == 1


async def test_judge_cost_is_part_of_the_cascade_cost() -> None:
    from contextflow.providers.simulated import configure

    configure("sim/judge-cascade", json_value={"score": 0.9, "reason": "fine"})
    judge = VerifySpec(kind="judge", model="sim/judge-cascade", rubric="is it right?", threshold=0.5)
    result = await Cascade(["cheap"], [judge]).run(scripted({"cheap": "ok"}, {"cheap": 0.001}, []))
    judge_cost = result.attempts[0].verdicts[0].cost_usd
    assert result.passed and judge_cost > 0
    assert result.cost_usd == pytest.approx(0.001 + judge_cost)


def test_start_rung_from_the_planner_skips_cheaper_rungs() -> None:
    assert Cascade(["a", "b", "c"], [], start=1).start == 1
    assert Cascade(["a", "b"], [], start=9).start == 1


def test_runtime_cascade_escalates_and_records_verdicts(state_home: Any) -> None:
    from contextflow.dags.spec import LLMNode, PipelineSpec
    from contextflow.providers import simulated
    from contextflow.api import run

    simulated.configure("weakling", reply="I am not sure", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("expert", reply="#### 42", input_cost_per_token=1e-5, output_cost_per_token=1e-5)
    spec = PipelineSpec(name="c", nodes=[LLMNode(id="q", prompt="What is six times seven?", strategy="cascade",
                                                 models=["sim/weakling", "sim/expert"], verify=[HAS_FINAL])])
    result = run(spec, trace=False)
    node = result.nodes["q"]
    assert node.value == "#### 42" and node.model == "sim/expert"
    calls = [a for a in node.attempts if a.ok]
    assert [a.model for a in calls] == ["sim/weakling", "sim/expert"]
    assert [a.verdicts[0].passed for a in calls] == [False, True]
    assert node.cost_usd == pytest.approx(sum(a.cost_usd for a in calls))

"""A call waiting for a provider slot is bounded by the run's wall time; a limit below 1 is refused."""

from __future__ import annotations

import asyncio

import pytest
import runtime_helpers as rh

from contextflow.api import arun
from contextflow.core.errors import UserError
from contextflow.cost.budget import Budget, BudgetExceeded
from contextflow.runtime.context import CallLimits


async def _hold(limits: CallLimits, model: str, holding: asyncio.Event, release: asyncio.Event) -> None:
    async with limits.slot(model):
        holding.set()
        await release.wait()


async def test_waiting_for_a_slot_stops_when_the_wall_budget_is_spent() -> None:
    budget = Budget(max_wall_s=0.2)
    limits = CallLimits({"sim": 1}, budget=budget)
    holding, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(limits, "sim/a", holding, release))
    await holding.wait()

    async def wait_for_slot() -> None:
        async with limits.slot("sim/b"):
            pytest.fail("the slot is held: this call must not start")

    with pytest.raises(BudgetExceeded) as caught:
        await asyncio.wait_for(wait_for_slot(), timeout=60)  # without the bound: waits for the holder
    assert caught.value.kind == "wall" and budget.exhausted is caught.value
    assert limits.in_flight == {"sim": 1}  # the waiter took nothing
    release.set()
    await holder
    assert limits.in_flight == {"sim": 0}


async def test_a_slot_that_frees_in_time_is_taken() -> None:
    limits = CallLimits({"sim/a": 1}, budget=Budget(max_wall_s=600))
    holding, release = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(limits, "sim/a", holding, release))
    await holding.wait()
    asyncio.get_running_loop().call_soon(release.set)
    async with limits.slot("sim/a"):
        assert limits.in_flight == {"sim/a": 1}
    await holder
    assert limits.peak == {"sim/a": 1}


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(UserError, match="could ever start"):
        CallLimits({"sim": limit})


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_run_with_a_zero_limit_fails_at_once(state_home, limit: int) -> None:
    spec = rh.pipeline([{"id": "a", "kind": "llm", "model": "sim/echo", "prompt": "hi"}],
                       defaults={"provider_limits": {"sim": limit}, "budget": {"max_wall_s": 600}})
    with pytest.raises(UserError, match="provider_limits 'sim'"):
        await asyncio.wait_for(arun(spec, trace=False, cache=False), timeout=120)

"""What every node handler of one run shares: the run's services and its concurrency limits.

Everything a handler may consult is a typed field of :class:`RunContext`; there is no dict of
extras for values to travel through unseen.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Mapping

from contextflow.cost.budget import Budget
from contextflow.core.errors import UserError
from contextflow.core.events import Event, EventBus
from contextflow.runtime.gates import EscalationGuard

if TYPE_CHECKING:
    from contextflow.dags.imports import Allowlist
    from contextflow.dags.spec import PipelineSpec
    from contextflow.runtime.cache import ResultCache
    from contextflow.runtime.executor import Executor
    from contextflow.core.state import StateDir


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else model


class CallLimits:
    """Per-model and per-provider caps on concurrent model calls (``defaults.provider_limits``).

    A key may name a provider (``openai``, ``sim``) or a full model (``sim/slow``); a call takes a
    slot of each key that matches it, so both kinds of cap hold at once.
    """

    def __init__(self, limits: dict[str, int] | None = None, *, budget: Budget | None = None) -> None:
        self._limits = dict(limits or {})
        for key, limit in self._limits.items():
            if limit < 1:  # a semaphore of 0 never opens: the run would wait forever
                raise UserError(f"provider_limits '{key}' is {limit}: no call to it could ever start",
                                hint="use 1 or more, or remove the key for no limit")
        self._budget = budget  # waiting for a slot counts against the run's wall time
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def _keys(self, model: str) -> list[str]:
        keys = [model] if model in self._limits else []
        provider = provider_of(model)
        if provider != model and provider in self._limits:
            keys.append(provider)
        return keys

    @asynccontextmanager
    async def slot(self, model: str) -> AsyncIterator[None]:
        keys = self._keys(model)
        if not keys:
            yield
            return
        taken: list[asyncio.Semaphore] = []
        try:
            for key in keys:  # always in the same order (model, then provider): no lock-order deadlock
                sem = self._semaphores.get(key)
                if sem is None:
                    sem = self._semaphores[key] = asyncio.Semaphore(self._limits[key])
                await self._acquire(sem)
                taken.append(sem)
                self.in_flight[key] = self.in_flight.get(key, 0) + 1
                self.peak[key] = max(self.peak.get(key, 0), self.in_flight[key])
            yield
        finally:
            for key, sem in zip(keys, taken):
                self.in_flight[key] -= 1
                sem.release()


    async def _acquire(self, sem: asyncio.Semaphore) -> None:
        """Wait for ``sem``, but no longer than the run's wall time: raises BudgetExceeded then."""
        while True:
            left = self._budget.remaining_wall_s() if self._budget is not None else None
            if left is None or not sem.locked():
                await sem.acquire()
                return
            self._budget.check_wall()  # type: ignore[union-attr]  # raises once the time is spent
            try:
                await asyncio.wait_for(sem.acquire(), timeout=left)
                return
            except asyncio.TimeoutError:
                continue  # check_wall decides: a timer may fire a hair early


@dataclass(slots=True)
class RunContext:
    run_id: str
    spec: "PipelineSpec"
    bus: EventBus
    budget: Budget
    executor: "Executor"
    limits: CallLimits
    allowlist: "Allowlist"
    state: "StateDir | None" = None
    cache: "ResultCache | None" = None
    workdir: Path = field(default_factory=Path.cwd)
    default_model: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Any] = asyncio.sleep
    # Planned ladders by node (``arun(plan_models=True)``): a call may step down these rungs.
    model_plan: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The run's gate, asked before a cascade escalates (set by the scheduler from its gate).
    escalation_guard: EscalationGuard | None = None

    def emit(self, event: Event) -> None:
        if self.bus:
            self.bus.emit(event)

"""What a run reports while it goes, between its node events: token deltas, tool calls and
budget warnings.

Token deltas: a model call streams (:func:`contextflow.runtime.calls.stream_model`) only when a
sink on the run's bus consumes :class:`TokenDelta` events and the executor runs calls in this
process, since the callback that emits them cannot cross to another process (a Dask worker). Any
other run makes the plain call: streaming costs a little per call and nobody would read it.

Budget warnings: :class:`BudgetWatch` sends one :class:`BudgetWarning` per cap when what the run
has spent passes :data:`WARNING_FRACTION` of it (cost and tokens, checked after every model
call; wall time, on a timer).

Tool calls: a tool node's call is reported as a :class:`ToolCallStarted` and a
:class:`ToolCallFinished` (:func:`reported_tool_call`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, TypeVar

from contextflow.core.events import (
    AttemptFinished,
    BudgetWarning,
    Event,
    EventBus,
    RunFinished,
    RunStarted,
    TokenDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from contextflow.cost.budget import Budget
from contextflow.runtime.calls import stream_model
from contextflow.runtime.context import RunContext
from contextflow.runtime.executor import LocalExecutor

#: a cap's share at which the run warns that it is running out
WARNING_FRACTION = 0.8
# Arguments a tool call event leaves out (the run's own working tree, added for built-ins) or
# shows only by name (an environment may hold secrets).
_HIDDEN_ARGUMENTS = frozenset({"workdir"})
_NAMES_ONLY_ARGUMENTS = frozenset({"env"})

S = TypeVar("S")


def model_call(
    ctx: RunContext, node_id: str, attempt: int, item: int | None, plain: Callable[..., Any], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The work function (and its arguments) for one model call attempt: streamed, with a
    :class:`TokenDelta` per piece, when the run's deltas are consumed; else ``plain`` (the
    caller's :func:`~contextflow.runtime.calls.call_model`) with ``kwargs`` as they are."""
    if not (ctx.bus.streams_tokens and isinstance(ctx.executor, LocalExecutor)):
        return plain, kwargs
    emit, run_id = ctx.bus.emit, ctx.run_id

    def on_delta(text: str) -> None:
        emit(TokenDelta(run_id, node_id, attempt, text, item=item))

    return stream_model, {**kwargs, "on_delta": on_delta}


class BudgetWatch:
    """An event sink that emits a :class:`BudgetWarning` when a cap is nearly spent.

    A warning is emitted on the next turn of the loop, not from inside the event that caused
    it, so every sink sees the model call's AttemptFinished before the warning it led to.
    """

    def __init__(self, budget: Budget, bus: EventBus, fraction: float = WARNING_FRACTION) -> None:
        self.budget = budget
        self.bus = bus
        self.fraction = fraction
        self.warned: set[str] = set()
        self._run_id = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, AttemptFinished):
            self.check()
        elif isinstance(event, RunStarted):
            self._run_id = event.run_id
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
            self.check()  # a resumed run may start above the mark
            self._start_wall_timer()
        elif isinstance(event, RunFinished) and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def check(self) -> None:
        caps = self.budget.caps
        if caps.max_cost_usd is None and caps.max_tokens is None:
            return
        totals = self.budget.totals()
        if caps.max_cost_usd is not None:
            self._maybe_warn("cost", totals.spent_cost_usd, caps.max_cost_usd)
        if caps.max_tokens is not None:
            self._maybe_warn("tokens", float(totals.spent_tokens), float(caps.max_tokens))

    def _maybe_warn(self, kind: str, spent: float, limit: float) -> None:
        if kind in self.warned or limit <= 0 or spent < self.fraction * limit:
            return
        self.warned.add(kind)
        self._send(BudgetWarning(self._run_id, kind, spent, limit, spent / limit))  # type: ignore[arg-type]

    def _start_wall_timer(self) -> None:
        cap = self.budget.max_wall_s
        if cap is None or self._loop is None or "wall" in self.warned:
            return
        delay = max(self.fraction * cap - self.budget.elapsed_s(), 0.0)
        self._timer = self._loop.call_later(delay, self._wall_reached)

    def _wall_reached(self) -> None:
        self._timer = None
        cap = self.budget.max_wall_s
        if cap is not None and "wall" not in self.warned:
            self.warned.add("wall")
            elapsed = self.budget.elapsed_s()
            self.bus.emit(BudgetWarning(self._run_id, "wall", elapsed, cap, elapsed / cap))

    def _send(self, warning: BudgetWarning) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.bus.emit, warning)
        else:
            self.bus.emit(warning)


def watch_budget(bus: EventBus, budget: Budget) -> None:
    """Subscribe a :class:`BudgetWatch` when the run has a cap and someone listens to its events."""
    capped = budget.caps.max_cost_usd is not None or budget.caps.max_tokens is not None or budget.max_wall_s is not None
    if bus and capped:
        bus.subscribe(BudgetWatch(budget, bus))


async def reported_tool_call(
    ctx: RunContext, node_id: str, tool: str, arguments: dict[str, Any], item: int | None,
    call: Awaitable[tuple[Any, S]],
) -> tuple[Any, S]:
    """Await a tool node's ``call`` (its value and spend) between a ToolCallStarted and a
    ToolCallFinished; a run nobody listens to skips both."""
    if not ctx.bus:
        return await call
    shown = {
        k: (sorted(v) if k in _NAMES_ONLY_ARGUMENTS and isinstance(v, dict) else v)
        for k, v in arguments.items() if k not in _HIDDEN_ARGUMENTS
    }
    ctx.emit(ToolCallStarted(ctx.run_id, node_id, tool, shown, item=item))
    started = time.monotonic()
    try:
        value, spend = await call
    except Exception as exc:
        ctx.emit(ToolCallFinished(ctx.run_id, node_id, tool, False, error=str(exc) or type(exc).__name__,
                                  duration_s=time.monotonic() - started, item=item))
        raise
    ctx.emit(ToolCallFinished(ctx.run_id, node_id, tool, True, result=value, duration_s=time.monotonic() - started,
                              item=item))
    return value, spend

"""Trying work again: the retry loop shared by every node kind, and how a node stops early.

A :class:`NodeError` (the node failed) and a :class:`NodeHeld` (a gate held it part-way, e.g. a
cascade before a pricier rung) carry what the node spent (attempts, usage, cost), so the result
still reports and persists its accounting. :meth:`Spend.record` is where a finished attempt is
written: into the node's attempts and, for model calls, onto the bus, as one value.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar

from contextflow.core.attempts import Attempt
from contextflow.core.events import AttemptFinished, Usage
from contextflow.core.waiting import Waiting
from contextflow.core.errors import UserError
from contextflow.core.results import NodeResult
from contextflow.cost.budget import BudgetExceeded
from contextflow.runtime.context import RunContext
from contextflow.runtime.executor import Work
from contextflow.runtime.policies import NodePolicies, error_kind

T = TypeVar("T")


@dataclass
class Spend:
    """What a node has spent so far across its attempts."""

    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt: int = 1

    def take_attempt_number(self) -> int:
        number = self.next_attempt
        self.next_attempt += 1
        return number

    def record(self, ctx: RunContext, node_id: str, attempt: Attempt) -> Attempt:
        """Write a finished model-call attempt: the node's result and the trace get this value."""
        self.attempts.append(attempt)
        ctx.emit(AttemptFinished(ctx.run_id, node_id, attempt))
        return attempt


class NodeError(Exception):
    """A node failed for good; ``cause`` is the last underlying error."""

    def __init__(self, message: str, *, cause: BaseException | None = None, spend: Spend | None = None) -> None:
        self.cause = cause
        self.spend = spend or Spend()
        super().__init__(message)

    @property
    def error_type(self) -> str:
        return error_kind(self.cause) if self.cause is not None else "error"


class NodeHeld(Exception):
    """A gate held a node part-way (a cascade about to escalate); ``spend`` is what it spent so far."""

    def __init__(self, waiting: Waiting, spend: Spend) -> None:
        self.waiting = waiting
        self.spend = spend
        super().__init__(waiting.message)


def stopped_result(node_id: str, exc: Exception, started: float) -> NodeResult:
    """The result of a node that raised: held at a gate part-way, or failed (with what it spent)."""
    now = time.time()
    if isinstance(exc, NodeHeld):
        s = exc.spend
        return NodeResult(node_id, "waiting", None, s.usage, s.cost_usd, None, s.attempts, False, started, now,
                          exc.waiting.message, waiting=exc.waiting)
    if isinstance(exc, NodeError):
        s = exc.spend
        etype = "budget" if isinstance(exc.cause, BudgetExceeded) else exc.error_type
        return NodeResult(node_id, "failed", None, s.usage, s.cost_usd, None, s.attempts, False, started, now,
                          str(exc), etype)
    if isinstance(exc, BudgetExceeded):
        return NodeResult(node_id, "failed", started_at=started, finished_at=now, error=str(exc), error_type="budget")
    if isinstance(exc, UserError):
        return NodeResult(node_id, "failed", started_at=started, finished_at=now, error=str(exc),
                          error_type="user_error")
    return NodeResult(node_id, "failed", started_at=started, finished_at=now, error=f"{type(exc).__name__}: {exc}",
                      error_type=error_kind(exc))


async def with_retries(
    ctx: RunContext,
    policies: NodePolicies,
    attempt: Callable[[int], Awaitable[T]],
    spend: Spend,
) -> T:
    """Call ``attempt(attempt_number)`` until it succeeds, a non-retryable error, or no tries left.

    Budget errors and cancellation always pass straight through.
    """
    failures = 0
    while True:
        number = spend.take_attempt_number()
        try:
            return await attempt(number)
        except (BudgetExceeded, asyncio.CancelledError):
            raise
        except Exception as exc:
            failures += 1
            if not policies.retry.should_retry(exc, failures):
                raise
            delay = policies.retry.delay(failures, ctx.rng)
            left = ctx.budget.remaining_wall_s()
            if left is not None and delay >= left:
                raise
            await ctx.sleep(delay)


async def submit_timed(ctx: RunContext, work: Work, policies: NodePolicies) -> Any:
    """Submit work to the run's executor under the node's timeout and the run's wall budget.

    When the wall budget is the nearer limit and runs out, the error is BudgetExceeded (the run
    stops), not a timeout (which would be retried).
    """
    wall_left = ctx.budget.remaining_wall_s()
    timeout = policies.timeout.bounded_by(wall_left)
    if timeout is None:
        return await ctx.executor.submit(work)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await ctx.executor.submit(work)
    except TimeoutError:
        if not deadline.expired():
            raise
        if wall_left is not None and (policies.timeout.seconds is None or wall_left <= policies.timeout.seconds):
            ctx.budget.check_wall()
        raise TimeoutError(f"no result within {timeout:g} s") from None


def function_attempt(number: int, *, started: float, item: int | None, error: BaseException | None = None) -> Attempt:
    """One run of a python, tool or retrieve node's function (``started``: a monotonic time)."""
    if error is None:
        return Attempt(number, True, item=item, latency_s=time.monotonic() - started)
    return Attempt(number, False, item=item, latency_s=time.monotonic() - started,
                   error=str(error) or type(error).__name__, error_type=error_kind(error))

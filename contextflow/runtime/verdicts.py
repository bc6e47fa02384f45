"""What a gate's verdict makes of a node: the result the scheduler records in its place.

The gate (``contextflow.runtime.gates``) only decides; these functions turn its answer into a
:class:`NodeResult`, and book in the budget what a stored result spent before this attempt of
the run.
"""

from __future__ import annotations

import time

from contextflow.core.results import NodeResult
from contextflow.cost.budget import Budget
from contextflow.runtime.gates import Fail, GateVerdict, Hold, Proceed, Replay, Skip


def instead_of_running(node_id: str, verdict: GateVerdict, budget: Budget) -> NodeResult:
    """The result of a node the gate did not let run (``before``: hold, skip, replay, fail)."""
    if isinstance(verdict, Replay):
        stored = verdict.result
        if stored.finished:  # the run's books hold only what finished nodes spent; this one finishes now
            budget.book(stored.cost_usd, stored.usage.total_tokens)
        return stored
    if isinstance(verdict, Hold):
        w = verdict.waiting
        return NodeResult(node_id, "waiting", error=w.message, finished_at=time.time(), waiting=w)
    if isinstance(verdict, Skip):
        return NodeResult(node_id, "skipped", error=verdict.reason, finished_at=time.time())
    if isinstance(verdict, Fail):
        return NodeResult(node_id, "failed", error=verdict.error, error_type=verdict.error_type,
                          finished_at=time.time())
    raise TypeError(f"a gate answered node '{node_id}' with {verdict!r}, which is not a gate verdict")


def held_or_passed(node_id: str, verdict: GateVerdict, result: NodeResult) -> NodeResult:
    """Apply the gate's verdict on a node that ran (``after``: proceed, hold, skip, fail).

    A held, skipped or failed node keeps what it spent (usage, cost, attempts).
    """
    if isinstance(verdict, Proceed):
        return result
    if isinstance(verdict, Hold):
        w = verdict.waiting
        return NodeResult(node_id, "waiting", None, result.usage, result.cost_usd, result.model, result.attempts,
                          result.cache_hit, result.started_at, result.finished_at, w.message, waiting=w)
    if isinstance(verdict, Skip):
        return NodeResult(node_id, "skipped", None, result.usage, result.cost_usd, result.model, result.attempts,
                          error=verdict.reason, finished_at=time.time())
    if isinstance(verdict, Fail):
        return NodeResult(node_id, "failed", None, result.usage, result.cost_usd, result.model, result.attempts,
                          error=verdict.error, error_type=verdict.error_type, finished_at=time.time())
    raise TypeError(
        f"a gate answered node '{node_id}' after it ran with {verdict!r}; after a node ran, a gate may "
        "answer Proceed, Hold, Skip or Fail"
    )


def add_earlier(result: NodeResult, earlier: NodeResult) -> None:
    """Count what a node spent in an earlier attempt of the run into its result, whatever it is now."""
    result.usage.add(earlier.usage)
    result.cost_usd += earlier.cost_usd
    result.attempts = [*earlier.attempts, *result.attempts]

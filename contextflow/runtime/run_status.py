"""A run's status in the run store has one writer: this module.

The scheduler reports that a run started or finished; a decision recorded at a gate reports
itself. Each is turned into the run's status here, and nowhere else calls
``RunStore.set_run_status``: a status is always derived from one of these facts.
"""

from __future__ import annotations

from typing import Any

from contextflow.runtime.store import Decision, RunStore


def run_started(store: RunStore, run_id: str) -> None:
    """The scheduler began executing the run (a new run, or one resumed)."""
    store.set_run_status(run_id, "running")


def run_finished(
    store: RunStore, run_id: str, status: str, *, error: str | None, outputs: dict[str, Any], cost_usd: float
) -> None:
    """The scheduler settled every node: the run ends as ``status``."""
    store.set_run_status(run_id, status, error=error, outputs=outputs, cost_usd=cost_usd)


def decision_recorded(store: RunStore, decision: Decision) -> None:
    """A person decided at a gate. Only a rejection that aborts the run changes its status (to
    ``failed``, at once, so nobody has to resume a run just to see it end)."""
    if is_abort(decision):
        store.set_run_status(decision.run_id, "failed",
                             error=f"aborted by {decision.actor} at node '{decision.node_id}'")


def is_abort(decision: Decision) -> bool:
    payload = decision.payload if isinstance(decision.payload, dict) else {}
    return decision.decision == "reject" and bool(payload.get("abort"))

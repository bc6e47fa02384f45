"""A provider that bills above its catalog price cannot carry a run past a hard cost cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from contextflow.api import run
from contextflow.core.events import AttemptFinished
from contextflow.providers import simulated

CATALOG = 1e-5  # $ per token, what the catalog (and so the worst-case estimate) says
BILLED = 10 * CATALOG  # what the simulated provider reports it charged


def _chain(cap: float, nodes: int = 8) -> dict:
    simulated.configure("overbilled", input_cost_per_token=CATALOG, output_cost_per_token=CATALOG)
    return {
        "name": "overbilled",
        "defaults": {"max_concurrency": 1, "budget": {"max_cost_usd": cap}},
        "nodes": [
            {"id": f"n{i}", "kind": "llm", "model": "sim/overbilled", "prompt": f"step {i} " * 20,
             "max_output_tokens": 100,
             # The provider's own price: its bill says ten times what the catalog lists.
             "params": {"sim": {"output_tokens": 100, "input_cost_per_token": BILLED, "output_cost_per_token": BILLED}},
             **({"depends_on": [f"n{i - 1}"]} if i else {})}
            for i in range(nodes)
        ],
    }


def test_a_model_billed_at_ten_times_its_catalog_price_never_passes_max_cost(state_home: Path) -> None:
    cap = 0.05
    events: list = []
    result = run(_chain(cap), sinks=[events.append], trace=False, cache=False)
    calls = [e.attempt for e in events if isinstance(e, AttemptFinished) and e.attempt.ok]
    assert calls and all(a.cost_source == "provider" for a in calls)
    # Each call is charged what the provider billed, about ten times its price-map cost.
    first = calls[0]
    assert first.cost_usd == pytest.approx(first.usage.total_tokens * BILLED)
    assert result.status == "budget_exceeded"
    assert 1 < len(calls) < 8  # some ran, the cap stopped the rest
    assert result.cost_usd <= cap
    assert sum(a.cost_usd for a in calls) <= cap
    failed = next(r for r in result.nodes.values() if r.status == "failed")
    # The refusal shows what was really spent (the bills), not the catalog's estimate of it.
    assert f"${result.cost_usd:.6f} spent or reserved" in (failed.error or "")


def test_the_cap_holds_because_later_reservations_follow_the_bills(
        state_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: with bills ignored when reserving, the same run ends above its cap."""
    from contextflow.cost.budget import Budget

    monkeypatch.setattr(Budget, "observe_bill", lambda self, model, billed_usd, catalog_usd: None)
    cap = 0.05
    result = run(_chain(cap), trace=False, cache=False)
    assert result.cost_usd > cap

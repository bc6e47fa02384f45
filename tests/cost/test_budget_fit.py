"""The one budget check (Caps.fit / Budget.fits), booking, grants and bills above the price map."""

from __future__ import annotations

from pathlib import Path

import pytest

from contextflow.cost.budget import Budget, BudgetExceeded, Caps, SQLiteLedger, Totals


def test_a_call_that_exactly_fills_the_cost_cap_fits_and_a_hair_more_does_not() -> None:
    budget = Budget(max_cost_usd=1.0)
    budget.settle(budget.reserve(0.7, 0), 0.7, 0)
    exact = budget.fits(0.3, 0)
    assert exact and exact.ok and exact.kind is None
    assert exact.left_cost_usd == pytest.approx(0.3)
    over = budget.fits(0.3 + 1e-6, 0)
    assert not over and over.kind == "cost"
    assert over.shortfall()[0] == pytest.approx(1e-6)
    budget.reserve(0.3, 0)  # the reservation agrees with fits: the exact fit is granted
    with pytest.raises(BudgetExceeded, match="cost budget exhausted"):
        budget.reserve(1e-6, 0)


def test_a_call_that_exactly_fills_the_token_cap_fits() -> None:
    budget = Budget(max_tokens=100)
    held = budget.reserve(0.0, 60)
    assert budget.fits(0.0, 40) and not budget.fits(0.0, 41)
    fit = budget.fits(0.0, 41)
    assert fit.kind == "tokens" and fit.left_tokens == 40 and fit.shortfall() == (0.0, 1)
    assert "token budget exhausted" in str(fit.error())
    budget.settle(held, 0.0, 60)
    assert budget.fits(0.0, 40)


def test_a_released_reservation_returns_its_tokens_and_cost() -> None:
    budget = Budget(max_cost_usd=1.0, max_tokens=1000)
    held = budget.reserve(0.9, 900)
    assert not budget.fits(0.2, 0) and not budget.fits(0.0, 200)
    budget.settle(held, 0.0, 0)  # a failed call: nothing was used
    totals = budget.totals()
    assert totals.reserved_cost_usd == 0.0 and totals.reserved_tokens == 0
    assert totals.spent_cost_usd == 0.0 and totals.spent_tokens == 0
    assert budget.fits(1.0, 1000)
    budget.settle(held, 0.5, 500)  # settling twice changes nothing
    assert budget.totals().spent_cost_usd == 0.0


def test_book_counts_spend_that_was_never_reserved(tmp_path: Path) -> None:
    for budget in (Budget(max_cost_usd=1.0), Budget(max_cost_usd=1.0, ledger=SQLiteLedger(tmp_path / "l.db", "k"))):
        budget.book(0.4, 40)
        totals = budget.totals()
        assert totals.spent_cost_usd == pytest.approx(0.4) and totals.spent_tokens == 40
        assert totals.reserved_cost_usd == 0.0
        assert budget.fits(0.6, 0) and not budget.fits(0.61, 0)


def test_caps_without_a_limit_always_fit_and_a_grant_raises_only_set_caps() -> None:
    totals = Totals(5.0, 5000, 0.0, 0)
    assert Caps().fit(totals, 100.0, 10**9)
    assert Caps().fit(totals, 1.0, 1).left_cost_usd is None
    budget = Budget(max_cost_usd=1.0)
    budget.grant(0.5, 100)
    assert budget.caps == Caps(1.5, None)


def test_a_bill_above_the_catalog_price_raises_later_reservations_for_that_model() -> None:
    budget = Budget(max_cost_usd=1.0)
    budget.observe_bill("sim/pricey", billed_usd=0.02, catalog_usd=0.002)
    budget.observe_bill("sim/pricey", billed_usd=0.001, catalog_usd=0.002)  # a cheaper bill lowers nothing
    budget.observe_bill("sim/cheap", billed_usd=0.001, catalog_usd=0.002)
    assert budget.markup("sim/pricey") == pytest.approx(10.0)
    assert budget.markup("sim/cheap") == 1.0 and budget.markup(None) == 1.0
    held = budget.reserve(0.05, 0, model="sim/pricey")
    assert held.cost_usd == pytest.approx(0.5)
    assert budget.totals().reserved_cost_usd == pytest.approx(0.5)
    assert not budget.fits(0.06, 0, model="sim/pricey") and budget.fits(0.06, 0, model="sim/cheap")

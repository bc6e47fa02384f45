"""Budgets: reservations hold under concurrency (threads, asyncio, processes) and stop runs cleanly."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import runtime_helpers as rh
from contextflow.cost.budget import Budget, BudgetExceeded, SQLiteLedger
from contextflow.api import arun
from contextflow.core.events import AttemptFinished
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.core.state import StateDir


def test_reserve_and_settle_accounting():
    budget = Budget(max_cost_usd=1.0, max_tokens=100)
    first = budget.reserve(0.6, 50)
    with pytest.raises(BudgetExceeded, match="cost budget exhausted"):
        budget.reserve(0.5, 10)  # 0.6 held + 0.5 > 1.0
    budget.settle(first, 0.2, 20)  # actual use frees the rest
    second = budget.reserve(0.5, 10)
    budget.settle(second, 0.5, 10)
    totals = budget.totals()
    assert totals.spent_cost_usd == pytest.approx(0.7) and totals.spent_tokens == 30
    assert totals.reserved_cost_usd == pytest.approx(0.0)
    with pytest.raises(BudgetExceeded, match="token budget"):
        budget.reserve(0.0, 71)
    assert budget.exhausted is not None


def test_memory_ledger_never_passes_the_cap_under_threads():
    budget = Budget(max_cost_usd=50.0)
    granted: list[float] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        import random

        rng = random.Random(seed)
        for _ in range(400):
            cost = rng.uniform(0.01, 0.5)
            try:
                reservation = budget.reserve(cost, 0)
            except BudgetExceeded:
                continue
            actual = cost * rng.uniform(0.2, 1.0)
            budget.settle(reservation, actual, 0)
            with lock:
                granted.append(actual)
            assert budget.totals().spent_cost_usd <= 50.0 + 1e-9

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) <= 50.0 + 1e-9
    assert budget.totals().spent_cost_usd == pytest.approx(sum(granted))


_PROCESS_SCRIPT = """
import sys
from contextflow.cost.budget import Budget, BudgetExceeded, SQLiteLedger
budget = Budget(max_cost_usd=100.0, ledger=SQLiteLedger(sys.argv[1], "shared"))
granted = 0
while True:
    try:
        r = budget.reserve(1.0, 0)
    except BudgetExceeded:
        break
    budget.settle(r, 1.0, 0)
    granted += 1
print(granted)
"""


def test_sqlite_ledger_holds_across_processes(tmp_path):
    db = tmp_path / "ledger.db"
    SQLiteLedger(db, "shared")  # create the table before the race
    procs = [
        subprocess.Popen([sys.executable, "-c", _PROCESS_SCRIPT, str(db)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    counts = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    assert sum(counts) == 100  # every unit granted once, none beyond the cap
    assert SQLiteLedger(db, "shared").totals().spent_cost_usd == pytest.approx(100.0)


async def test_cost_cap_holds_under_64_concurrent_calls_with_faults(state_home, sim_model):
    model = sim_model(
        latency_ms=40, latency_dist="uniform", latency_spread=30,
        failure_rates={"429": 0.2, "500": 0.1, "connection": 0.05}, output_tokens=200,
        input_cost_per_token=1e-6, output_cost_per_token=1e-5, seed=7,
    )
    nodes = [
        {"id": f"n{i}", "kind": "llm", "model": model, "prompt": f"question number {i}", "max_output_tokens": 300,
         "retry": {"attempts": 4, "backoff_s": 0.01, "jitter": 0.5}}
        for i in range(64)
    ]
    cap = 0.05  # each call costs ~$0.002 and reserves ~$0.003: roughly a third of the nodes fit
    spec = rh.pipeline(nodes, defaults={"max_concurrency": 64, "budget": {"max_cost_usd": cap}})
    events: list = []
    result = await arun(spec, sinks=[events.append], trace=False, cache=False)
    spent = sum(e.attempt.cost_usd for e in events if isinstance(e, AttemptFinished))
    assert result.status == "budget_exceeded"
    assert spent <= cap
    assert result.cost_usd == pytest.approx(spent)
    done = [r for r in result.nodes.values() if r.status == "succeeded"]
    refused = [r for r in result.nodes.values() if r.error and "budget" in r.error]
    assert 5 < len(done) < 64 and refused
    assert any(a.ok is False for r in done for a in r.attempts)  # faults were injected and retried
    with SQLiteRunStore(StateDir.for_project().runs_db) as store:
        stored = store.load_nodes(result.run_id)
    assert {n for n, r in stored.items() if r.status == "succeeded"} == {r.node_id for r in done}


async def test_token_cap_stops_new_calls(state_home, sim_model):
    model = sim_model(output_tokens=20)
    nodes = [
        {"id": f"n{i}", "kind": "llm", "model": model, "prompt": f"p{i}", "max_output_tokens": 20,
         "depends_on": [f"n{i-1}"] if i else []}
        for i in range(10)
    ]
    spec = rh.pipeline(nodes, defaults={"budget": {"max_tokens": 120}})
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "budget_exceeded"
    assert 0 < result.usage.total_tokens <= 120
    assert result.nodes["n9"].status == "pending"


async def test_wall_time_cap_keeps_finished_results(state_home, sim_model):
    model = sim_model(latency_ms=100)
    nodes = [
        {"id": f"n{i}", "kind": "llm", "model": model, "prompt": f"p{i}", "depends_on": [f"n{i-1}"] if i else []}
        for i in range(8)
    ]
    spec = rh.pipeline(nodes, defaults={"budget": {"max_wall_s": 0.35}})
    await arun(rh.pipeline(nodes[:1]), trace=False, cache=False)  # litellm's first-call setup
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "budget_exceeded"
    finished = [n for n, r in result.nodes.items() if r.status == "succeeded"]
    assert 1 <= len(finished) <= 4
    assert result.nodes["n7"].status in ("pending", "failed")

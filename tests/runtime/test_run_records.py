"""Typed run records: attempts and waiting nodes in the run store, old rows, the run context."""

from __future__ import annotations

import re

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

import runtime_helpers as rh
from contextflow.api import arun
from contextflow.core import events
from contextflow.core.results import Attempt, EscalationStop, NodeResult, RoutingDecision, StepDown, Usage, Verdict
from contextflow.core.state import StateDir
from contextflow.core.waiting import Waiting
from contextflow.core.events import EventBus
from contextflow.cost.budget import Budget
from contextflow.runtime.context import CallLimits, RunContext
from contextflow.runtime.sqlite_store import SQLiteRunStore

ROOT = Path(__file__).resolve().parents[2]


def test_an_attempt_round_trips_through_its_stored_form() -> None:
    attempt = Attempt(
        3, True, "sim/x@high", rung=1, item=4, purpose="repair", usage=Usage(10, 5, 2, 1), cost_usd=0.01,
        cost_source="provider", latency_s=0.5, time_to_first_token_s=0.1, provider="sim", response_model="sim/x",
        started_at=1000.0, verdicts=(Verdict("re", "regex", False, detail="no match"),),
        routing=RoutingDecision("sim/x", ("sim/x", "sim/y"), 0.7, 0.5, "r"),
        escalation_stopped=EscalationStop("sim/y", 0.2, 0.1), stepped_down=StepDown("sim/y", 0.3),
        validation_error="not valid JSON", prompt=[{"role": "user", "content": "hi"}], response="{",
    )
    stored = json.loads(json.dumps(attempt.to_dict()))
    assert "prompt" not in stored and "response" not in stored  # the text goes to the trace only
    back = Attempt.from_dict(stored)
    assert back == attempt and back.prompt is None
    assert back.passed is False and back.verdicts[0].detail == "no match"


def test_old_dict_form_attempt_rows_and_waiting_values_still_load(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with SQLiteRunStore(db) as store:
        store.create_run("old", pipeline="p", spec={"name": "p", "nodes": []}, inputs={})
    old_attempts = [
        {"attempt": 1, "ok": False, "model": "sim/a", "latency_s": 0.1, "error": "boom", "error_type": "server",
         "purpose": "call"},
        {"attempt": 2, "ok": True, "model": "sim/a", "latency_s": 0.2, "purpose": "call", "cost_usd": 0.003,
         "input_tokens": 30, "output_tokens": 7, "rung": 0, "escalation_stopped": {
             "next": "sim/b", "worst_case_usd": 0.5, "budget_left_usd": 0.1, "reason": "budget"},
         "verdicts": [{"name": "regex", "kind": "regex", "passed": False, "score": None, "detail": "no match",
                       "cost_usd": 0.0, "usage": {}}],
         "routing": {"candidates": ["sim/a", "sim/b"], "prediction": 0.4, "threshold": 0.5, "chosen": "sim/b",
                     "router": "r"}, "stepped_down": {"planned": "sim/b", "budget_left_usd": 0.2}},
    ]
    old_waiting = {"phase": "before", "reason": "side_effect", "args": {"path": "x"}, "proposal": {"diff": "+x"}}
    with sqlite3.connect(db) as conn:  # rows exactly as a store from before typed attempts wrote them
        conn.execute(
            "INSERT INTO node_results (run_id, node_id, status, value_json, cost_usd, attempts_json, error, error_type)"
            " VALUES ('old', 'ask', 'succeeded', '\"hi\"', 0.003, ?, NULL, NULL)", (json.dumps(old_attempts),))
        conn.execute(
            "INSERT INTO node_results (run_id, node_id, status, value_json, error, error_type)"
            " VALUES ('old', 'save', 'waiting', ?, 'waiting for approval (side_effect)', 'side_effect')",
            (json.dumps(old_waiting),))
    with SQLiteRunStore(db) as store:
        nodes = store.load_nodes("old")
    failed, ok = nodes["ask"].attempts
    assert (failed.number, failed.ok, failed.error_type, failed.usage) == (1, False, "server", Usage())
    assert (ok.number, ok.cost_usd, ok.usage.input_tokens, ok.usage.output_tokens) == (2, 0.003, 30, 7)
    assert ok.verdicts == (Verdict("regex", "regex", False, None, "no match"),) and ok.passed is False
    assert ok.routing == RoutingDecision("sim/b", ("sim/a", "sim/b"), 0.4, 0.5, "r")
    assert ok.escalation_stopped == EscalationStop("sim/b", 0.5, 0.1) and ok.stepped_down == StepDown("sim/b", 0.2)
    save = nodes["save"]
    assert save.value is None
    assert save.waiting == Waiting("before", "side_effect", proposal={"diff": "+x"}, args={"path": "x"})


def test_a_waiting_node_round_trips_its_waiting_through_the_store(tmp_path: Path) -> None:
    held = Waiting("after", "model_step", proposal={"note": "check it"}, output={"answer": 42})
    spent = [Attempt(1, True, "sim/a", usage=Usage(3, 4), cost_usd=0.5)]
    with SQLiteRunStore(tmp_path / "runs.db") as store:
        store.create_run("r", pipeline="p", spec={"name": "p", "nodes": []}, inputs={})
        store.save_node("r", NodeResult("q", "waiting", None, Usage(3, 4), 0.5, "sim/a", spent,
                                        error=held.message, waiting=held))
        back = store.load_nodes("r")["q"]
    assert back.status == "waiting" and back.waiting == held and back.value is None
    assert back.attempts == spent and back.cost_usd == 0.5 and back.usage == Usage(3, 4)


async def test_a_cascades_verdicts_are_on_its_stored_attempts(state_home, sim_model) -> None:
    cheap = sim_model(reply="I am not sure", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    strong = sim_model(reply="ANSWER: 42", input_cost_per_token=1e-5, output_cost_per_token=1e-5)
    spec = rh.pipeline([{"id": "solve", "kind": "llm", "prompt": "6 x 7?", "models": [cheap, strong],
                         "strategy": "cascade", "verify": [{"kind": "regex", "pattern": "ANSWER: [0-9]+"}]}])
    seen: list = []
    result = await arun(spec, trace=False, cache=False, sinks=[seen.append])
    with SQLiteRunStore(StateDir.for_project().runs_db) as store:
        stored = store.load_nodes(result.run_id)["solve"].attempts
    assert [(a.model, a.rung, a.passed) for a in stored] == [(cheap, 0, False), (strong, 1, True)]
    assert [v.kind for a in stored for v in a.verdicts] == ["regex", "regex"]
    # One event per attempt, carrying the very attempt the node's result holds.
    finished = [e.attempt for e in seen if isinstance(e, events.AttemptFinished)]
    assert finished == stored == result.nodes["solve"].attempts
    assert all(f is r for f, r in zip(finished, result.nodes["solve"].attempts))


def test_attempts_are_slotted_and_waits_are_frozen_values() -> None:
    attempt = Attempt(1, True)
    with pytest.raises(AttributeError):
        attempt.extra = 1  # type: ignore[attr-defined]  # slotted: no field beside the typed ones
    with pytest.raises(dataclasses.FrozenInstanceError):
        Waiting("before", "x").phase = "after"  # type: ignore[misc]


def test_there_is_no_after_the_fact_attempt_event() -> None:
    assert not hasattr(events, "AttemptChecked")
    assert [f.name for f in dataclasses.fields(events.AttemptFinished)] == ["run_id", "ts", "node_id", "attempt"]


def test_the_run_context_has_typed_fields_and_no_extras() -> None:
    names = {f.name for f in dataclasses.fields(RunContext)}
    assert "extras" not in names and {"model_plan", "escalation_guard"} <= names
    ctx = RunContext("r", None, EventBus(), Budget(), None, CallLimits(), None)  # type: ignore[arg-type]
    assert not hasattr(ctx, "extras") and ctx.model_plan == {} and ctx.escalation_guard is None
    with pytest.raises(AttributeError):
        ctx.extras = {}  # type: ignore[attr-defined]  # slotted: nothing travels beside the typed fields


def test_a_runs_status_has_one_writer() -> None:
    """Only contextflow.runtime.run_status turns facts into a run's stored status; the stores
    only implement the write."""
    callers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "contextflow").rglob("*.py")
                     if re.search(r"(?<!def )\bset_run_status\(", p.read_text(encoding="utf-8")))
    assert callers == ["contextflow/runtime/run_status.py"]

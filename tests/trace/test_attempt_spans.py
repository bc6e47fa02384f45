"""One AttemptFinished event per call: the run store and the trace record the same attempt."""

from __future__ import annotations

from pathlib import Path

from contextflow.api import run
from contextflow.core import events
from contextflow.core.state import StateDir
from contextflow.cost.router import fit
from contextflow.providers import simulated
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.trace import TraceSink, TraceStore

LONG = ("Prove that the sequence number {} converges, citing every lemma and bounding each error term "
        "carefully across all of the cases that arise in the argument.")


def _router(path: Path) -> Path:
    easy = [f"What is {i} plus one?" for i in range(12)]
    hard = [LONG.format(i) for i in range(12)]
    return fit(easy + hard, [True] * 12 + [False] * 12, weak="sim/sp-weak", strong="sim/sp-strong",
               pca_dims=0).save(path)


def test_an_attempt_reaches_runs_db_and_traces_db_with_the_same_checks(state_home: Path, tmp_path: Path) -> None:
    simulated.configure("sp-weak", reply="not sure")
    simulated.configure("sp-strong", reply="ANSWER: 42")
    spec = {"name": "spans", "nodes": [
        {"id": "solve", "kind": "llm", "prompt": "What is six times seven?", "strategy": "cascade",
         "models": ["sim/sp-weak", "sim/sp-strong"], "verify": [{"kind": "regex", "pattern": "ANSWER: \\d+"}]},
        {"id": "routed", "kind": "llm", "prompt": LONG.format(3), "strategy": "route",
         "router": str(_router(tmp_path / "router.json")), "models": ["sim/sp-weak", "sim/sp-strong"]}]}
    seen: list = []
    result = run(spec, cache=False, sinks=[seen.append])
    assert result.status == "succeeded"
    state = StateDir.for_project()
    with SQLiteRunStore(state.runs_db) as store:
        stored = {nid: r.attempts for nid, r in store.load_nodes(result.run_id).items()}
    spans = {(s["node_id"], s["attributes"]["contextflow.attempt"]): s
             for s in TraceStore(state.traces_db).spans(result.run_id) if s["kind"] == "attempt"}
    finished = [e for e in seen if isinstance(e, events.AttemptFinished)]
    assert len(finished) == len(spans) == sum(len(a) for a in stored.values()) == 3  # one event, one span each

    for node_id, attempts in stored.items():
        for attempt in attempts:
            attrs = spans[(node_id, attempt.number)]["attributes"]
            assert [v.to_dict() for v in attempt.verdicts] == attrs.get("contextflow.verdicts", [])
            assert attrs.get("contextflow.ladder.rung") == attempt.rung
            routing = attempt.routing.to_dict() if attempt.routing is not None else None
            assert attrs.get("contextflow.routing") == routing
            assert spans[(node_id, attempt.number)]["cost"] == attempt.cost_usd
    weak, strong = stored["solve"]
    assert (weak.passed, strong.passed) == (False, True)
    assert spans[("solve", weak.number)]["attributes"]["contextflow.verdicts.passed"] is False
    assert stored["routed"][-1].routing is not None and stored["routed"][-1].routing.chosen == "sim/sp-strong"


def test_an_attempt_span_spans_the_call_not_the_checks_after_it(tmp_path: Path) -> None:
    """The event comes once the checks are done; the span keeps the call's own start and latency."""
    from contextflow.core.results import Attempt, Usage

    db = tmp_path / "traces.db"
    sink = TraceSink(db)
    sink(events.RunStarted("r", "p", {}, ["n"], [], ts=100.0))
    sink(events.NodeStarted("r", "n", "llm", ts=100.0))
    sink(events.AttemptStarted("r", "n", 1, "sim/x", prompt=[{"role": "user", "content": "q"}], ts=100.5))
    call = Attempt(1, True, "sim/x", usage=Usage(3, 2), latency_s=1.5, started_at=100.5, response="a")
    sink(events.AttemptFinished("r", "n", call, ts=109.0))  # verifiers took until 109
    sink.close(wait=True)
    span = next(s for s in TraceStore(db).spans("r") if s["kind"] == "attempt")
    assert (span["start"], span["end"]) == (100.5, 102.0)
    assert span["attributes"]["contextflow.prompt"] == [{"role": "user", "content": "q"}]

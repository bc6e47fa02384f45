"""Seams other parts plug into: retrieve nodes (context building) and approval gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import runtime_helpers as rh
from contextflow.api import arun
from contextflow.core.events import NodeWaiting, RetrievalFinished
from contextflow.core.waiting import Waiting
from contextflow.runtime.gates import PROCEED, Hold, OpenGate


class _Window:
    """Test double of contextflow.context.ContextWindow (the real one belongs to the context package)."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.used_tokens = 12
        self.items = [{"path": "a.py", "start_line": 1, "end_line": 3, "score": 0.9, "reason": "bm25"}]

    def render(self) -> str:
        return f"<context for {self.query}>"


async def test_retrieve_node_builds_context_in_a_thread_and_reports_it(state_home, monkeypatch, sim_model):
    import contextflow.context as context_package

    calls: list[dict[str, Any]] = []

    def fake_build_context(repo, query, *, budget_tokens, retrievers=None, model=None, fmt="markdown", state=None):
        calls.append({"repo": repo, "query": query, "budget_tokens": budget_tokens, "fmt": fmt})
        return _Window(query)

    monkeypatch.setattr(context_package, "build_context", fake_build_context, raising=False)
    model = sim_model()
    spec = rh.pipeline(
        [
            {"id": "ctx", "kind": "retrieve", "query": "where is ${inputs.topic}?", "budget_tokens": 500},
            {"id": "ask", "kind": "llm", "model": model, "prompt": "Use this:\n${ctx}"},
        ],
        inputs={"topic": {"type": "string"}},
    )
    events: list = []
    result = await arun(spec, {"topic": "budgets"}, sinks=[events.append], trace=False, cache=False)
    assert result.status == "succeeded"
    assert calls == [{"repo": str(Path.cwd().resolve()), "query": "where is budgets?", "budget_tokens": 500,
                      "fmt": "markdown"}]  # a relative repo is resolved against the run's working tree
    assert result.nodes["ask"].value == "Use this:\n<context for where is budgets?>"  # rendered via .render()
    retrieval = next(e for e in events if isinstance(e, RetrievalFinished))
    assert retrieval.used_tokens == 12 and retrieval.items[0]["path"] == "a.py"


class _HoldNode(OpenGate):
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    async def before(self, ctx, node_id, node, scope):
        if node_id == self.node_id:
            return Hold(Waiting("before", "approval", proposal={"would_run": node.function}))
        return PROCEED


async def test_a_gate_holds_one_branch_and_the_run_waits(state_home):
    add = f"{rh.PREFIX}:add"
    spec = rh.pipeline(
        [
            {"id": "a", "kind": "python", "function": add, "args": {"a": 1}},
            {"id": "held", "kind": "python", "function": add, "args": {"a": "${a}"}},
            {"id": "after_held", "kind": "python", "function": add, "args": {"a": "${held}"}},
            {"id": "free", "kind": "python", "function": add, "args": {"a": "${a}", "b": 5}},
        ]
    )
    events: list = []
    result = await arun(spec, sinks=[events.append], trace=False, gate=_HoldNode("held"))
    assert result.status == "waiting"
    assert {n: r.status for n, r in result.nodes.items()} == {
        "a": "succeeded", "held": "waiting", "after_held": "pending", "free": "succeeded",
    }
    waiting = next(e for e in events if isinstance(e, NodeWaiting))
    assert waiting.node_id == "held" and waiting.waiting.proposal == {"would_run": add}


async def test_cascade_escalates_until_the_verifier_passes(state_home, sim_model):
    cheap = sim_model(reply="I am not sure", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    strong = sim_model(reply="ANSWER: 42", input_cost_per_token=1e-5, output_cost_per_token=1e-5)
    spec = rh.pipeline(
        [{"id": "solve", "kind": "llm", "prompt": "6 x 7?", "models": [cheap, strong], "strategy": "cascade",
          "verify": [{"kind": "regex", "pattern": "ANSWER: [0-9]+"}]}]
    )
    result = await arun(spec, trace=False, cache=False)
    node = result.nodes["solve"]
    assert result.status == "succeeded" and node.value == "ANSWER: 42" and node.model == strong
    assert [a.model for a in node.attempts] == [cheap, strong]
    assert [a.verdicts[0].passed for a in node.attempts] == [False, True]
    assert node.cost_usd == sum(a.cost_usd for a in node.attempts)  # the cheap rung is paid too


async def test_trace_sink_records_the_run(state_home, sim_model):
    from contextflow.trace import TraceStore

    model = sim_model()
    result = await arun(rh.pipeline([{"id": "ask", "kind": "llm", "model": model, "prompt": "hi"}]), cache=False)
    store = TraceStore(state_home / "traces.db")
    assert result.run_id in {r["run_id"] for r in store.list_runs()}
    assert store.spans(result.run_id)

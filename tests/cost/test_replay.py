"""The replay provider (recorded responses through litellm) and what-if replay of recorded runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contextflow.core import catalog
from contextflow.core.attempts import Attempt
from contextflow.analysis.whatif import load_policy, replay_export, replay_run
from contextflow.core.errors import UserError
from contextflow.providers import replay as replay_provider

WEAK, STRONG = "gpt-4o-mini", "gpt-4o"


@pytest.fixture()
def recordings():
    replay_provider.clear()
    yield replay_provider
    replay_provider.clear()


async def test_replay_provider_serves_recorded_responses_at_the_real_price(recordings) -> None:
    import litellm

    from contextflow.providers import register_all

    register_all()
    recordings.record(STRONG, "What is 6*7?", "#### 42", prompt_tokens=12, completion_tokens=4)
    response = await litellm.acompletion(model=f"replay/{STRONG}", messages=[{"role": "user", "content": "What is 6*7?\n"}])
    assert response.choices[0].message.content == "#### 42"
    assert response.usage.prompt_tokens == 12
    assert response._hidden_params["response_cost"] == pytest.approx(catalog.get(STRONG).cost(12, 4))
    with pytest.raises(litellm.BadRequestError, match="no recorded response"):
        await litellm.acompletion(model=f"replay/{STRONG}", messages=[{"role": "user", "content": "unseen"}])


def test_replay_provider_loads_outcome_csvs_and_jsonl(tmp_path: Path, recordings) -> None:
    csv_path = tmp_path / "o.csv"
    csv_path.write_text('prompt,weak_response,strong_response\n"q1",a1,b1\n"q2",a2,b2\n', encoding="utf-8")
    assert recordings.load_outcomes_csv(csv_path, {"weak_response": WEAK, "strong_response": STRONG}) == 4
    lines = tmp_path / "r.jsonl"
    lines.write_text(json.dumps({"model": WEAK, "prompt": "q3", "response": "a3"}) + "\n\nnot json\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"r.jsonl:3"):
        recordings.load_jsonl(lines)


def test_the_scheduler_runs_a_cascade_offline_on_replayed_responses(recordings, state_home: Path) -> None:
    from contextflow.dags.spec import LLMNode, PipelineSpec, VerifySpec
    from contextflow.api import run

    prompt = "Sam has 3 bags of 4 apples. How many apples?"
    recordings.record(WEAK, prompt, "3*4=<<3*4=13>>13\n#### 13")
    recordings.record(STRONG, prompt, "3*4=<<3*4=12>>12\n#### 12")
    check = VerifySpec(kind="python", function="contextflow.cost.router_features:arithmetic_consistent")
    spec = PipelineSpec(name="gsm", nodes=[LLMNode(id="solve", prompt=prompt, strategy="cascade",
                                                   models=[f"replay/{WEAK}", f"replay/{STRONG}"], verify=[check])])
    node = run(spec, trace=False).nodes["solve"]
    assert node.value.endswith("#### 12") and node.model == f"replay/{STRONG}"
    calls = [a for a in node.attempts if a.ok]
    assert [a.verdicts[0].passed for a in calls] == [False, True]
    assert node.cost_usd == pytest.approx(sum(a.cost_usd for a in calls)) and calls[0].cost_usd > 0


def recorded_run() -> dict:
    return {
        "run_id": "r1",
        "spec": {"nodes": [{"id": "solve", "kind": "llm", "strategy": "cascade", "models": [WEAK, STRONG]},
                           {"id": "title", "kind": "llm", "model": STRONG}]},
        "nodes": {
            "solve": {"attempts": [
                {"ok": True, "model": WEAK, "cost_usd": 0.001, "input_tokens": 1000, "output_tokens": 200,
                 "verdicts": [{"passed": False}]},
                {"ok": True, "model": STRONG, "cost_usd": 0.0045, "input_tokens": 1000, "output_tokens": 200,
                 "verdicts": [{"passed": True}]}]},
            "title": {"attempts": [{"ok": True, "model": STRONG, "cost_usd": 0.003, "input_tokens": 800, "output_tokens": 100}]},
        },
    }


def test_what_if_replay_uses_recorded_outcomes_and_prices_the_rest(tmp_path: Path) -> None:
    export = tmp_path / "run.json"
    export.write_text(json.dumps(recorded_run()), encoding="utf-8")
    policy = tmp_path / "policy.yaml"
    policy.write_text("models: {gpt-4o: gpt-4o-mini}\nquality: {gpt-4o-mini: 0.7}\n", encoding="utf-8")
    report = replay_export(export, load_policy(policy))
    solve, title = report.nodes
    # The cascade's ladder collapses to [mini]: the recorded weak attempt (failed) is reused.
    assert solve.after_models == [WEAK] and solve.source == "recorded"
    assert solve.after_cost_usd == pytest.approx(0.001)
    assert solve.before_cost_usd == pytest.approx(0.0055) and solve.after_quality == 0.0
    # title never ran on gpt-4o-mini: its recorded tokens are priced by the catalog, quality is the prior.
    assert title.after_cost_usd == pytest.approx(catalog.get(WEAK).cost(800, 100)) and title.source == "estimated"
    assert title.after_quality == pytest.approx(0.7) and title.cost_delta < 0


def test_replay_of_a_cascade_policy_weights_costs_by_the_chance_of_escalating(tmp_path: Path) -> None:
    run_data = recorded_run()
    policy = {"nodes": {"title": {"models": [WEAK, STRONG], "strategy": "cascade"}},
              "prices": {WEAK: {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}},
              "quality": {WEAK: 0.6}}
    export = tmp_path / "run.json"
    export.write_text(json.dumps(run_data), encoding="utf-8")
    title = replay_export(export, policy).nodes[1]
    weak_cost = 900 * 1e-6
    assert title.after_cost_usd == pytest.approx(weak_cost + 0.4 * 0.003)  # the strong call was recorded
    assert title.source == "mixed"


def test_replay_from_the_run_store_and_the_cli(tmp_path: Path, state_home: Path) -> None:
    from contextflow.core.results import NodeResult
    from contextflow.runtime.sqlite_store import SQLiteRunStore
    from contextflow.core.state import StateDir

    data = recorded_run()
    db = StateDir.for_project(tmp_path).runs_db
    with SQLiteRunStore(db) as store:
        store.create_run("r1", pipeline="p", spec=data["spec"], inputs={})
        for node_id, result in data["nodes"].items():
            attempts = [Attempt.from_dict(a) for a in result["attempts"]]  # the dict rows of an export
            store.save_node("r1", NodeResult(node_id, "succeeded", value="x", attempts=attempts,
                                             cost_usd=sum(a["cost_usd"] for a in result["attempts"])))
    report = replay_run(db, "r1", {"models": {STRONG: WEAK}})
    assert [n.node_id for n in report.nodes] == ["solve", "title"]
    assert report.after_cost_usd < report.before_cost_usd
    with pytest.raises(UserError, match="no run 'nope'"):
        replay_run(db, "nope", {})
    policy = tmp_path / "p.yaml"
    policy.write_text("models: {gpt-4o: gpt-4o-mini}\n", encoding="utf-8")
    cli = [sys.executable, "-m", "contextflow", "replay", "r1", "--policy", str(policy), "--project", str(tmp_path)]
    done = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["after_cost_usd"] == pytest.approx(report.after_cost_usd)
    policy.write_text("modles: {}\n", encoding="utf-8")
    bad = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown policy key(s) modles" in bad.stderr and "Traceback" not in bad.stderr


def test_policy_naming_an_unknown_node_is_an_error(tmp_path: Path) -> None:
    export = tmp_path / "run.json"
    export.write_text(json.dumps(recorded_run()), encoding="utf-8")
    with pytest.raises(UserError, match="node\\(s\\) summary"):
        replay_export(export, {"nodes": {"summary": {"model": WEAK}}})


def test_policy_prices_re_price_recorded_calls_and_the_spec_s_declarations_count(tmp_path: Path) -> None:
    data = recorded_run()
    data["spec"]["models"] = {"my/strong": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6,
                                            "quality": 0.97}}
    data["spec"]["nodes"][1]["model"] = "my/strong"
    data["nodes"]["title"]["attempts"][0]["model"] = "my/strong"
    export = tmp_path / "run.json"
    export.write_text(json.dumps(data), encoding="utf-8")
    policy = {"prices": {WEAK: {"input_cost_per_token": 1e-5, "output_cost_per_token": 1e-5}}}
    solve, title = replay_export(export, policy).nodes
    # solve's recorded weak call (1000 in, 200 out) at the policy's price; its strong call as recorded.
    assert solve.after_cost_usd == pytest.approx(1200 * 1e-5 + 0.0045)
    assert title.before_quality == pytest.approx(0.97) and title.after_cost_usd == pytest.approx(0.003)

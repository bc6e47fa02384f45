"""What users rely on from the cache, the caps and retries: every key part, the TTL, reviews of
cached answers, and that nothing starts once a cap has stopped the run."""

from __future__ import annotations

import time
from pathlib import Path

import runtime_helpers as rh
from contextflow.api import arun
from contextflow.cost.budget import Budget
from contextflow.providers import simulated


def llm(model: str, prompt: str = "hello", **extra):
    return {"id": extra.pop("id", "ask"), "kind": "llm", "model": model, "prompt": prompt, **extra}


async def test_a_changed_output_limit_is_a_new_call_not_the_old_answer(state_home, sim_model):
    model = sim_model()
    await arun(rh.pipeline([llm(model, max_output_tokens=5)]), trace=False)
    again = await arun(rh.pipeline([llm(model, max_output_tokens=5)]), trace=False)
    assert again.nodes["ask"].status == "cached"
    longer = await arun(rh.pipeline([llm(model, max_output_tokens=50)]), trace=False)
    assert longer.nodes["ask"].status == "succeeded" and not longer.nodes["ask"].cache_hit
    assert simulated.stats(model).calls == 2


async def test_entries_older_than_the_ttl_are_misses(state_home, sim_model):
    model = sim_model()
    spec = rh.pipeline([llm(model, cache={"ttl_s": 0.2})])
    await arun(spec, trace=False)
    fresh = await arun(spec, trace=False)
    assert fresh.nodes["ask"].status == "cached"
    time.sleep(0.3)
    stale = await arun(spec, trace=False)
    assert stale.nodes["ask"].status == "succeeded" and simulated.stats(model).calls == 2


async def test_a_cached_python_node_is_keyed_by_its_arguments(state_home, tmp_path):
    log = tmp_path / "calls.log"
    # The arguments come from an input, so the node's spec is the same for every call: only the
    # resolved arguments tell the calls apart.
    spec = rh.pipeline([{"id": "sum", "kind": "python", "function": f"{rh.PREFIX}:counted_add",
                         "args": {"a": "${inputs.a}", "b": 1, "log": str(log)}, "cache": {"enabled": True}}],
                       inputs={"a": {"type": "integer"}})
    first = await arun(spec, {"a": 1}, trace=False)
    again = await arun(spec, {"a": 1}, trace=False)
    other = await arun(spec, {"a": 2}, trace=False)
    assert first.nodes["sum"].value == 2
    assert again.nodes["sum"].status == "cached" and again.nodes["sum"].value == 2
    assert other.nodes["sum"].value == 3, "other arguments must not be served the cached result"
    assert log.read_text().splitlines() == ["1+1", "2+1"]


async def test_a_cached_answer_still_waits_for_review_at_suggest(state_home, sim_model, tmp_path):
    model = sim_model()
    spec = rh.pipeline([llm(model, prompt="draft"),
                        {"id": "after", "kind": "python", "function": f"{rh.PREFIX}:write_marker",
                         "args": {"path": str(tmp_path / "downstream.txt"), "text": "${ask}"}}])
    await arun(spec, trace=False, autonomy="full")  # fills the cache
    (tmp_path / "downstream.txt").unlink()
    held = await arun(spec, trace=False, autonomy="suggest", workdir=tmp_path)
    assert held.status == "waiting" and held.nodes["ask"].status == "waiting"
    assert not (tmp_path / "downstream.txt").exists(), "an unreviewed answer must not flow on"


async def test_nodes_that_had_not_started_do_not_run_after_the_cost_cap(state_home, sim_model, tmp_path):
    model = sim_model(input_cost_per_token=1e-3, output_cost_per_token=1e-3)
    marker = tmp_path / "side-effect.txt"
    spec = rh.pipeline(
        [llm(model, prompt="hi", max_output_tokens=200),  # its worst case passes the cap only at run time
         {"id": "slow", "kind": "python", "function": f"{rh.PREFIX}:nap", "args": {"seconds": 0.3}},
         {"id": "effect", "kind": "python", "function": f"{rh.PREFIX}:write_marker",
          "args": {"path": str(marker)}, "depends_on": ["slow"]}],
        defaults={"budget": {"max_cost_usd": 0.01}},
    )
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "budget_exceeded"
    assert result.nodes["effect"].status not in ("succeeded", "cached")
    assert not marker.exists(), "a side effect ran after the cap had stopped the run"


async def test_token_reservations_are_released_so_a_chain_can_use_its_whole_cap(state_home, sim_model):
    model = sim_model(output_tokens=10)
    nodes = [llm(model, id="n0", prompt="start", max_output_tokens=200)]
    for i in range(1, 6):
        nodes.append(llm(model, id=f"n{i}", prompt=f"step {i} after ${{n{i - 1}}}", max_output_tokens=200))
    # Each call reserves its worst case (~220 tokens) but uses ~20: six of them fit in 700 only if
    # each reservation is released down to what was used.
    result = await arun(rh.pipeline(nodes, defaults={"budget": {"max_tokens": 700}}), trace=False, cache=False)
    assert result.status == "succeeded", result.error
    assert result.usage.total_tokens <= 700


def test_a_call_that_exactly_fills_the_token_cap_fits() -> None:
    budget = Budget(None, 100, None)
    first = budget.reserve(0.0, 60)
    budget.settle(first, 0.0, 60)
    exact = budget.reserve(0.0, 40)  # 60 + 40 == 100: allowed
    budget.settle(exact, 0.0, 40)
    assert budget.spent_tokens == 100


async def test_http_500_from_a_non_litellm_client_is_retried(state_home, tmp_path):
    spec = rh.pipeline([{"id": "fetch", "kind": "python", "function": f"{rh.PREFIX}:fail_with_status",
                         "args": {"counter": str(tmp_path / "once")},
                         "retry": {"attempts": 2, "backoff_s": 0.01, "jitter": 0.0}}])
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "succeeded" and result.nodes["fetch"].value == "ok"
    assert Path(tmp_path / "once").exists()


async def test_http_400_from_a_non_litellm_client_is_not_retried(state_home, tmp_path):
    spec = rh.pipeline([{"id": "fetch", "kind": "python", "function": f"{rh.PREFIX}:fail_with_status",
                         "args": {"counter": str(tmp_path / "once"), "status": 400},
                         "retry": {"attempts": 3, "backoff_s": 0.01, "jitter": 0.0}}])
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "failed"

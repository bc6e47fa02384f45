"""llm nodes: retries with backoff, no retry on auth errors, fallbacks, cache, structured output."""

from __future__ import annotations

import time

import pytest

import runtime_helpers as rh
from contextflow.providers import simulated
from contextflow.api import arun
from contextflow.runtime.policies import RetryPolicy, is_retryable

FAST_RETRY = {"attempts": 4, "backoff_s": 0.05, "backoff_multiplier": 2.0, "jitter": 0.0}


def llm(model: str, prompt: str = "hello", **extra):
    return {"id": extra.pop("id", "ask"), "kind": "llm", "model": model, "prompt": prompt, **extra}


async def test_transient_faults_are_retried_with_exponential_backoff(state_home, sim_model):
    model = sim_model(fail_first=["429", "500", "connection"])
    spec = rh.pipeline([llm(model, retry=FAST_RETRY)])
    start = time.monotonic()
    result = await arun(spec, trace=False, cache=False)
    elapsed = time.monotonic() - start
    node = result.nodes["ask"]
    assert result.status == "succeeded" and node.value == "hello"
    assert [a.ok for a in node.attempts] == [False, False, False, True]
    assert [a.error_type for a in node.attempts[:3]] == ["rate_limit", "server", "connection"]
    assert elapsed >= 0.05 + 0.1 + 0.2  # three backoffs, doubling, no jitter
    assert simulated.stats(model).calls == 4


async def test_retries_give_up_after_the_attempt_limit(state_home, sim_model):
    model = sim_model(fail_first=["503", "503", "503"])
    spec = rh.pipeline([llm(model, retry={**FAST_RETRY, "attempts": 2, "backoff_s": 0.01})])
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "failed"
    assert len(result.nodes["ask"].attempts) == 2
    assert "server" in (result.nodes["ask"].error or "")


async def test_timeouts_are_retried(state_home, sim_model):
    model = sim_model(fail_first=["timeout"], hang_s=10.0)
    spec = rh.pipeline([llm(model, retry=FAST_RETRY, timeout_s=0.2)])
    start = time.monotonic()
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "succeeded"
    assert time.monotonic() - start < 2.0
    assert result.nodes["ask"].attempts[0].error_type == "timeout"


@pytest.mark.parametrize("fault", ["auth", "bad_request"])
async def test_auth_and_bad_request_errors_are_not_retried(state_home, sim_model, fault):
    model = sim_model(fail_first=[fault, fault])
    spec = rh.pipeline([llm(model, retry=FAST_RETRY)])
    result = await arun(spec, trace=False, cache=False)
    assert result.status == "failed"
    assert len(result.nodes["ask"].attempts) == 1
    assert simulated.stats(model).calls == 1


def test_error_classification():
    import litellm

    assert is_retryable(litellm.RateLimitError("x", llm_provider="p", model="m"))
    assert is_retryable(TimeoutError())
    assert not is_retryable(litellm.AuthenticationError("bad key", llm_provider="p", model="m"))
    # litellm reports a missing API key as an InternalServerError: still not worth retrying
    assert not is_retryable(litellm.InternalServerError("Missing credentials", llm_provider="p", model="m"))
    assert not is_retryable(ValueError("bug"))
    policy = RetryPolicy(attempts=5, backoff_s=1.0, multiplier=2.0, max_backoff_s=3.0, jitter=0.5)
    delays = [policy.delay(n) for n in range(1, 6)]
    assert all(0.5 <= d <= 1.0 for d in delays[:1]) and all(d <= 3.0 for d in delays)
    assert 1.0 <= policy.delay(2) <= 2.0


async def test_fallback_model_answers_when_the_primary_fails(state_home, sim_model):
    broken = sim_model(failure_rates={"500": 1.0})
    backup = sim_model()
    spec = rh.pipeline([llm(broken, fallbacks=[backup], retry={**FAST_RETRY, "attempts": 2, "backoff_s": 0.01})])
    result = await arun(spec, trace=False, cache=False)
    node = result.nodes["ask"]
    assert result.status == "succeeded"
    assert node.model == backup
    assert [a.model for a in node.attempts] == [broken, broken, backup]


async def test_fallback_also_covers_non_retryable_errors(state_home, sim_model):
    no_key = sim_model(failure_rates={"auth": 1.0})
    backup = sim_model()
    result = await arun(rh.pipeline([llm(no_key, fallbacks=[backup])]), trace=False, cache=False)
    assert result.status == "succeeded" and result.nodes["ask"].model == backup
    assert len(result.nodes["ask"].attempts) == 2


async def test_cache_hit_costs_no_call_and_is_marked(state_home, sim_model):
    model = sim_model(latency_ms=20)
    spec = rh.pipeline([llm(model, prompt="cache me")])
    first = await arun(spec, trace=False)
    second = await arun(spec, trace=False)
    assert first.nodes["ask"].status == "succeeded" and first.cost_usd > 0
    hit = second.nodes["ask"]
    assert hit.status == "cached" and hit.cache_hit and hit.cost_usd == 0 and second.cost_usd == 0
    assert hit.value == first.nodes["ask"].value
    assert simulated.stats(model).calls == 1
    # a different prompt, model param or schema is a different key
    other = rh.pipeline([llm(model, prompt="cache me", params={"temperature": 0.5})])
    assert (await arun(other, trace=False)).nodes["ask"].status == "succeeded"
    assert simulated.stats(model).calls == 2
    # a cache: {enabled: false} node always calls
    uncached = rh.pipeline([llm(model, prompt="cache me", cache={"enabled": False})])
    assert (await arun(uncached, trace=False)).nodes["ask"].status == "succeeded"


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number", "minimum": 0}},
    "required": ["answer", "confidence"],
}


async def test_structured_output_is_parsed_and_validated(state_home, sim_model):
    model = sim_model(json_value={"answer": "42", "confidence": 0.9})
    result = await arun(rh.pipeline([llm(model, output_schema=SCHEMA)]), trace=False, cache=False)
    assert result.nodes["ask"].value == {"answer": "42", "confidence": 0.9}


async def test_malformed_json_gets_one_repair_attempt(state_home, sim_model):
    model = sim_model(fail_first=["malformed_json"], json_value={"answer": "ok", "confidence": 1})
    result = await arun(rh.pipeline([llm(model, output_schema=SCHEMA)]), trace=False, cache=False)
    node = result.nodes["ask"]
    assert result.status == "succeeded" and node.value == {"answer": "ok", "confidence": 1}
    assert [a.purpose for a in node.attempts] == ["call", "repair"]
    assert "not valid JSON" in node.attempts[0].validation_error


async def test_output_that_stays_invalid_fails_clearly(state_home, sim_model):
    model = sim_model(json_value={"answer": 3})  # wrong type, missing field: every time
    result = await arun(rh.pipeline([llm(model, output_schema=SCHEMA)]), trace=False, cache=False)
    node = result.nodes["ask"]
    assert result.status == "failed"
    assert len(node.attempts) == 2
    assert "does not match the output schema" in node.error and "after one repair attempt" in node.error
    assert "confidence" in node.error


async def test_usage_and_cost_come_from_the_response(state_home, sim_model):
    model = sim_model(output_tokens=50, input_cost_per_token=1e-6, output_cost_per_token=1e-5)
    result = await arun(rh.pipeline([llm(model, prompt="count these tokens")]), trace=False, cache=False)
    node = result.nodes["ask"]
    assert node.usage.output_tokens == 50 and node.usage.input_tokens > 0
    assert node.cost_usd == pytest.approx(node.usage.input_tokens * 1e-6 + 50 * 1e-5)
    assert result.usage.output_tokens == 50


def test_default_model_is_local_without_api_keys(monkeypatch):
    from contextflow.cost.model_choice import LOCAL_DEFAULT_MODEL, choose_models

    def chosen() -> str:
        return choose_models(rh.pipeline([{"id": "free", "kind": "llm", "prompt": "a"}])).nodes["free"].models[0]

    for key in ("CONTEXTFLOW_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CONTEXTFLOW_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    assert chosen() == LOCAL_DEFAULT_MODEL == "local/smollm2-135m"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert chosen() == "claude-haiku-4-5"
    monkeypatch.setenv("CONTEXTFLOW_OFFLINE", "1")
    assert chosen() == LOCAL_DEFAULT_MODEL  # offline keeps even a model-less node local
    monkeypatch.setenv("CONTEXTFLOW_MODEL", "sim/echo")
    assert chosen() == "sim/echo"


async def test_model_override_applies_to_nodes_without_a_model(state_home, sim_model):
    chosen = sim_model()
    pinned = sim_model()
    spec = rh.pipeline(
        [{"id": "free", "kind": "llm", "prompt": "a"}, {"id": "pinned", "kind": "llm", "model": pinned, "prompt": "b"}],
        defaults={"model": "sim/echo"},
    )
    result = await arun(spec, trace=False, cache=False, model=chosen)
    assert result.nodes["free"].model == chosen and result.nodes["pinned"].model == pinned

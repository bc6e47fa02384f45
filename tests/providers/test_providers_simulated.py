"""The sim provider: reachable through litellm, deterministic, faults map to litellm's errors."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from contextflow.providers import register_all, simulated
from contextflow.runtime.calls import litellm_module


@pytest.fixture(scope="module")
def litellm():
    return litellm_module()


def test_register_all_is_idempotent(litellm):
    first = register_all()
    second = register_all()
    assert first == second and "sim" in first and "local" in first
    assert [e["provider"] for e in litellm.custom_provider_map].count("sim") == 1


async def test_echo_usage_and_latency(litellm):
    simulated.configure("ptest-echo", latency_ms=120, output_tokens=9)
    start = time.monotonic()
    response = await litellm.acompletion(model="sim/ptest-echo", messages=[{"role": "user", "content": "ping"}])
    assert time.monotonic() - start >= 0.12
    assert response.choices[0].message.content == "ping"
    assert response.usage.completion_tokens == 9 and response.usage.prompt_tokens > 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [("429", "RateLimitError"), ("500", "InternalServerError"), ("503", "ServiceUnavailableError"),
     ("auth", "AuthenticationError"), ("bad_request", "BadRequestError"), ("connection", "APIConnectionError")],
)
async def test_faults_raise_litellm_errors(litellm, fault, error):
    name = f"ptest-fault-{fault}"
    simulated.configure(name, fail_first=[fault])
    messages = [{"role": "user", "content": f"fault {fault}"}]
    with pytest.raises(getattr(litellm, error)):
        await litellm.acompletion(model=f"sim/{name}", messages=messages)
    ok = await litellm.acompletion(model=f"sim/{name}", messages=messages)  # the second call of it succeeds
    assert ok.choices[0].message.content == f"fault {fault}"


async def test_failure_rates_are_deterministic_by_seed(litellm):
    def outcomes(seed: int) -> list[str]:
        simulated.configure("ptest-seeded", failure_rates={"429": 0.5}, seed=seed)
        simulated.reset("ptest-seeded")
        return [simulated._plan("ptest-seeded", [{"role": "user", "content": f"q{i}"}], {}).fault or "ok"
                for i in range(40)]

    assert outcomes(1) == outcomes(1)
    assert outcomes(1) != outcomes(2)
    assert 8 < outcomes(1).count("429") < 32


async def test_json_reply_matches_the_requested_schema(litellm):
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "minItems": 2},
            "score": {"type": "integer", "minimum": 5},
            "ok": {"type": "boolean"},
        },
        "required": ["title", "tags", "score", "ok"],
    }
    response = await litellm.acompletion(
        model="sim/echo", messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    jsonschema.validate(json.loads(response.choices[0].message.content), schema)


async def test_per_call_options_through_params(litellm):
    response = await litellm.acompletion(
        model="sim/echo", messages=[{"role": "user", "content": "hello"}], sim={"reply": "scripted"}
    )
    assert response.choices[0].message.content == "scripted"
    with pytest.raises(Exception, match="unknown sim option"):
        await litellm.acompletion(model="sim/echo", messages=[{"role": "user", "content": "x"}], sim={"bogus": 1})


def test_sim_config_and_the_shared_schema_agree() -> None:
    from dataclasses import fields

    from contextflow.core.sim_options import SimOptions

    defaults = simulated.SimConfig()
    assert [f.name for f in fields(simulated.SimConfig)] == list(SimOptions.model_fields)
    assert SimOptions().model_dump() == {f.name: getattr(defaults, f.name) for f in fields(simulated.SimConfig)}


def test_options_are_checked_and_coerced_by_the_shared_schema() -> None:
    config = simulated.SimConfig().merged({"latency_ms": "5", "fail_first": ["429", None]})
    assert config.latency_ms == 5.0 and config.fail_first == ["429", None]  # what the pipeline check accepts
    for bad in ({"latency_ms": "slow"}, {"failure_rates": {"429": 2}}, {"failure_rates": {"404": 0.1}},
                {"fail_first": ["nope"]}, {"hang_s": -1}):
        with pytest.raises(simulated.InvalidSimOptions, match="invalid sim option"):
            simulated.SimConfig().merged(bad)
    with pytest.raises(simulated.InvalidSimOptions, match="must be a mapping"):
        simulated.SimConfig().merged(["latency_ms"])  # type: ignore[arg-type]


async def test_wrong_sim_options_in_a_call_are_a_bad_request_not_a_connection_error(litellm):
    from contextflow.runtime.policies import is_retryable

    with pytest.raises(litellm.BadRequestError, match="latency_ms") as caught:
        await litellm.acompletion(model="sim/echo", messages=[{"role": "user", "content": "x"}],
                                  sim={"latency_ms": "slow"})
    assert not is_retryable(caught.value)
async def test_a_streamed_reply_comes_in_chunks_with_the_usage_and_price_at_the_end(litellm):
    simulated.configure("ptest-stream", input_cost_per_token=1e-6, output_cost_per_token=3e-6)
    messages = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]
    whole = await litellm.acompletion(model="sim/ptest-stream", messages=messages)
    stream = await litellm.acompletion(model="sim/ptest-stream", messages=messages, stream=True,
                                       stream_options={"include_usage": True})
    pieces, usage, fields = [], None, {}
    async for chunk in stream:
        usage = getattr(chunk, "usage", None) or usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            fields.update(choice.delta.provider_specific_fields or {})
    assert pieces[:3] == ["the ", "quick ", "brown "] and len(pieces) == 9
    assert "".join(pieces) == whole.choices[0].message.content
    assert (usage.prompt_tokens, usage.completion_tokens) == (whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert fields["response_cost"] == pytest.approx(whole._hidden_params["response_cost"])
    assert fields["response_model"] == "sim/ptest-stream"


async def test_chunk_delay_spaces_the_chunks_and_a_whole_reply_waits_for_all_of_them(litellm, monkeypatch):
    simulated.configure("ptest-paced", latency_ms=40, chunk_delay_ms=10)
    waits: list[float] = []
    real_sleep = simulated.asyncio.sleep

    async def recorded(seconds: float) -> None:
        waits.append(round(seconds, 6))
        await real_sleep(0)

    monkeypatch.setattr(simulated.asyncio, "sleep", recorded)
    messages = [{"role": "user", "content": "one two three four"}]
    stream = await litellm.acompletion(model="sim/ptest-paced", messages=messages, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "one two three four"
    assert waits == [0.04, 0.01, 0.01, 0.01]  # to the first chunk, then between chunks
    waits.clear()
    await litellm.acompletion(model="sim/ptest-paced", messages=messages)
    assert waits == [pytest.approx(0.07)]


def test_a_repeated_word_never_fills_two_chunks_in_a_row() -> None:
    from contextflow.providers.chunks import distinct

    pieces = ["ha "] * 250 + ["done"]
    sent = list(distinct(pieces))
    assert "".join(sent) == "".join(pieces)
    assert all(a != b for a, b in zip(sent, sent[1:]))
    ending = list(distinct(["x ", "y ", "y "]))
    assert "".join(ending) == "x y y " and ending[-1] == "y "  # only the last may repeat the one before


async def test_a_long_repetitive_reply_streams_whole(litellm):
    # litellm fails a stream whose last 100 chunks are equal; the sim must never send such a run.
    simulated.configure("ptest-repeat", reply="word " * 300)
    stream = await litellm.acompletion(model="sim/ptest-repeat", messages=[{"role": "user", "content": "go"}],
                                       stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "word " * 300

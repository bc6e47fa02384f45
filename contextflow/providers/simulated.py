"""``sim/<name>``: a simulated model behind litellm's custom-provider API, for tests and benchmarks.

Calls go through ``litellm.acompletion`` like any other model, so the scheduler's real call path
(parameters, errors, usage, pricing) is exercised. A model's behaviour is a :class:`SimConfig`:
latency (fixed, uniform or lognormal), token usage, injected failures (429, 500, 503, timeouts,
connection drops, auth and bad-request errors, malformed JSON) and the reply (an echo of the
prompt, a script, or JSON conforming to the requested schema). Configure a model once with
:func:`configure`, or per call with a ``sim={...}`` entry in the node's ``params``.

Everything random is drawn from a generator seeded by (seed, model, prompt, how many times this
prompt was sent before), so a run is reproducible even when calls interleave differently.

A streamed call (``stream=True``) gets the same reply in word-sized chunks: the first after the
latency, each later one ``chunk_delay_ms`` after the one before, and a last chunk with the usage
and the provider's price. A call that does not stream waits as long as the whole stream would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, AsyncIterator, Iterator, Literal

from pydantic import ValidationError
from contextflow.core.tokens import count_message_tokens, count_tokens
from contextflow.providers.chunks import distinct, last_chunk, text_chunk

from contextflow.core import catalog
from contextflow.core.sim_options import SimOptions

DEFAULT_INPUT_COST = catalog.SIM_INPUT_COST
DEFAULT_OUTPUT_COST = catalog.SIM_OUTPUT_COST


class InvalidSimOptions(ValueError):
    """Options that :class:`~contextflow.core.sim_options.SimOptions` refuses."""


@dataclass
class SimConfig:
    """How one simulated model behaves; its fields are :class:`SimOptions`' (a test keeps them equal)."""

    latency_ms: float = 0.0
    latency_dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    latency_spread: float = 0.0  # uniform: +/- ms; lognormal: sigma
    chunk_delay_ms: float = 0.0  # between streamed chunks (the latency is the time to the first)
    output_tokens: int | None = None  # None: count the reply's tokens
    failure_rates: dict[str, float] = field(default_factory=dict)  # fault kind -> probability per call
    fail_first: list[str] = field(default_factory=list)  # faults for the first calls of each conversation
    hang_s: float = 30.0  # how long a "timeout" fault hangs before litellm.Timeout
    reply: str = "echo"  # "echo", or a fixed reply text
    script: dict[str, str] = field(default_factory=dict)  # prompt substring -> reply
    json_value: Any = None  # reply for JSON requests (else synthesised from the schema)
    seed: int = 0
    input_cost_per_token: float = DEFAULT_INPUT_COST
    output_cost_per_token: float = DEFAULT_OUTPUT_COST

    def merged(self, overrides: dict[str, Any] | None) -> "SimConfig":
        if not overrides:
            return self
        if not isinstance(overrides, dict):
            raise InvalidSimOptions(f"sim options must be a mapping, not {type(overrides).__name__}")
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise InvalidSimOptions(
                f"unknown sim option(s): {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(known))}")
        try:  # the same schema the pipeline checks use, so what they accept works here
            checked = SimOptions.model_validate({**asdict(self), **overrides})
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise InvalidSimOptions(f"invalid sim option(s): {details}") from None
        return SimConfig(**checked.model_dump())


@dataclass
class SimStats:
    calls: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)


_configs: dict[str, SimConfig] = {}
_stats: dict[str, SimStats] = {}
_all = SimStats()  # every sim model together (the provider as a whole)
_prompt_calls: dict[tuple[str, str], int] = {}
_lock = threading.Lock()


def configure(name: str, config: SimConfig | None = None, **options: Any) -> SimConfig:
    """Set how ``sim/<name>`` behaves and register its prices in the catalog."""
    name = name.removeprefix("sim/")
    cfg = (config or SimConfig()).merged(options)
    with _lock:
        _configs[name] = cfg
    catalog.register_model(
        f"sim/{name}", input_cost_per_token=cfg.input_cost_per_token,
        output_cost_per_token=cfg.output_cost_per_token, max_input_tokens=128_000, max_output_tokens=4096,
        provider="sim",
    )
    return cfg


def config_of(name: str) -> SimConfig:
    return _configs.get(name.removeprefix("sim/"), SimConfig())


def stats(name: str) -> SimStats:
    with _lock:
        return _stats.setdefault(name.removeprefix("sim/"), SimStats())


def provider_stats() -> SimStats:
    """Calls and peak concurrency of all sim models together."""
    return _all


def reset(name: str | None = None) -> None:
    """Forget call counts and stats (of one model, or all; the provider totals are reset too)."""
    global _all
    with _lock:
        _all = SimStats()
        if name is None:
            _stats.clear()
            _prompt_calls.clear()
            return
        short = name.removeprefix("sim/")
        _stats.pop(short, None)
        for key in [k for k in _prompt_calls if k[0] == short]:
            del _prompt_calls[key]


def _digest(messages: list[dict[str, Any]]) -> str:
    """The conversation's identity: its messages up to the first user turn, so a retry and a
    follow-up (e.g. a repair request) of the same conversation count as its later calls."""
    first_user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), len(messages) - 1)
    text = json.dumps(messages[: first_user + 1], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def synthesize(schema: dict[str, Any]) -> Any:
    """A small value that satisfies common JSON Schemas (types, required, enum, const, minItems)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return synthesize(schema[key][0])
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: synthesize(props.get(k, {})) for k in schema.get("required", list(props))}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1) if "maxItems" not in schema or schema["maxItems"] else 0
        return [synthesize(schema.get("items", {})) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    text = "simulated"
    return text * max(1, int(schema.get("minLength", 0)) // len(text) + 1) if schema.get("minLength") else text


@dataclass
class _Plan:
    latency_s: float
    fault: str | None
    content: str
    prompt_tokens: int
    completion_tokens: int
    hang_s: float
    cost_usd: float
    chunk_delay_s: float = 0.0

    def chunks(self) -> list[str]:
        """The reply in word-sized pieces (each word with the whitespace after it)."""
        return list(distinct(_PIECE.findall(self.content)))

    @property
    def total_s(self) -> float:
        """How long the whole reply takes: the latency, then a delay before every later chunk."""
        return self.latency_s + max(len(self.chunks()) - 1, 0) * self.chunk_delay_s


_PIECE = re.compile(r"\s+|\S+\s*")


def _plan(model: str, messages: list[dict[str, Any]], optional: dict[str, Any]) -> _Plan:
    import litellm  # heavy; litellm itself calls this provider, so it is loaded already
    try:
        cfg = config_of(model).merged(optional.get("sim"))
    except InvalidSimOptions as exc:  # a bad request, not a connection error: never worth a retry
        raise litellm.BadRequestError(str(exc), model=f"sim/{model}", llm_provider="sim") from None
    digest = _digest(messages)
    with _lock:
        index = _prompt_calls.get((model, digest), 0)
        _prompt_calls[(model, digest)] = index + 1
    rng = random.Random(f"{cfg.seed}|{model}|{digest}|{index}")
    if cfg.latency_dist == "uniform":
        latency = cfg.latency_ms + rng.uniform(-cfg.latency_spread, cfg.latency_spread)
    elif cfg.latency_dist == "lognormal":
        latency = cfg.latency_ms * rng.lognormvariate(0.0, cfg.latency_spread or 0.25)
    else:
        latency = cfg.latency_ms
    fault = cfg.fail_first[index] if index < len(cfg.fail_first) else None
    if fault is None:
        roll = rng.random()
        for kind, rate in sorted(cfg.failure_rates.items()):
            if roll < rate:
                fault = kind
                break
            roll -= rate
    content = _reply(cfg, messages, optional)
    if fault == "malformed_json":
        content = '{"result": "cut off'
    prompt_tokens = count_message_tokens(messages, f"sim/{model}")
    completion = cfg.output_tokens if cfg.output_tokens is not None else count_tokens(content, f"sim/{model}")
    cap = optional.get("max_tokens") or optional.get("max_completion_tokens")
    if cap:
        completion = min(completion, int(cap))
    in_price, out_price = cfg.input_cost_per_token, cfg.output_cost_per_token
    overrides = optional.get("sim") or {}
    declared = catalog.lookup(f"sim/{model}")
    if declared is not None and not {"input_cost_per_token", "output_cost_per_token"} & set(overrides):
        in_price, out_price = declared.input_cost_per_token, declared.output_cost_per_token  # e.g. a pipeline's models:
    cost = prompt_tokens * in_price + completion * out_price
    return _Plan(max(latency, 0.0) / 1000.0, fault, content, prompt_tokens, completion, cfg.hang_s, cost,
                 max(cfg.chunk_delay_ms, 0.0) / 1000.0)


def _reply(cfg: SimConfig, messages: list[dict[str, Any]], optional: dict[str, Any]) -> str:
    prompt = _last_user(messages)
    for needle, answer in cfg.script.items():
        if needle in prompt:
            return answer
    fmt = optional.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        if cfg.json_value is not None:
            return json.dumps(cfg.json_value)
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        return json.dumps(synthesize(schema))
    return prompt if cfg.reply == "echo" else cfg.reply


def _raise(fault: str, model: str) -> None:
    import litellm  # heavy; litellm itself calls this provider, so it is loaded already
    full = f"sim/{model}"
    if fault == "429":
        raise litellm.RateLimitError("simulated rate limit (429)", llm_provider="sim", model=full)
    if fault == "500":
        raise litellm.InternalServerError("simulated server error (500)", llm_provider="sim", model=full)
    if fault == "503":
        raise litellm.ServiceUnavailableError("simulated overload (503)", llm_provider="sim", model=full)
    if fault == "timeout":
        raise litellm.Timeout("simulated timeout", model=full, llm_provider="sim")
    if fault == "connection":
        raise litellm.APIConnectionError("simulated connection reset", llm_provider="sim", model=full)
    if fault == "auth":
        raise litellm.AuthenticationError("simulated invalid API key (401)", llm_provider="sim", model=full)
    if fault == "bad_request":
        raise litellm.BadRequestError("simulated bad request (400)", model=full, llm_provider="sim")
    raise ValueError(f"unknown sim fault '{fault}'")


def _response(model: str, plan: _Plan) -> Any:
    import litellm  # heavy; litellm itself calls this provider, so it is loaded already
    response = litellm.ModelResponse(
        model=f"sim/{model}",
        choices=[{"index": 0, "message": {"role": "assistant", "content": plan.content}, "finish_reason": "stop"}],
        usage={
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": plan.completion_tokens,
            "total_tokens": plan.prompt_tokens + plan.completion_tokens,
        },
    )
    # The provider states its own price (litellm then skips its price-map lookup for the model).
    response._hidden_params["response_cost"] = plan.cost_usd
    return response


class _Tracker:
    def __init__(self, model: str) -> None:
        self.stats = stats(model)

    def __enter__(self) -> "_Tracker":
        with _lock:
            self.total = _all
            for stat in (self.stats, self.total):
                stat.calls += 1
                stat.in_flight += 1
                stat.peak_in_flight = max(stat.peak_in_flight, stat.in_flight)
        return self

    def __exit__(self, *_: Any) -> None:
        with _lock:
            self.stats.in_flight -= 1
            self.total.in_flight -= 1

    def fault(self, kind: str | None) -> None:
        with _lock:
            if kind:
                self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
            self.stats.log.append({"t": time.monotonic(), "fault": kind})


def _make_handler() -> Any:
    from litellm import CustomLLM

    class SimulatedLLM(CustomLLM):  # type: ignore[misc]
        async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            plan = _plan(model, messages, kwargs.get("optional_params") or {})
            with _Tracker(model) as tracker:
                if plan.fault == "timeout":
                    await asyncio.sleep(plan.hang_s)
                elif plan.total_s:
                    await asyncio.sleep(plan.total_s)
                tracker.fault(plan.fault)
                if plan.fault and plan.fault != "malformed_json":
                    _raise(plan.fault, model)
            return _response(model, plan)

        def completion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            plan = _plan(model, messages, kwargs.get("optional_params") or {})
            with _Tracker(model) as tracker:
                time.sleep(plan.hang_s if plan.fault == "timeout" else plan.total_s)
                tracker.fault(plan.fault)
                if plan.fault and plan.fault != "malformed_json":
                    _raise(plan.fault, model)
            return _response(model, plan)

        async def astreaming(
            self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
        ) -> AsyncIterator[dict[str, Any]]:
            plan = _plan(model, messages, kwargs.get("optional_params") or {})
            with _Tracker(model) as tracker:
                wait = plan.hang_s if plan.fault == "timeout" else plan.latency_s
                if wait:
                    await asyncio.sleep(wait)
                tracker.fault(plan.fault)
                if plan.fault and plan.fault != "malformed_json":
                    _raise(plan.fault, model)
                for index, piece in enumerate(plan.chunks()):
                    if index and plan.chunk_delay_s:
                        await asyncio.sleep(plan.chunk_delay_s)
                    yield text_chunk(piece)
            yield last_chunk(f"sim/{model}", plan.prompt_tokens, plan.completion_tokens, "stop", plan.cost_usd)

        def streaming(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
            plan = _plan(model, messages, kwargs.get("optional_params") or {})
            with _Tracker(model) as tracker:
                time.sleep(plan.hang_s if plan.fault == "timeout" else plan.latency_s)
                tracker.fault(plan.fault)
                if plan.fault and plan.fault != "malformed_json":
                    _raise(plan.fault, model)
                for index, piece in enumerate(plan.chunks()):
                    if index and plan.chunk_delay_s:
                        time.sleep(plan.chunk_delay_s)
                    yield text_chunk(piece)
            yield last_chunk(f"sim/{model}", plan.prompt_tokens, plan.completion_tokens, "stop", plan.cost_usd)

    return SimulatedLLM()


STANDARD_MODELS: dict[str, dict[str, Any]] = {
    "echo": {},
    "fast": {"latency_ms": 5.0},
    "slow": {"latency_ms": 200.0},
    "cheap": {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7},
    "strong": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.5e-5, "latency_ms": 50.0},
}


def register() -> dict[str, Any]:
    """The ``custom_provider_map`` entry for ``sim``; also declares the standard sim models."""
    for name, options in STANDARD_MODELS.items():
        if name not in _configs:
            configure(name, **options)
    return {"provider": "sim", "custom_handler": _make_handler()}

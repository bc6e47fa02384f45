"""One model call through litellm, its worst-case estimate, and its price.

:func:`call_model` is the unit of work an executor runs for an ``llm`` node attempt. It returns
plain data (text, usage, the model that answered) so it can cross a process boundary; pricing is
done by the scheduler with :func:`price_call`, where the run's custom model declarations live.
:func:`stream_model` is the same call streamed: each piece of the reply goes to a callback as it
arrives, and it returns what :func:`call_model` would.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from contextflow.core import catalog
from contextflow.core.events import Usage
from contextflow.core.tokens import count_message_tokens, count_tokens
from contextflow.runtime.structured import without_lone_surrogates
from contextflow.providers import register_all

_setup_lock = threading.Lock()
_ready = False


def litellm_module() -> Any:
    """litellm, imported lazily, quiet, with contextflow's providers registered."""
    global _ready
    import litellm

    if not _ready:
        with _setup_lock:
            if not _ready:
                litellm.suppress_debug_info = True
                litellm.telemetry = False

                register_all()
                _ready = True
    return litellm


async def call_model(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    litellm = litellm_module()
    response = await litellm.acompletion(model=model, messages=messages, **params)
    choice = response.choices[0]
    message = choice.message
    usage = getattr(response, "usage", None)
    hidden = getattr(response, "_hidden_params", None) or {}
    tool_calls = getattr(message, "tool_calls", None)
    return {
        # A provider's JSON may carry half a surrogate pair; nothing downstream could write it.
        "content": without_lone_surrogates(message.content) if message.content is not None else "",
        "finish_reason": getattr(choice, "finish_reason", None),
        "tool_calls": [t.model_dump() if hasattr(t, "model_dump") else t for t in tool_calls] if tool_calls else None,
        "response_model": getattr(response, "model", None),
        "usage": {
            "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
            "cache_read_tokens": int(_nested(usage, "prompt_tokens_details", "cached_tokens")),
            "reasoning_tokens": int(_nested(usage, "completion_tokens_details", "reasoning_tokens")),
        },
        "provider_cost_usd": hidden.get("response_cost"),
    }


async def stream_model(
    model: str, messages: list[dict[str, Any]], params: dict[str, Any], on_delta: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """:func:`call_model` streamed: ``on_delta(text)`` gets each piece of the reply as it arrives.

    The result has :func:`call_model`'s keys, plus ``time_to_first_token_s``. Usage comes from the
    stream's usage block (asked for with ``include_usage``); a provider that sends none has its
    tokens counted with the model's tokenizer. A provider's own price and model name ride in the
    chunks' ``provider_specific_fields`` (contextflow's providers put them there).
    """
    litellm = litellm_module()
    chosen = {k: v for k, v in params.items() if k not in ("stream", "stream_options")}
    started = time.monotonic()
    stream = await litellm.acompletion(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}, **chosen
    )
    pieces: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: Any = None
    finish: str | None = None
    response_model: str | None = None
    provider_cost: float | None = None
    provider_model: str | None = None
    first: float | None = None
    try:
        async for chunk in stream:
            usage = getattr(chunk, "usage", None) or usage
            response_model = getattr(chunk, "model", None) or response_model
            for choice in getattr(chunk, "choices", None) or ():
                finish = getattr(choice, "finish_reason", None) or finish
                delta = getattr(choice, "delta", None)
                if delta is None:
                    continue
                text = getattr(delta, "content", None)
                if text:
                    if first is None:
                        first = time.monotonic() - started
                    text = without_lone_surrogates(text)
                    pieces.append(text)
                    if on_delta is not None:
                        on_delta(text)
                for call in getattr(delta, "tool_calls", None) or ():
                    _add_tool_call_delta(calls, call)
                fields = getattr(delta, "provider_specific_fields", None) or {}
                if fields.get("response_cost") is not None:
                    provider_cost = float(fields["response_cost"])
                provider_model = fields.get("response_model") or provider_model
    except litellm.exceptions.MidStreamFallbackError as exc:
        # litellm wraps every error a stream raises (for its router's fallbacks); the provider's
        # own error is what retries and reports classify, as they do for a call that does not stream.
        if isinstance(exc.original_exception, Exception):
            raise exc.original_exception from None
        raise
    content = without_lone_surrogates("".join(pieces))
    if usage is not None and (getattr(usage, "prompt_tokens", 0) or getattr(usage, "completion_tokens", 0)):
        counts = {
            "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
            "cache_read_tokens": int(_nested(usage, "prompt_tokens_details", "cached_tokens")),
            "reasoning_tokens": int(_nested(usage, "completion_tokens_details", "reasoning_tokens")),
        }
    else:  # no usage block: count what was sent and what came back with the model's tokenizer
        counts = {"input_tokens": count_prompt_tokens(model, messages), "output_tokens": count_tokens(content, model),
                  "cache_read_tokens": 0, "reasoning_tokens": 0}
    return {
        "content": content,
        "finish_reason": finish,
        "tool_calls": [calls[i] for i in sorted(calls)] or None,
        "response_model": provider_model or response_model,
        "usage": counts,
        "provider_cost_usd": provider_cost,
        "time_to_first_token_s": first,
    }


def _add_tool_call_delta(calls: dict[int, dict[str, Any]], delta: Any) -> None:
    """Fold one streamed fragment of a tool call into the whole call (id, name, arguments)."""
    index = int(getattr(delta, "index", None) or 0)
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call["id"] = getattr(delta, "id", None) or call["id"]
    call["type"] = getattr(delta, "type", None) or call["type"]
    function = getattr(delta, "function", None)
    if function is not None:
        call["function"]["name"] += getattr(function, "name", None) or ""
        call["function"]["arguments"] += getattr(function, "arguments", None) or ""


def _nested(obj: Any, first: str, second: str) -> int:
    inner = getattr(obj, first, None)
    value = getattr(inner, second, None) if inner is not None else None
    return value or 0


def count_prompt_tokens(model: str, messages: list[dict[str, Any]]) -> int:
    return count_message_tokens(messages, model)


def model_info(model: str) -> catalog.ModelInfo | None:
    return catalog.lookup(model)


def worst_case(model: str, messages: list[dict[str, Any]], max_output_tokens: int) -> tuple[float, int]:
    """(cost in $, tokens) if the call uses every output token it is allowed."""
    prompt_tokens = count_prompt_tokens(model, messages)
    # Tokenizers differ between the counter and the provider by a few tokens per message.
    prompt_tokens = int(prompt_tokens * 1.05) + 4 * len(messages) + 8
    info = model_info(model)
    cost = info.cost(prompt_tokens, max_output_tokens) if info else 0.0
    return cost, prompt_tokens + max_output_tokens


def price_call(model: str, usage: Usage, provider_cost: float | None) -> tuple[float, str]:
    """(cost in $, where the price came from: provider | price_map | none).

    What the provider reports it billed wins over the price map: the run is charged what it paid.
    """
    if provider_cost is not None:
        return float(provider_cost), "provider"
    listed = catalog_price(model, usage)
    return (listed, "price_map") if listed is not None else (0.0, "none")


def catalog_price(model: str, usage: Usage) -> float | None:
    """What ``usage`` costs at the price map's (or the catalog's) price, or None for an unknown model."""
    info = model_info(model)
    if info is None:
        return None
    if not info.custom:
        try:
            litellm = litellm_module()
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model,
                prompt_tokens=usage.input_tokens,
                completion_tokens=usage.output_tokens,
                cache_read_input_tokens=usage.cache_read_tokens,
            )
            return float(prompt_cost + completion_cost)
        except Exception:  # fall back to the catalog's flat per-token prices
            pass
    return info.cost(usage.input_tokens, usage.output_tokens)

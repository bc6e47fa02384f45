"""One model call through litellm, its worst-case estimate, and its price.

:func:`call_model` is the unit of work an executor runs for an ``llm`` node attempt. It returns
plain data (text, usage, the model that answered) so it can cross a process boundary; pricing is
done by the scheduler with :func:`price_call`, where the run's custom model declarations live.
"""

from __future__ import annotations

import threading
from typing import Any

from contextflow.core import catalog
from contextflow.core.events import Usage
from contextflow.core.tokens import count_message_tokens
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

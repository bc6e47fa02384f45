"""Token counts with the target model's tokenizer, through litellm (offline).

The one place contextflow counts tokens: the packer, the planner, the static checks, budget
reservations and the offline providers all call :func:`count_tokens` or
:func:`count_message_tokens`. When litellm cannot count with a model's own tokenizer (a name it
does not know how to tokenize, a Hugging Face tokenizer that is not cached offline), the count
falls back to the default tokenizer, the same one fallback for every caller.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Mapping, Sequence


#: Used when no model is named or the model's tokenizer cannot be loaded: OpenAI's tokenizer.
DEFAULT_TOKENIZER_MODEL = "gpt-4o"
_lock = threading.Lock()


def tokenizer_model(model: str | None) -> str:
    """The model name whose tokenizer counts for ``model``."""
    if not model:
        return DEFAULT_TOKENIZER_MODEL
    # Our own providers (sim/, replay/) have no tokenizer in litellm's map; count like GPT-4o.
    if model.split("/", 1)[0] in ("sim", "replay"):
        return DEFAULT_TOKENIZER_MODEL
    return model


def _litellm() -> Any:
    import litellm

    return litellm


def _counted(model: str, **what: Any) -> int:
    litellm = _litellm()
    with _lock:  # litellm caches tokenizers lazily; keep the first load single-threaded
        try:
            return int(litellm.token_counter(model=model, **what))
        except Exception:
            if model == DEFAULT_TOKENIZER_MODEL:
                raise
            return int(litellm.token_counter(model=DEFAULT_TOKENIZER_MODEL, **what))


@lru_cache(maxsize=65536)
def _count_text(model: str, text: str) -> int:
    return _counted(model, text=text)


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens ``text`` takes for ``model`` (litellm's tokenizer for it, offline)."""
    if not text:
        return 0
    return _count_text(tokenizer_model(model), text)


def count_message_tokens(messages: Sequence[Mapping[str, Any]], model: str | None = None) -> int:
    """Tokens a chat prompt takes for ``model``, with the per-message framing chat models add."""
    if not messages:
        return 0
    return _counted(tokenizer_model(model), messages=[dict(m) for m in messages])

"""Token counts with the target model's tokenizer, through litellm (offline)."""

from __future__ import annotations

import threading
from functools import lru_cache


#: Used when no model is named: litellm falls back to OpenAI's cl100k/o200k tokenizers.
DEFAULT_TOKENIZER_MODEL = "gpt-4o"
_lock = threading.Lock()


def _tokenizer_model(model: str | None) -> str:
    if not model:
        return DEFAULT_TOKENIZER_MODEL
    # Our own providers (sim/, local/, replay/) have no tokenizer in litellm's map; count like GPT-4o.
    if model.split("/", 1)[0] in ("sim", "replay"):
        return DEFAULT_TOKENIZER_MODEL
    return model


@lru_cache(maxsize=65536)
def _count(model: str, text: str) -> int:
    import litellm

    with _lock:  # litellm caches tokenizers lazily; keep the first load single-threaded
        return int(litellm.token_counter(model=model, text=text))


def count_tokens(text: str, model: str | None = None) -> int:
    """Tokens ``text`` takes for ``model`` (litellm's tokenizer for it, offline)."""
    if not text:
        return 0
    return _count(_tokenizer_model(model), text)

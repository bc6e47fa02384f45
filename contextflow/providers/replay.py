"""``replay/<model>``: a litellm provider that serves recorded responses for (model, prompt).

An offline evaluation harness must run the real scheduler path (templates, cascades, verifiers,
budgets, cost accounting) without calling any API. Recordings come from :func:`record`, a
traced run (``contextflow.analysis.recordings.load_trace``), a JSONL file (``{"model", "prompt", "response",
"prompt_tokens"?, "completion_tokens"?}`` per line) or a CSV of outcomes like
``../shared/data/routellm`` (:func:`load_outcomes_csv`). A call is matched on
the model and its last user message (whitespace-trimmed); usage is the recorded token counts or
contextflow's count of the texts; cost is the *underlying* model's catalog price, so a replayed run
costs what the real one would have. A prompt with no recording is a clear, non-retried error.
"""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contextflow.core.errors import UserError
from contextflow.core import catalog
from contextflow.core.tokens import count_tokens

PROVIDER = "replay"
_lock = threading.Lock()
_recordings: dict[tuple[str, str], "Recording"] = {}


@dataclass(frozen=True)
class Recording:
    model: str
    prompt: str
    response: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def _key(model: str, prompt: str) -> tuple[str, str]:
    model = model[len(PROVIDER) + 1:] if model.startswith(PROVIDER + "/") else model
    return model, prompt.strip()


def record(model: str, prompt: str, response: str, *, prompt_tokens: int | None = None,
           completion_tokens: int | None = None) -> None:
    """Add one recorded response (``model`` without the ``replay/`` prefix)."""
    key = _key(model, prompt)
    with _lock:
        _recordings[key] = Recording(key[0], key[1], response, prompt_tokens, completion_tokens)


def clear() -> None:
    with _lock:
        _recordings.clear()


def recorded_count() -> int:
    return len(_recordings)


def load_jsonl(path: str | Path) -> int:
    """Load recordings from a JSONL file; returns how many were added."""
    path = Path(path)
    added = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            record(row["model"], row["prompt"], row["response"], prompt_tokens=row.get("prompt_tokens"),
                   completion_tokens=row.get("completion_tokens"))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}:{number}: not a recording ({exc})",
                            hint='each line is {"model": ..., "prompt": ..., "response": ...}') from None
        added += 1
    return added


def load_outcomes_csv(path: str | Path, models: dict[str, str]) -> int:
    """Load a CSV with a ``prompt`` column and one response column per model.

    ``models`` maps a response column to the model it came from, e.g.
    ``{"weak_response": "together_ai/mistralai/Mixtral-8x7B-Instruct-v0.1"}``.
    """
    path = Path(path)
    added = 0
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ["prompt", *models] if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path} lacks the column(s) {', '.join(missing)}",
                            hint=f"its columns are {', '.join(reader.fieldnames or [])}")
        for row in reader:
            for column, model in models.items():
                if row[column]:
                    record(model, row["prompt"], row[column])
                    added += 1
    return added


def prompt_of(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    content = (users[-1] if users else messages[-1]).get("content", "") if messages else ""
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _response(model: str, messages: list[dict[str, Any]]) -> Any:
    import litellm


    key = _key(model, prompt_of(messages))
    found = _recordings.get(key)
    if found is None:
        raise litellm.BadRequestError(
            f"replay/{key[0]} has no recorded response for this prompt ({len(_recordings)} recordings loaded; "
            f"prompt starts {key[1][:60]!r})", model=f"{PROVIDER}/{key[0]}", llm_provider=PROVIDER)
    counted_as = f"{PROVIDER}/{key[0]}"
    prompt_tokens = found.prompt_tokens if found.prompt_tokens is not None else count_tokens(found.prompt, counted_as)
    completion_tokens = (found.completion_tokens if found.completion_tokens is not None
                         else count_tokens(found.response, counted_as))
    response = litellm.ModelResponse(
        model=f"{PROVIDER}/{key[0]}",
        choices=[{"index": 0, "message": {"role": "assistant", "content": found.response}, "finish_reason": "stop"}],
        usage={"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
               "total_tokens": prompt_tokens + completion_tokens},
    )
    info = catalog.lookup(key[0])
    response._hidden_params["response_cost"] = info.cost(prompt_tokens, completion_tokens) if info else 0.0
    return response


def _make_handler() -> Any:
    from litellm import CustomLLM

    class ReplayLLM(CustomLLM):  # type: ignore[misc]
        async def acompletion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            return _response(model, messages)

        def completion(self, model: str, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
            return _response(model, messages)

    return ReplayLLM()


def register() -> dict[str, Any]:
    """The ``custom_provider_map`` entry for ``replay`` (called by ``providers.register_all``)."""
    return {"provider": PROVIDER, "custom_handler": _make_handler()}

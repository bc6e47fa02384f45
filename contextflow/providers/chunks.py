"""The chunks contextflow's own providers stream through litellm (``GenericStreamingChunk`` dicts).

litellm's stream wrapper fails a stream whose last 100 chunks carry the same text (it takes that
for a model stuck in a loop), which a call that does not stream never does. A reply may well
repeat a word many times, so :class:`DistinctPieces` never lets two chunks in a row carry the
same text: a piece equal to the one before waits and goes out joined to the next (only a reply's
last piece may repeat the one before it).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator


def text_chunk(text: str) -> dict[str, Any]:
    """A chunk carrying a piece of the reply."""
    return {"text": text, "tool_use": None, "is_finished": False, "finish_reason": "", "usage": None, "index": 0}


def last_chunk(response_model: str, prompt_tokens: int, completion_tokens: int, finish: str,
               cost_usd: float) -> dict[str, Any]:
    """The closing chunk: finish reason and usage, and (as a whole response states them in its
    hidden params) the provider's price and model name, read by ``runtime.calls.stream_model``."""
    return {
        "text": "", "tool_use": None, "is_finished": True, "finish_reason": finish, "index": 0,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "provider_specific_fields": {"response_cost": cost_usd, "response_model": response_model},
    }


class DistinctPieces:
    """Feed pieces in order with :meth:`push` (what to send now), then :meth:`flush` at the end.
    Together the pieces sent are exactly the pieces fed, and no two in a row are equal but,
    possibly, the last two."""

    def __init__(self) -> None:
        self._last: str | None = None
        self._held = ""

    def push(self, piece: str) -> list[str]:
        if not piece:
            return []
        if self._held:
            piece, self._held = self._held + piece, ""
        if piece == self._last:
            self._held = piece
            return []
        self._last = piece
        return [piece]

    def flush(self) -> list[str]:
        held, self._held = self._held, ""
        return [held] if held else []


def distinct(pieces: Iterable[str]) -> Iterator[str]:
    """:class:`DistinctPieces` over a whole sequence."""
    pending = DistinctPieces()
    for piece in pieces:
        yield from pending.push(piece)
    yield from pending.flush()

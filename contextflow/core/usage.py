"""Token counts of a model call, or a sum of several."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(slots=True)
class Usage:
    """Token counts of one model call (or a sum of several)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.reasoning_tokens += other.reasoning_tokens

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Usage":
        if not data:
            return cls()
        return cls(
            int(data.get("input_tokens", 0) or 0),
            int(data.get("output_tokens", 0) or 0),
            int(data.get("cache_read_tokens", 0) or 0),
            int(data.get("reasoning_tokens", 0) or 0),
        )

"""Content-addressed cache of node results, one JSON file per key under the state folder.

The key is a SHA-256 of everything that determines a node's output: its kind and spec (less the
fields that only steer execution, such as retries or ``when``), its rendered inputs (the messages
or arguments after references were substituted), the model and the call parameters. Two nodes,
runs or pipelines that would make the same call share one entry. Files are written to a temporary
name and renamed into place, so a reader never sees half an entry even across processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contextflow.core.events import Usage
from contextflow.core.results import decode_value, encode_value, usage_from_dict

CACHE_FORMAT = 1

# Spec fields that steer how a node runs but not what it computes.
EXECUTION_ONLY_FIELDS = frozenset(
    {"id", "description", "when", "approval", "depends_on", "retry", "timeout_s", "cache", "resources", "fallbacks"}
)


def cache_key(parts: dict[str, Any]) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def spec_fingerprint(node_dump: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node_dump.items() if k not in EXECUTION_ONLY_FIELDS}


@dataclass(slots=True)
class CacheEntry:
    value: Any
    usage: Usage
    cost_usd: float
    model: str | None
    created_at: float


class ResultCache:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key[2:]}.json"

    def get(self, key: str, *, ttl_s: float | None = None) -> CacheEntry | None:
        path = self._path(key)
        try:
            raw = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            data = json.loads(raw)
            created = float(data["created_at"])
        except (ValueError, KeyError, TypeError):
            return None  # a damaged entry is a miss; the next put replaces it
        if ttl_s is not None and time.time() - created > ttl_s:
            return None
        return CacheEntry(
            value=decode_value(data["value"]),
            usage=usage_from_dict(data.get("usage")),
            cost_usd=float(data.get("cost_usd", 0.0)),
            model=data.get("model"),
            created_at=created,
        )

    def put(self, key: str, entry: CacheEntry) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(
            {
                "value": encode_value(entry.value),
                "usage": {
                    "input_tokens": entry.usage.input_tokens,
                    "output_tokens": entry.usage.output_tokens,
                    "cache_read_tokens": entry.usage.cache_read_tokens,
                    "reasoning_tokens": entry.usage.reasoning_tokens,
                },
                "cost_usd": entry.cost_usd,
                "model": entry.model,
                "created_at": entry.created_at,
            }
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class MemoryResultCache:
    """The same cache kept in a dictionary, for runs that write nothing to disk.

    Entries are stored encoded, as on disk, so a hit returns a fresh copy of the value."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, Usage, float, str | None, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, *, ttl_s: float | None = None) -> CacheEntry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        value, usage, cost, model, created = found
        if ttl_s is not None and time.time() - created > ttl_s:
            return None
        return CacheEntry(decode_value(value), Usage(usage.input_tokens, usage.output_tokens,
                                                     usage.cache_read_tokens, usage.reasoning_tokens),
                          cost, model, created)

    def put(self, key: str, entry: CacheEntry) -> None:
        u = entry.usage
        self._entries[key] = (encode_value(entry.value),
                              Usage(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens),
                              entry.cost_usd, entry.model, entry.created_at)

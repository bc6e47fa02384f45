"""What a run produces: one :class:`NodeResult` per node and a :class:`RunResult` for the run.

A node's tries are typed :class:`~contextflow.core.attempts.Attempt` values and a node held at
a gate carries a :class:`~contextflow.core.waiting.Waiting`; both are importable from here.

Results are persisted (run store, cache) as JSON. Values that are pydantic models (a
``ContextWindow``, a python node's typed output) are stored with their class path and rebuilt on
load, but only for classes inside ``contextflow``: a stored file must not choose what gets imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from contextflow.core.attempts import Attempt, EscalationStop, RoutingDecision, StepDown, Verdict
from contextflow.core.events import NodeStatus, RunStatus
from contextflow.core.usage import Usage
from contextflow.core.waiting import Waiting

__all__ = [
    "FINISHED_STATES", "Attempt", "EscalationStop", "NodeResult", "RoutingDecision", "RunResult", "StepDown",
    "Verdict", "Waiting", "decode_attempts", "decode_value", "encode_attempts", "encode_value", "to_jsonable",
    "usage_from_dict",
]

#: Node states after which a node never runs again in this run (resume skips them).
FINISHED_STATES: frozenset[str] = frozenset({"succeeded", "cached", "skipped"})

_MODEL_TAG = "__contextflow_model__"
_TRUSTED_MODULE_PREFIX = "contextflow."


@dataclass(slots=True)
class NodeResult:
    node_id: str
    status: NodeStatus
    value: Any = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    cache_hit: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    error_type: str | None = None
    waiting: Waiting | None = None  # set when status is "waiting": why, and what a person decides on

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES

    @property
    def duration_s(self) -> float:
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return self.finished_at - self.started_at


@dataclass(slots=True)
class RunResult:
    run_id: str
    status: RunStatus
    outputs: dict[str, Any]
    cost_usd: float
    usage: Usage
    nodes: dict[str, NodeResult]
    pipeline: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest (what ``contextflow run --json`` prints)."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "outputs": to_jsonable(self.outputs),
            "cost_usd": self.cost_usd,
            "usage": dataclasses.asdict(self.usage),
            "error": self.error,
            "nodes": {
                nid: {
                    "status": r.status,
                    "cost_usd": r.cost_usd,
                    "model": r.model,
                    "cache_hit": r.cache_hit,
                    "attempts": len(r.attempts),
                    "duration_s": round(r.duration_s, 4),
                    "error": r.error,
                }
                for nid, r in self.nodes.items()
            },
        }


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump") and hasattr(type(value), "model_validate"):
        cls = type(value)
        return {_MODEL_TAG: f"{cls.__module__}:{cls.__qualname__}", "data": value.model_dump(mode="json")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def _restore(obj: dict[str, Any]) -> Any:
    path = obj.get(_MODEL_TAG)
    if path is None or set(obj) != {_MODEL_TAG, "data"}:
        return obj
    module, _, qualname = str(path).partition(":")
    if not module.startswith(_TRUSTED_MODULE_PREFIX):
        return obj["data"]
    try:
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        return cls.model_validate(obj["data"])
    except Exception:  # a renamed class must not make a stored run unreadable
        return obj["data"]


# One encoder instance: json.dumps with any non-default option builds a new encoder per call.
_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":"))
_ATTEMPTS_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


_ASCII_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=True, separators=(",", ":"))
_ASCII_ATTEMPTS_ENCODER = json.JSONEncoder(default=str, ensure_ascii=True, separators=(",", ":"))


def _storable(text: str, value: Any, fallback: json.JSONEncoder) -> str:
    """``text`` unless it holds a lone surrogate, which SQLite cannot store as UTF-8; then the
    ASCII form, whose ``\\udXXX`` escapes decode back to the same value."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return fallback.encode(value)
    return text


def encode_value(value: Any) -> str:
    return _storable(_ENCODER.encode(value), value, _ASCII_ENCODER)


def encode_attempts(attempts: list[Attempt]) -> str:
    rows = [a.to_dict() for a in attempts]
    return _storable(_ATTEMPTS_ENCODER.encode(rows), rows, _ASCII_ATTEMPTS_ENCODER)


def decode_attempts(text: str | None) -> list[Attempt]:
    """Stored attempts (typed rows, or the plain dicts of older runs)."""
    if not text:
        return []
    return [Attempt.from_dict(row) for row in json.loads(text) if isinstance(row, dict)]


def decode_value(text: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text, object_hook=_restore)


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for printing (pydantic models as their fields, no type tags)."""
    return json.loads(json.dumps(value, default=_plain_default, ensure_ascii=False))


def _plain_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return _default(value)


def usage_from_dict(data: dict[str, Any] | None) -> Usage:
    return Usage.from_dict(data)

"""Events the scheduler emits; tracing, the run view and the viewer consume them.

The engine never prints: everything a person or a store may want to know about a run leaves
the scheduler as one of these values, delivered synchronously to every subscribed sink. Sinks
must be cheap (append to a buffer) because they run on the scheduler's loop.

Events are small slotted dataclasses rather than pydantic models: a run of 1k no-op nodes emits
several thousand of them and the scheduler's per-node overhead budget is tens of microseconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from contextflow.core.attempts import Attempt
from contextflow.core.usage import Usage
from contextflow.core.waiting import Waiting

NodeStatus = Literal[
    "pending", "running", "succeeded", "failed", "skipped", "cached", "waiting", "cancelled"
]
RunStatus = Literal["running", "succeeded", "failed", "cancelled", "waiting", "budget_exceeded"]


@dataclass(slots=True)
class Event:
    run_id: str
    ts: float = field(default_factory=time.time, kw_only=True)


@dataclass(slots=True)
class RunStarted(Event):
    pipeline: str
    inputs: dict[str, Any]
    node_ids: list[str]
    edges: list[tuple[str, str]]
    resumed: bool = False


@dataclass(slots=True)
class RunFinished(Event):
    status: RunStatus
    outputs: dict[str, Any]
    cost_usd: float
    usage: Usage
    error: str | None = None


@dataclass(slots=True)
class NodeStarted(Event):
    node_id: str
    kind: str


@dataclass(slots=True)
class NodeFinished(Event):
    node_id: str
    status: NodeStatus  # succeeded | cached
    value: Any
    cost_usd: float
    usage: Usage
    model: str | None = None
    cache_hit: bool = False
    duration_s: float = 0.0


@dataclass(slots=True)
class NodeFailed(Event):
    node_id: str
    error: str
    error_type: str
    duration_s: float = 0.0


@dataclass(slots=True)
class NodeSkipped(Event):
    node_id: str
    reason: str


@dataclass(slots=True)
class NodeWaiting(Event):
    """A node stopped at a gate; the run can resume after a decision."""

    node_id: str
    waiting: Waiting


@dataclass(slots=True)
class AttemptStarted(Event):
    node_id: str
    attempt: int
    model: str | None
    prompt: Any = None
    item: int | None = None  # index of the element when the node is a map


@dataclass(slots=True)
class AttemptFinished(Event):
    """One model call, successful or not, once its checks are done (validation, verifiers,
    routing). The same :class:`Attempt` is in the node's result, so the run store and the trace
    record one value."""

    node_id: str
    attempt: Attempt


@dataclass(slots=True)
class RetrievalFinished(Event):
    """A context window was built; ``items`` carry provenance (source, score, reason, tokens)."""

    node_id: str
    query: str
    budget_tokens: int
    used_tokens: int
    items: list[dict[str, Any]]
    latency_s: float = 0.0


@dataclass(slots=True)
class DecisionRecorded(Event):
    """A person approved, edited or rejected a gated node."""

    node_id: str
    decision: Literal["approve", "edit", "reject"]
    actor: str
    diff: str | None = None
    comment: str | None = None


@dataclass(slots=True)
class TokenDelta(Event):
    """A piece of a model's reply as it streams in (only while something consumes deltas:
    see :func:`consumes_token_deltas`). The attempt's AttemptFinished carries the whole reply."""

    node_id: str
    attempt: int
    text: str
    item: int | None = None  # index of the element when the node is a map


@dataclass(slots=True)
class BudgetWarning(Event):
    """What the run has spent (or how long it has run) passed ``fraction`` of a cap; sent once
    per cap and run. ``kind`` names the cap: cost ($), tokens or wall (seconds)."""

    kind: Literal["cost", "tokens", "wall"]
    spent: float
    limit: float
    fraction: float


@dataclass(slots=True)
class ToolCallStarted(Event):
    """A tool node (or one element of a map over one) calls its tool with these arguments
    (retries included: ToolCallFinished says how the last try ended)."""

    node_id: str
    tool: str
    arguments: dict[str, Any]
    item: int | None = None


@dataclass(slots=True)
class ToolCallFinished(Event):
    """The tool returned ``result`` (``ok``), or failed for good with ``error``."""

    node_id: str
    tool: str
    ok: bool
    result: Any = None
    error: str | None = None
    duration_s: float = 0.0
    item: int | None = None


EventSink = Callable[[Event], None]


def consumes_token_deltas(sink: EventSink) -> bool:
    """Whether ``sink`` wants :class:`TokenDelta` events (it sets ``consumes_token_deltas = True``).

    Model calls stream only for such a run: a streamed call costs a little more per call, and
    nobody else reads the deltas.
    """
    return bool(getattr(sink, "consumes_token_deltas", False))


class EventBus:
    """Fans events out to sinks; a failing sink is reported, never allowed to break a run."""

    __slots__ = ("_sinks", "errors", "streams_tokens")

    def __init__(self, sinks: list[EventSink] | None = None) -> None:
        self._sinks: list[EventSink] = list(sinks or [])
        self.errors: list[tuple[EventSink, BaseException]] = []
        #: some sink consumes token deltas, so model calls stream (see consumes_token_deltas)
        self.streams_tokens = any(consumes_token_deltas(s) for s in self._sinks)

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)
        self.streams_tokens = self.streams_tokens or consumes_token_deltas(sink)

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as exc:  # a broken sink must not lose a run's results
                self.errors.append((sink, exc))

    def __bool__(self) -> bool:
        return bool(self._sinks)


class SupportsClose(Protocol):
    def close(self) -> None: ...

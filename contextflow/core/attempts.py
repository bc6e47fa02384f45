"""One try of a node's work, as recorded: a model call with its checks, or one run of a function.

An :class:`Attempt` is built once, when everything about it is known: the call's usage, cost
and latency, and the checks made on its answer (structured-output validation, a cascade's
verifier verdicts, a router's decision, why a cascade stopped climbing). The same value goes to
the node's result (the run store) and, in the ``AttemptFinished`` event, to the trace, so the
two can never disagree.

The run store keeps an attempt's accounting and checks (:meth:`Attempt.to_dict`); the prompt
and the response text travel to the trace only, so they take no part in comparisons.
Rows written before attempts were typed (plain dicts with the same keys) load with
:meth:`Attempt.from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from contextflow.core.usage import Usage

CostSource = Literal["provider", "price_map", "none"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one verifier decided about an answer (a judge's own cost and tokens included)."""

    name: str
    kind: str
    passed: bool
    score: float | None = None
    detail: str = ""
    cost_usd: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "passed": self.passed, "score": self.score,
                "detail": self.detail, "cost_usd": self.cost_usd, "usage": dict(self.usage)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Verdict":
        score = data.get("score")
        return cls(
            str(data.get("name", "")), str(data.get("kind", "")), bool(data.get("passed")),
            float(score) if score is not None else None, str(data.get("detail") or ""),
            float(data.get("cost_usd") or 0.0), {str(k): int(v) for k, v in (data.get("usage") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """A trained router's choice of rung for one prompt."""

    chosen: str
    candidates: tuple[str, ...]
    prediction: float
    threshold: float
    router: str = "router"

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": list(self.candidates), "prediction": self.prediction, "threshold": self.threshold,
                "chosen": self.chosen, "router": self.router}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RoutingDecision":
        return cls(str(data.get("chosen", "")), tuple(str(c) for c in data.get("candidates") or ()),
                   float(data.get("prediction") or 0.0), float(data.get("threshold") or 0.0),
                   str(data.get("router") or "router"))


@dataclass(frozen=True, slots=True)
class EscalationStop:
    """Why a cascade kept this answer instead of climbing to ``next``: its worst case did not fit."""

    next: str
    worst_case_usd: float
    budget_left_usd: float
    reason: str = "budget"

    def to_dict(self) -> dict[str, Any]:
        return {"next": self.next, "worst_case_usd": self.worst_case_usd, "budget_left_usd": self.budget_left_usd,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EscalationStop":
        return cls(str(data.get("next", "")), float(data.get("worst_case_usd") or 0.0),
                   float(data.get("budget_left_usd") or 0.0), str(data.get("reason") or "budget"))


@dataclass(frozen=True, slots=True)
class StepDown:
    """A budget-planned call that started on a lower rung than ``planned`` because of what was left."""

    planned: str
    budget_left_usd: float

    def to_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "budget_left_usd": self.budget_left_usd}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StepDown":
        return cls(str(data.get("planned", "")), float(data.get("budget_left_usd") or 0.0))


@dataclass(slots=True)
class Attempt:
    """One try: ``number`` counts a node's tries from 1 (0 is a cache hit); ``item`` is the
    element's index when the node is a map; ``rung`` the cascade rung the call was on.

    An attempt is built complete (checks included) and recorded once by ``Spend.record``; code
    derives changed copies with ``dataclasses.replace`` and never assigns to a recorded one. It is
    not ``frozen`` because one is made for every node a run executes, and a frozen dataclass of
    this many fields costs about 5 us to build against under 1 us for a plain slotted one.
    """

    number: int
    ok: bool
    model: str | None = None
    rung: int | None = None
    item: int | None = None
    purpose: str | None = None  # call | repair, for a model call
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_source: CostSource = "none"
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    provider: str | None = None
    response_model: str | None = None
    started_at: float | None = None  # wall clock, when the call itself began
    verdicts: tuple[Verdict, ...] = ()
    routing: RoutingDecision | None = None
    escalation_stopped: EscalationStop | None = None
    stepped_down: StepDown | None = None
    validation_error: str | None = None
    error: str | None = None
    error_type: str | None = None
    cache_hit: bool = False
    cache_key: str | None = None
    original_cost_usd: float | None = None
    prompt: Any = field(default=None, compare=False, repr=False)
    response: Any = field(default=None, compare=False, repr=False)

    @property
    def passed(self) -> bool | None:
        """Whether every verifier passed; None when the answer was not checked (a cascade's rung
        is always checked, by however many verifiers the node declares)."""
        if not self.verdicts and self.rung is None:
            return None
        return all(v.passed for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """The stored form: fields left at their defaults are omitted; no prompt or response."""
        out: dict[str, Any] = {"attempt": self.number, "ok": self.ok, "latency_s": self.latency_s}
        for name, default in _STORED_DEFAULTS:
            value = getattr(self, name)
            if value != default:
                out[name] = value
        u = self.usage
        if u.input_tokens or u.output_tokens:
            out["input_tokens"], out["output_tokens"] = u.input_tokens, u.output_tokens
        if u.cache_read_tokens:
            out["cache_read_tokens"] = u.cache_read_tokens
        if u.reasoning_tokens:
            out["reasoning_tokens"] = u.reasoning_tokens
        if self.verdicts:
            out["verdicts"] = [v.to_dict() for v in self.verdicts]
        for name in ("routing", "escalation_stopped", "stepped_down"):
            part = getattr(self, name)
            if part is not None:
                out[name] = part.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Attempt":
        """An attempt from its stored form, or from a plain dict row of an older run."""
        routing = data.get("routing")
        stopped = data.get("escalation_stopped")
        stepped = data.get("stepped_down")
        usage = data.get("usage")
        original = data.get("original_cost_usd")
        return cls(
            number=int(data.get("attempt", data.get("number", 0)) or 0),
            ok=bool(data.get("ok", False)),
            model=data.get("model"),
            rung=_int_or_none(data.get("rung")),
            item=_int_or_none(data.get("item")),
            purpose=data.get("purpose"),
            usage=Usage.from_dict(usage if isinstance(usage, Mapping) else data),
            cost_usd=float(data.get("cost_usd") or 0.0),
            cost_source=data.get("cost_source") or "none",
            latency_s=float(data.get("latency_s") or 0.0),
            time_to_first_token_s=data.get("time_to_first_token_s"),
            provider=data.get("provider"),
            response_model=data.get("response_model"),
            started_at=data.get("started_at"),
            verdicts=tuple(Verdict.from_dict(v) for v in data.get("verdicts") or () if isinstance(v, Mapping)),
            routing=RoutingDecision.from_dict(routing) if isinstance(routing, Mapping) else None,
            escalation_stopped=EscalationStop.from_dict(stopped) if isinstance(stopped, Mapping) else None,
            stepped_down=StepDown.from_dict(stepped) if isinstance(stepped, Mapping) else None,
            validation_error=data.get("validation_error"),
            error=data.get("error"),
            error_type=data.get("error_type"),
            cache_hit=bool(data.get("cache_hit", False)),
            cache_key=data.get("cache_key"),
            original_cost_usd=float(original) if original is not None else None,
        )

    def with_item(self, item: int) -> "Attempt":
        return self if self.item == item else dataclasses.replace(self, item=item)


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


# Plain fields written by to_dict when they differ from their default (the rest are handled there).
_STORED_DEFAULTS: tuple[tuple[str, Any], ...] = tuple(
    (f.name, f.default) for f in dataclasses.fields(Attempt)
    if f.name in {
        "model", "rung", "item", "purpose", "cost_usd", "cost_source", "time_to_first_token_s", "provider",
        "response_model", "started_at", "validation_error", "error", "error_type", "cache_hit", "cache_key",
        "original_cost_usd",
    }
)

"""The gate seam: a gate decides where a node may go on; the scheduler applies its verdicts.

The scheduler asks the run's gate (if any) three things, and the gate only answers:

- ``before`` a node runs: :class:`Proceed`, :class:`ProceedWith` (run an edited node: new tool
  arguments, a cascade that starts at the rung a person approved), :class:`Hold` (wait for a
  person), :class:`Skip`, :class:`Replay` (use a stored result instead of running) or
  :class:`Fail` (the run was aborted);
- ``after`` it ran, before its result flows on: :class:`Proceed`, :class:`Hold`, :class:`Skip`
  or :class:`Fail`;
- before a cascade ``escalation`` to a pricier rung: :class:`Proceed` or :class:`Hold`.

A held node is persisted as ``waiting`` with its :class:`~contextflow.core.waiting.Waiting` and
blocks only its own branch; the run ends as ``waiting`` and resumes after a decision. The
approval gate (autonomy levels and recorded decisions, ``contextflow.runtime.approvals``)
implements this protocol; :class:`OpenGate` lets everything through and is a base for others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Mapping, Protocol, Union

from contextflow.core.results import NodeResult
from contextflow.core.waiting import Waiting

if TYPE_CHECKING:
    from contextflow.runtime.context import RunContext


@dataclass(frozen=True, slots=True)
class Proceed:
    """Let the node run as planned (or, after it ran, let its result flow on)."""


@dataclass(frozen=True, slots=True)
class ProceedWith:
    """Run ``node`` in place of the planned one (same id and kind).

    ``earlier``: what the node spent in an earlier attempt of the run (a cascade's cheaper rungs
    before it waited to escalate). The scheduler counts it in the budget and in the node's result.
    """

    node: Any
    earlier: NodeResult | None = None


@dataclass(frozen=True, slots=True)
class Hold:
    """Stop the node for a person; the run resumes after a decision."""

    waiting: Waiting


@dataclass(frozen=True, slots=True)
class Skip:
    """Do not run the node; nodes that depend only on it are skipped too."""

    reason: str


@dataclass(frozen=True, slots=True)
class Replay:
    """Use ``result``, stored by an earlier attempt of the run, without running the node.

    A finished result's spend is booked in the budget, since a resumed run's books start from
    the spend of the nodes that had finished.
    """

    result: NodeResult


@dataclass(frozen=True, slots=True)
class Fail:
    """Fail the node (and so its branch) without running it."""

    error: str
    error_type: str = "rejected"


GateVerdict = Union[Proceed, ProceedWith, Hold, Skip, Replay, Fail]
PROCEED = Proceed()


@dataclass(frozen=True, slots=True)
class Escalation:
    """A cascade about to climb from ``from_model`` to the pricier ``to_model``, with that call's
    worst case at the catalog price (``Budget.fits(..., model=...)`` adds what its provider bills above it)."""

    node_id: str
    node: Any
    from_model: str | None
    to_model: str
    worst_case_cost_usd: float
    worst_case_tokens: int


class EscalationGuard(Protocol):
    """What a cascade asks before it climbs a rung (the run's gate's ``escalation``)."""

    def __call__(self, ctx: "RunContext", escalation: Escalation) -> Awaitable[Proceed | Hold]: ...


class Gate(Protocol):
    async def before(self, ctx: "RunContext", node_id: str, node: Any, scope: Mapping[str, Any]) -> GateVerdict: ...

    async def after(self, ctx: "RunContext", node_id: str, node: Any, result: NodeResult) -> GateVerdict: ...

    async def escalation(self, ctx: "RunContext", escalation: Escalation) -> Proceed | Hold: ...


class OpenGate:
    """A gate that lets everything through; subclass it to decide some of the three questions."""

    async def before(self, ctx: "RunContext", node_id: str, node: Any, scope: Mapping[str, Any]) -> GateVerdict:
        return PROCEED

    async def after(self, ctx: "RunContext", node_id: str, node: Any, result: NodeResult) -> GateVerdict:
        return PROCEED

    async def escalation(self, ctx: "RunContext", escalation: Escalation) -> Proceed | Hold:
        return PROCEED

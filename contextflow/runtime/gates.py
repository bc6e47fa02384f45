"""The approval seam: a gate may hold a node before it runs or before its result flows on.

The scheduler asks the run's gate (if any) twice per node. ``before`` returns None to let the node
run, or a NodeResult (status ``waiting`` or ``skipped``) to stop it; ``after`` returns the result
to pass on (possibly edited), or a ``waiting``/``skipped`` one. A waiting node is persisted as such
and blocks only its own branch; the run ends as ``waiting`` and resumes after a decision.
``runtime.approvals.ApprovalGate`` implements it from the autonomy levels (``runtime.autonomy``)
and the decisions in the run store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol

if TYPE_CHECKING:
    from contextflow.runtime.context import RunContext
    from contextflow.core.results import NodeResult


class Gate(Protocol):
    async def before(
        self, ctx: "RunContext", node_id: str, node: Any, scope: Mapping[str, Any]
    ) -> "NodeResult | None": ...

    async def after(self, ctx: "RunContext", node_id: str, node: Any, result: "NodeResult") -> "NodeResult": ...

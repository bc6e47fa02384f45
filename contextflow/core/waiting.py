"""Why a node waits at a gate, and what a person is asked to decide on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class Waiting:
    """A node held for a decision.

    ``phase``: ``before`` (a tool about to act; ``args`` are its resolved arguments, what an
    edit replaces), ``after`` (a result held before it flows on; ``output`` is that result and
    the model is not called again on resume), ``budget`` (a model call whose worst case could
    pass the budget) or ``escalation`` (a cascade about to climb to a pricier rung).
    ``reason``: why the gate stopped it (``side_effect``, ``model_step``, ``always``, ``budget``,
    ``escalation``, or a custom gate's own). ``proposal``: what the node would do (a diff, a
    command, the pricier call and what it could cost).
    """

    phase: str
    reason: str
    gate: str = "approval"
    proposal: Any = None
    args: Any = None
    output: Any = None

    @property
    def message(self) -> str:
        return f"waiting for {self.gate} ({self.reason})"

    def editable(self) -> Any:
        """The value an edit starts from: a tool's arguments before it acts, else the held output."""
        return self.args if self.phase == "before" else self.output

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"phase": self.phase, "reason": self.reason, "gate": self.gate}
        if self.proposal is not None:
            out["proposal"] = self.proposal
        if self.args is not None or self.phase == "before":
            out["args"] = self.args
        if self.output is not None or self.phase == "after":
            out["output"] = self.output
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Waiting":
        """A Waiting from its stored form (a waiting node's stored value in older runs has the same keys)."""
        return cls(str(data.get("phase") or "before"), str(data.get("reason") or "approval"),
                   str(data.get("gate") or "approval"), data.get("proposal"), data.get("args"), data.get("output"))

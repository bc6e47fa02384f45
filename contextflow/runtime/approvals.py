"""The approval gate and the decisions people make at it (approve, edit, reject).

A gated node is stored as ``waiting`` with a :class:`~contextflow.core.waiting.Waiting`: phase
``before`` (a tool about to act: its arguments and the diff or the command it would run),
``after`` (a result held before it flows on; the model is not called again when the run
resumes), ``budget`` (a model call whose worst case could pass the budget) or ``escalation``
(a cascade about to climb to a pricier rung). Decisions go to the run store's ``decisions``
table from any process; the gate reads them when the run resumes and answers the scheduler with
a verdict (``contextflow.runtime.gates``). It never runs a node itself.
"""

from __future__ import annotations

import dataclasses
import difflib
import getpass
import json
import time
from pathlib import Path
from contextlib import nullcontext
from typing import Any, ContextManager, Iterable, Mapping

from contextflow.core.errors import UserError
from contextflow.core.events import DecisionRecorded, EventSink
from contextflow.core.results import NodeResult, to_jsonable
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.core.rungs import parse_rung
from contextflow.core.state import StateDir
from contextflow.core.waiting import Waiting
from contextflow.cost.budget import Caps, Fit, Totals
from contextflow.dags.refs import resolve_value
from contextflow.runtime import run_status
from contextflow.runtime.autonomy import check_level, escalation_waits, needs_gate, node_rule
from contextflow.runtime.calls import worst_case
from contextflow.runtime.gates import PROCEED, Escalation, Fail, GateVerdict, Hold, Proceed, ProceedWith, Replay, Skip
from contextflow.runtime.llm import output_limit, primary_models, render_messages
from contextflow.runtime.store import Decision, RunStore
from contextflow.runtime.tools import confine, patch_paths


def _waiting(phase: str, reason: str, **body: Any) -> Hold:
    return Hold(Waiting(phase, reason, **body))


def tool_proposal(node: Any, args: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """What a tool would do, shown before it may: a diff for file changes, the command line."""
    tool = node.tool
    if tool == "write_file":
        target = confine(workdir, str(args.get("path", "")))  # an escape is refused here, before any wait
        old = target.read_text(encoding="utf-8") if target.is_file() else ""
        rel = str(target.relative_to(Path(workdir).resolve()))
        diff = "".join(difflib.unified_diff(
            old.splitlines(keepends=True), str(args.get("content", "")).splitlines(keepends=True),
            f"a/{rel}" if old else "/dev/null", f"b/{rel}",
        ))
        return {"tool": tool, "path": rel, "diff": diff}
    if tool == "apply_patch":
        patch = str(args.get("patch", ""))
        for path in patch_paths(patch):
            confine(workdir, path)
        return {"tool": tool, "files": patch_paths(patch), "diff": patch}
    if tool == "run_command":
        command = args.get("command")
        shown = command if isinstance(command, str) else " ".join(str(c) for c in command or [])
        return {"tool": tool, "command": shown, "cwd": str(Path(workdir).resolve())}
    return {"tool": tool, "args": to_jsonable(dict(args))}


def json_diff(before: Any, after: Any, label: str) -> str:
    a = json.dumps(to_jsonable(before), indent=2, sort_keys=True, ensure_ascii=False).splitlines(keepends=True)
    b = json.dumps(to_jsonable(after), indent=2, sort_keys=True, ensure_ascii=False).splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"{label} (proposed)", f"{label} (edited)"))


class ApprovalGate:
    """The :class:`contextflow.runtime.gates.Gate` for a run at an autonomy level."""

    def __init__(self, store: RunStore, run_id: str, level: str) -> None:
        self.store = store
        self.run_id = run_id
        self.level = level
        # Decisions and held rows are read once per run attempt (not per node): nobody can decide
        # on a node of this attempt before it waits, and a decision is applied on the next resume.
        self._decisions: dict[str, Decision] = {}
        self._abort: Decision | None = None
        self._held: dict[str, NodeResult] = {}
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        for d in self.store.decisions(self.run_id):
            self._decisions[d.node_id] = d
            if run_status.is_abort(d):
                self._abort = self._abort or d
        self._held = {nid: r for nid, r in self.store.load_nodes(self.run_id).items() if r.waiting is not None}

    async def before(self, ctx: Any, node_id: str, node: Any, scope: Mapping[str, Any]) -> GateVerdict:
        if not self._loaded:
            self._load()
        abort = self._abort
        if abort is not None:
            return Fail(f"run aborted by {abort.actor} at node '{abort.node_id}'", "rejected")
        decision = self._decisions.get(node_id)
        stored = self._held.get(node_id)
        held = stored.waiting if stored is not None else None
        if stored is not None and held is not None and held.phase == "after":
            if decision is None:
                return Replay(stored)  # still waiting for a person
            return Replay(self._apply_after(stored, held, decision))
        if decision is not None and decision.decision == "reject":
            self.store.mark_decision_applied(decision.id)
            return Skip(f"rejected by {decision.actor}")
        decided = decision is not None and stored is not None
        rule = node_rule(self.level, node)
        if rule is not None and rule.phase == "before" and not decided:
            args = resolve_value(dict(getattr(node, "args", {}) or {}), scope) if node.kind == "tool" else {}
            proposal = tool_proposal(node, args, ctx.workdir) if node.kind == "tool" else {"node": node.kind}
            return _waiting("before", rule.reason, args=to_jsonable(args), proposal=proposal)
        edited = node
        if decided and decision is not None:
            self.store.mark_decision_applied(decision.id)
            if decision.decision == "edit" and isinstance(decision.payload, dict) and "inputs" in decision.payload:
                edited = node.model_copy(update={"args": dict(decision.payload["inputs"])})
        if not decided and node.kind == "llm" and getattr(node, "strategy", "fixed") != "cascade":
            hold = self._budget_hold(ctx, node, scope)
            if hold is not None:
                return hold
        if decided and stored is not None and held is not None and held.phase == "escalation":
            # Start at the approved rung: the cheaper ones already ran (their spend is kept).
            target = (held.proposal or {}).get("to_model")
            if target in (node.models or []):
                edited = node.model_copy(update={"models": node.models[node.models.index(target):]})
            return ProceedWith(edited, earlier=stored)
        return PROCEED if edited is node else ProceedWith(edited)

    async def after(self, ctx: Any, node_id: str, node: Any, result: NodeResult) -> GateVerdict:
        rule = node_rule(self.level, node)
        if rule is None or rule.phase != "after" or result.status not in ("succeeded", "cached"):
            return PROCEED
        return _waiting("after", rule.reason, output=to_jsonable(result.value))

    async def escalation(self, ctx: Any, escalation: Escalation) -> Proceed | Hold:
        """Whether a cascade may climb to a pricier rung now, or waits for a person."""
        if not self._loaded:
            self._load()
        fit = ctx.budget.fits(escalation.worst_case_cost_usd, escalation.worst_case_tokens,
                              model=parse_rung(escalation.to_model).model)
        proposal = None if fit else _budget_proposal(escalation.to_model, fit)
        if not escalation_waits(self.level, escalation.node, proposal is not None):
            return PROCEED
        decision = self._decisions.get(escalation.node_id)
        if decision is not None and decision.decision == "approve":
            return PROCEED
        if proposal is None:  # approval: on_escalation, within budget
            proposal = {"to_model": escalation.to_model, "could_pass_budget": False}
        proposal["from_model"] = escalation.from_model
        return _waiting("escalation", "escalation", proposal=proposal)

    def _apply_after(self, stored: NodeResult, held: Waiting, decision: Decision) -> NodeResult:
        """The held result as a person decided it: approved, edited, or rejected (skipped; what it
        spent stays on record)."""
        self.store.mark_decision_applied(decision.id)
        value = held.output
        if decision.decision == "reject":
            return NodeResult(stored.node_id, "skipped", None, stored.usage, stored.cost_usd, stored.model,
                              stored.attempts, error=f"rejected by {decision.actor}", finished_at=time.time())
        if decision.decision == "edit" and isinstance(decision.payload, dict) and "output" in decision.payload:
            value = decision.payload["output"]
        return dataclasses.replace(stored, status="succeeded", value=value, error=None, error_type=None, waiting=None)

    def _budget_hold(self, ctx: Any, node: Any, scope: Mapping[str, Any]) -> Hold | None:
        """Hold a model call whose worst case could pass the budget (not at ``full``)."""
        budget = ctx.budget
        if self.level == "full" or not budget.limits_calls or getattr(node, "approval", None) == "never":
            return None
        model = primary_models(ctx, node)[0]
        messages = render_messages(node, scope)
        fit = budget.fits(*worst_case(model, messages, output_limit(node, dict(node.params), model)), model=model)
        if fit:
            return None
        return _waiting("budget", "budget", proposal=_budget_proposal(model, fit))


def _budget_proposal(model: str, fit: Fit) -> dict[str, Any]:
    """What a person sees about a call that could pass the budget (and what approving it grants)."""
    totals, caps = fit.totals, fit.caps
    return {
        "to_model": model, "worst_case_cost_usd": fit.cost_usd, "worst_case_tokens": fit.tokens,
        "spent_cost_usd": totals.spent_cost_usd, "reserved_cost_usd": totals.reserved_cost_usd,
        "max_cost_usd": caps.max_cost_usd, "spent_tokens": totals.spent_tokens,
        "reserved_tokens": totals.reserved_tokens, "max_tokens": caps.max_tokens, "could_pass_budget": True,
    }


def granted(store: RunStore, run_id: str) -> tuple[float, int]:
    """What people approved spending past the run's caps ($, tokens), from its recorded decisions."""
    usd = tokens = 0.0
    for d in store.decisions(run_id):
        payload = d.payload if isinstance(d.payload, dict) else {}
        usd += float(payload.get("grant_usd") or 0.0)
        tokens += float(payload.get("grant_tokens") or 0.0)
    return usd, int(tokens)


# decisions from the CLI, the viewer or Python ------------------------------------------------


def _open(project: Any, store: RunStore | None = None) -> ContextManager[RunStore]:
    """The run store to decide in: ``store`` as given (left open), or the project's ``runs.db``."""
    if store is not None:
        return nullcontext(store)
    state = StateDir.for_project(project)
    if not state.runs_db.exists():
        raise UserError(f"no run store at {state.runs_db}", hint="pass the project folder of the run")
    return SQLiteRunStore(state.runs_db)


def pending(run_id: str, *, project: Any = None, store: RunStore | None = None) -> dict[str, Waiting]:
    """The run's waiting nodes and what each waits for (``Waiting.to_dict()`` is its JSON form)."""
    with _open(project, store) as store:
        if store.get_run(run_id) is None:
            raise UserError(f"no run '{run_id}'", hint="list runs with 'contextflow runs'")
        return {nid: r.waiting for nid, r in store.load_nodes(run_id).items()
                if r.status == "waiting" and r.waiting is not None}


def _decide(run_id: str, node_id: str, decision: str, *, project: Any, actor: str | None, payload: Any,
            comment: str | None, edit: Any = None, sinks: Iterable[EventSink] = (),
            store: RunStore | None = None) -> int:
    with _open(project, store) as store:
        if store.get_run(run_id) is None:
            raise UserError(f"no run '{run_id}'", hint="list runs with 'contextflow runs'")
        row = store.load_nodes(run_id).get(node_id)
        held = row.waiting if row is not None and row.status == "waiting" else None
        if held is None:
            waiting = [n for n, r in store.load_nodes(run_id).items() if r.status == "waiting"]
            raise UserError(
                f"node '{node_id}' of run '{run_id}' is not waiting for a decision",
                hint=f"waiting nodes: {', '.join(waiting) or 'none'}",
            )
        diff = None
        if decision == "approve":
            payload = _grant_for(held)
        if decision == "edit":
            payload, diff = _edit_payload(held, edit)
        who = actor or getpass.getuser()
        decision_id = store.record_decision(run_id, node_id, decision, actor=who, payload=payload, diff=diff,
                                            comment=comment)
        made = next(d for d in store.decisions(run_id) if d.id == decision_id)
        if run_status.is_abort(made):
            store.save_node(run_id, NodeResult(node_id, "failed", error=f"rejected by {who}: run aborted",
                                               error_type="rejected", finished_at=time.time()))
        run_status.decision_recorded(store, made)
    event = DecisionRecorded(run_id, node_id, decision, who, diff=diff, comment=comment)  # type: ignore[arg-type]
    for sink in sinks:  # e.g. the trace, so the decision shows beside the run before it resumes
        sink(event)
    return decision_id


def _grant_for(held: Waiting) -> dict[str, Any]:
    """What approving ``held`` grants past the caps: the shortfall of the call it proposes."""
    shown = held.proposal
    if held.phase not in ("escalation", "budget") or not isinstance(shown, dict) or not shown.get("could_pass_budget"):
        return {}
    caps = Caps(shown.get("max_cost_usd"), shown.get("max_tokens"))
    totals = Totals(float(shown.get("spent_cost_usd") or 0.0), int(shown.get("spent_tokens") or 0),
                    float(shown.get("reserved_cost_usd") or 0.0), int(shown.get("reserved_tokens") or 0))
    usd, tokens = caps.fit(totals, float(shown.get("worst_case_cost_usd") or 0.0),
                           int(shown.get("worst_case_tokens") or 0)).shortfall()
    grant: dict[str, Any] = {}
    if caps.max_cost_usd is not None:
        grant["grant_usd"] = usd * 1.01  # a hair over: float sums differ between processes
    if caps.max_tokens is not None:
        grant["grant_tokens"] = tokens
    return grant


def _edit_payload(held: Waiting, edited: Any) -> tuple[dict[str, Any], str]:
    """An edit replaces what the gate shows: a tool's arguments (before) or the result (after)."""
    if held.phase == "before":
        if not isinstance(edited, dict):
            raise UserError("an edit of a tool's arguments must be a JSON object", hint="e.g. --set path=notes.txt")
        return {"inputs": edited}, json_diff(held.args, edited, "inputs")
    if held.phase == "after":
        return {"output": edited}, json_diff(held.output, edited, "output")
    raise UserError("this node waits on a budget decision (an escalation or a costly call); approve or reject it",
                    hint="it has no inputs or output to edit yet")


def editable(held: Waiting) -> Any:
    """The value an edit starts from (tool arguments, or the held output)."""
    return held.editable()


def approve(run_id: str, node_id: str, *, project: Any = None, actor: str | None = None,
            comment: str | None = None, sinks: Iterable[EventSink] = (), store: RunStore | None = None) -> int:
    """Let a waiting node go on; the run continues on ``resume``.

    Approving an escalation whose worst case would pass the budget also grants the shortfall:
    the run's cap is raised by exactly what the pricier call could need beyond it.
    """
    return _decide(run_id, node_id, "approve", project=project, actor=actor, payload=None, comment=comment,
                   sinks=sinks, store=store)


def edit(run_id: str, node_id: str, value: Any, *, project: Any = None, actor: str | None = None,
         comment: str | None = None, sinks: Iterable[EventSink] = (), store: RunStore | None = None) -> int:
    """Replace a waiting node's tool arguments (before it acts) or its held output, then let it go on."""
    return _decide(run_id, node_id, "edit", project=project, actor=actor, payload=None, comment=comment, edit=value,
                   sinks=sinks, store=store)


def reject(run_id: str, node_id: str, *, abort: bool = False, project: Any = None, actor: str | None = None,
           comment: str | None = None, sinks: Iterable[EventSink] = (), store: RunStore | None = None) -> int:
    """Skip a waiting node and what depends only on it, or (``abort``) stop the whole run."""
    return _decide(run_id, node_id, "reject", project=project, actor=actor, payload={"abort": abort}, comment=comment,
                   sinks=sinks, store=store)


def decisions(run_id: str, *, project: Any = None, store: RunStore | None = None) -> list[Decision]:
    with _open(project, store) as store:
        return store.decisions(run_id)


__all__ = ["ApprovalGate", "approve", "decisions", "edit", "editable", "gate_for", "granted", "pending",
           "reject", "tool_proposal"]


def gate_for(spec: Any, autonomy: str | None, store: RunStore, run_id: str) -> ApprovalGate | None:
    """The run's gate at ``autonomy`` (default: the pipeline's ``defaults.autonomy``), or None when
    nothing in the pipeline could stop at that level."""

    level = check_level(autonomy or spec.defaults.autonomy)
    return ApprovalGate(store, run_id, level) if needs_gate(level, spec) else None

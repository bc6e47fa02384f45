"""The approval gate and the decisions people make at it (approve, edit, reject).

A gated node is stored as ``waiting`` with its proposal as its value:
``{"phase": "before", "reason": ..., "proposal": ...}`` (a tool about to act: the diff or the
command) or ``{"phase": "after", "reason": ..., "output": ...}`` (a result held before it flows on;
the model is not called again when the run resumes). Decisions go to the run store's
``decisions`` table from any process; the gate applies the latest one when the run resumes.
"""

from __future__ import annotations

import difflib
import getpass
import json
import time
from pathlib import Path
from contextlib import nullcontext
from typing import Any, ContextManager, Iterable, Mapping

from contextflow.cost.budget import Caps
from contextflow.dags.refs import resolve_value
from contextflow.core.errors import UserError
from contextflow.runtime.autonomy import escalation_waits, node_rule
from contextflow.core.events import DecisionRecorded, EventSink
from contextflow.runtime.handlers import HANDLERS
from contextflow.runtime.policies import policies_for
from contextflow.core.results import NodeResult, to_jsonable
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime.store import Decision, RunStore
from contextflow.runtime.tools import confine, patch_paths
from contextflow.core.state import StateDir
from contextflow.runtime.llm import primary_models
from contextflow.runtime.llm import render_messages
from contextflow.runtime.calls import worst_case
from contextflow.runtime.llm import output_limit
from contextflow.runtime.autonomy import check_level
from contextflow.runtime.autonomy import needs_gate


def _book(ctx: Any, result: NodeResult) -> None:
    ledger = ctx.budget.ledger
    ledger.settle(ledger.reserve(Caps(), 0.0, 0), result.cost_usd, result.usage.total_tokens)


class ApprovalRequired(Exception):
    """Raised inside a node (a cascade about to escalate) to stop it at a gate."""

    def __init__(self, reason: str, proposal: Any, spend: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.proposal = proposal
        self.spend = spend


def _waiting(node_id: str, phase: str, reason: str, body: dict[str, Any], template: NodeResult | None = None) -> NodeResult:
    value = {"phase": phase, "reason": reason, **body}
    message = f"waiting for approval ({reason})"
    if template is None:
        return NodeResult(node_id, "waiting", value, error=message, error_type=reason, finished_at=time.time())
    return NodeResult(node_id, "waiting", value, template.usage, template.cost_usd, template.model, template.attempts,
                      template.cache_hit, template.started_at, template.finished_at, message, reason)


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

    def _load(self, ctx: Any) -> None:
        self._loaded = True
        grant_usd = grant_tokens = 0.0
        for d in self.store.decisions(self.run_id):
            self._decisions[d.node_id] = d
            payload = d.payload if isinstance(d.payload, dict) else {}
            if d.decision == "reject" and payload.get("abort"):
                self._abort = self._abort or d
            grant_usd += float(payload.get("grant_usd") or 0.0)
            grant_tokens += float(payload.get("grant_tokens") or 0.0)
        self._held = {nid: r for nid, r in self.store.load_nodes(self.run_id).items()
                      if r.status == "waiting" and isinstance(r.value, dict)}
        caps = ctx.budget.caps
        if grant_usd or grant_tokens:  # a person approved spending past the cap: raise it by that much
            ctx.budget.caps = Caps(
                caps.max_cost_usd + grant_usd if caps.max_cost_usd is not None else None,
                caps.max_tokens + int(grant_tokens) if caps.max_tokens is not None else None,
            )

    def _latest(self, node_id: str) -> Decision | None:
        return self._decisions.get(node_id)

    def _stored(self, node_id: str) -> NodeResult | None:
        return self._held.get(node_id)

    async def before(self, ctx: Any, node_id: str, node: Any, scope: Mapping[str, Any]) -> NodeResult | None:
        if not self._loaded:
            self._load(ctx)
            ctx.extras.setdefault("escalation_guard", self._escalation)
        abort = self._abort
        if abort is not None:
            return NodeResult(node_id, "failed", error=f"run aborted by {abort.actor} at node '{abort.node_id}'",
                              error_type="rejected", finished_at=time.time())
        decision = self._latest(node_id)
        stored = self._stored(node_id)
        rule = node_rule(self.level, node)
        if stored is not None and stored.value.get("phase") == "after":
            held = NodeResult(node_id, "succeeded", stored.value.get("output"), stored.usage, stored.cost_usd,
                              stored.model, stored.attempts, stored.cache_hit, stored.started_at, stored.finished_at)
            if decision is None:
                return stored
            _book(ctx, held)  # spent before the run stopped; the resumed run's books start without it
            return self._apply_after(node_id, held, decision)
        if decision is not None and decision.decision == "reject":
            self.store.mark_decision_applied(decision.id)
            return NodeResult(node_id, "skipped", error=f"rejected by {decision.actor}", finished_at=time.time())
        decided = decision is not None and stored is not None
        if rule is not None and rule.phase == "before" and not decided:
            args = resolve_value(dict(getattr(node, "args", {}) or {}), scope) if node.kind == "tool" else {}
            proposal = tool_proposal(node, args, ctx.workdir) if node.kind == "tool" else {"node": node.kind}
            return _waiting(node_id, "before", rule.reason, {"args": to_jsonable(args), "proposal": proposal})
        if decided and decision is not None:
            self.store.mark_decision_applied(decision.id)
            if decision.decision == "edit" and isinstance(decision.payload, dict) and "inputs" in decision.payload:
                node = node.model_copy(update={"args": dict(decision.payload["inputs"])})
        if not decided and node.kind == "llm" and getattr(node, "strategy", "fixed") != "cascade":
            held = self._budget_hold(ctx, node_id, node, scope)
            if held is not None:
                return held
        if node.kind == "llm" and getattr(node, "strategy", None) == "cascade":
            earlier = stored if decided and stored is not None and stored.value.get("phase") == "escalation" else None
            if earlier is not None:
                # Start at the approved rung: the cheaper ones already ran (their spend is kept).
                target = (earlier.value.get("proposal") or {}).get("to_model")
                if target in (node.models or []):
                    node = node.model_copy(update={"models": node.models[node.models.index(target):]})
                _book(ctx, earlier)
            try:
                result = await self._run_node(ctx, node_id, node, scope)
                if earlier is not None:
                    result.usage.add(earlier.usage)
                    result.cost_usd += earlier.cost_usd
                    result.attempts = [*earlier.attempts, *result.attempts]
                return result
            except ApprovalRequired as exc:
                spent = exc.spend
                template = NodeResult(node_id, "waiting", None, spent.usage, spent.cost_usd, None, spent.attempts) if spent else None
                return _waiting(node_id, "escalation", exc.reason, {"proposal": exc.proposal}, template)
        if decided:
            return await self._run_node(ctx, node_id, node, scope)
        return None

    async def _run_node(self, ctx: Any, node_id: str, node: Any, scope: Mapping[str, Any]) -> NodeResult:
        result = await HANDLERS[node.kind](ctx, node, scope, node_id, policies_for(node, ctx.spec.defaults), None)
        return await self.after(ctx, node_id, node, result)

    async def after(self, ctx: Any, node_id: str, node: Any, result: NodeResult) -> NodeResult:
        rule = node_rule(self.level, node)
        if rule is None or rule.phase != "after" or result.status not in ("succeeded", "cached"):
            return result
        return _waiting(node_id, "after", rule.reason, {"output": to_jsonable(result.value)}, result)

    def _apply_after(self, node_id: str, held: NodeResult, decision: Decision) -> NodeResult:
        self.store.mark_decision_applied(decision.id)
        if decision.decision == "reject":
            return NodeResult(node_id, "skipped", error=f"rejected by {decision.actor}", finished_at=time.time())
        if decision.decision == "edit" and isinstance(decision.payload, dict) and "output" in decision.payload:
            held.value = decision.payload["output"]
        return held

    def _budget_hold(self, ctx: Any, node_id: str, node: Any, scope: Mapping[str, Any]) -> NodeResult | None:
        """Hold a model call whose worst case could pass the budget (not at ``full``)."""
        budget = ctx.budget
        if self.level == "full" or not budget.limits_calls or getattr(node, "approval", None) == "never":
            return None

        model = primary_models(ctx, node)[0]
        messages = render_messages(node, scope)
        proposal = self._budget_check(ctx, node, model, messages, dict(node.params))
        if proposal is None:
            return None
        return _waiting(node_id, "budget", "budget", {"proposal": proposal})

    def _budget_check(self, ctx: Any, node: Any, model: str, messages: list[dict[str, Any]],
                      params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The proposal for a call that could pass the budget, or None when it fits."""

        budget = ctx.budget
        cost, tokens = worst_case(model, messages, output_limit(node, params, model))
        totals = budget.totals()
        caps = budget.caps
        over_cost = caps.max_cost_usd is not None and totals.spent_cost_usd + totals.reserved_cost_usd + cost > caps.max_cost_usd
        over_tokens = caps.max_tokens is not None and totals.spent_tokens + totals.reserved_tokens + tokens > caps.max_tokens
        if not (over_cost or over_tokens):
            return None
        return {
            "to_model": model, "worst_case_cost_usd": cost, "worst_case_tokens": tokens,
            "spent_cost_usd": totals.spent_cost_usd, "reserved_cost_usd": totals.reserved_cost_usd,
            "max_cost_usd": caps.max_cost_usd, "spent_tokens": totals.spent_tokens,
            "reserved_tokens": totals.reserved_tokens, "max_tokens": caps.max_tokens, "could_pass_budget": True,
        }

    async def _escalation(self, caller: Any, to_model: str, messages: list[dict[str, Any]]) -> None:
        """The cascade's escalation guard: None lets it try the pricier rung; raises to stop at the gate."""
        node = caller.node
        proposal = self._budget_check(caller.ctx, node, to_model, messages, caller.params_for(to_model))
        if not escalation_waits(self.level, node, proposal is not None):
            return
        decision = self._latest(caller.node_id)
        if decision is not None and decision.decision == "approve":
            return
        if proposal is None:  # approval: on_escalation, within budget
            proposal = {"to_model": to_model, "could_pass_budget": False}
        proposal["from_model"] = (caller.spend.attempts or [{}])[-1].get("model")
        raise ApprovalRequired("escalation", proposal, caller.spend)


# decisions from the CLI, the viewer or Python ------------------------------------------------


def _open(project: Any, store: RunStore | None = None) -> ContextManager[RunStore]:
    """The run store to decide in: ``store`` as given (left open), or the project's ``runs.db``."""
    if store is not None:
        return nullcontext(store)
    state = StateDir.for_project(project)
    if not state.runs_db.exists():
        raise UserError(f"no run store at {state.runs_db}", hint="pass the project folder of the run")
    return SQLiteRunStore(state.runs_db)


def pending(run_id: str, *, project: Any = None, store: RunStore | None = None) -> dict[str, dict[str, Any]]:
    """The run's waiting nodes and what each proposes."""
    with _open(project, store) as store:
        if store.get_run(run_id) is None:
            raise UserError(f"no run '{run_id}'", hint="list runs with 'contextflow runs'")
        return {nid: r.value for nid, r in store.load_nodes(run_id).items() if r.status == "waiting"}


def _decide(run_id: str, node_id: str, decision: str, *, project: Any, actor: str | None, payload: Any,
            comment: str | None, edit: Any = None, sinks: Iterable[EventSink] = (),
            store: RunStore | None = None) -> int:
    with _open(project, store) as store:
        if store.get_run(run_id) is None:
            raise UserError(f"no run '{run_id}'", hint="list runs with 'contextflow runs'")
        row = store.load_nodes(run_id).get(node_id)
        if row is None or row.status != "waiting":
            waiting = [n for n, r in store.load_nodes(run_id).items() if r.status == "waiting"]
            raise UserError(
                f"node '{node_id}' of run '{run_id}' is not waiting for a decision",
                hint=f"waiting nodes: {', '.join(waiting) or 'none'}",
            )
        diff = None
        if decision == "approve":
            payload = _grant_for(row.value)
        if decision == "edit":
            payload, diff = _edit_payload(row.value, edit)
        who = actor or getpass.getuser()
        decision_id = store.record_decision(run_id, node_id, decision, actor=who, payload=payload, diff=diff,
                                            comment=comment)
        if decision == "reject" and isinstance(payload, dict) and payload.get("abort"):
            store.save_node(run_id, NodeResult(node_id, "failed", error=f"rejected by {who}: run aborted",
                                               error_type="rejected", finished_at=time.time()))
            store.set_run_status(run_id, "failed", error=f"aborted by {who} at node '{node_id}'")
    event = DecisionRecorded(run_id, node_id, decision, who, diff=diff, comment=comment)  # type: ignore[arg-type]
    for sink in sinks:  # e.g. the trace, so the decision shows beside the run before it resumes
        sink(event)
    return decision_id


def _grant_for(proposal: Any) -> dict[str, Any]:
    shown = proposal.get("proposal") if isinstance(proposal, dict) else None
    if proposal.get("phase") not in ("escalation", "budget") or not isinstance(shown, dict) or not shown.get("could_pass_budget"):
        return {}
    grant: dict[str, Any] = {}
    if shown.get("max_cost_usd") is not None:
        short = shown["spent_cost_usd"] + shown["reserved_cost_usd"] + shown["worst_case_cost_usd"] - shown["max_cost_usd"]
        grant["grant_usd"] = max(short, 0.0) * 1.01  # a hair over: float sums differ between processes
    if shown.get("max_tokens") is not None:
        grant["grant_tokens"] = max(shown["spent_tokens"] + shown["reserved_tokens"] + shown["worst_case_tokens"]
                                    - shown["max_tokens"], 0)
    return grant


def _edit_payload(proposal: dict[str, Any], edited: Any) -> tuple[dict[str, Any], str]:
    """An edit replaces what the gate shows: a tool's arguments (before) or the result (after)."""
    phase = proposal.get("phase")
    if phase == "before":
        if not isinstance(edited, dict):
            raise UserError("an edit of a tool's arguments must be a JSON object", hint="e.g. --set path=notes.txt")
        return {"inputs": edited}, json_diff(proposal.get("args"), edited, "inputs")
    if phase == "after":
        return {"output": edited}, json_diff(proposal.get("output"), edited, "output")
    raise UserError("this node waits on a budget decision (an escalation or a costly call); approve or reject it",
                    hint="it has no inputs or output to edit yet")


def editable(proposal: dict[str, Any]) -> Any:
    """The value an edit starts from (tool arguments, or the held output)."""
    return proposal.get("args") if proposal.get("phase") == "before" else proposal.get("output")


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


__all__ = ["ApprovalGate", "ApprovalRequired", "approve", "decisions", "edit", "editable", "pending",
           "gate_for", "reject", "tool_proposal"]


def gate_for(spec: Any, autonomy: str | None, store: RunStore, run_id: str) -> ApprovalGate | None:
    """The run's gate at ``autonomy`` (default: the pipeline's ``defaults.autonomy``), or None when
    nothing in the pipeline could stop at that level."""

    level = check_level(autonomy or spec.defaults.autonomy)
    return ApprovalGate(store, run_id, level) if needs_gate(level, spec) else None

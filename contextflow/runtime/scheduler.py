"""The ready-set scheduler: runs a plan's nodes as soon as their inputs are finished.

Each node keeps a count of unfinished dependencies; a finished node decrements its dependents'
counts and launches those that reach zero, so a run does work linear in nodes plus edges.
Nodes run as asyncio tasks up to ``defaults.max_concurrency`` at once (the rest queue in plan
order); model calls are further limited per model/provider inside the handlers.

A run's gate (``contextflow.runtime.gates``) is asked before and after each node and answers
with a verdict; applying it (running an edited node, holding, skipping, replaying a stored
result, failing) is done here, so the gate itself never runs a node. The scheduler also owns
the run's status (through ``contextflow.runtime.run_status``).

Finished results are checkpointed in groups: every result that finished during one turn of the
event loop is committed in one transaction, and only then are events emitted and dependents
released. Nothing downstream ever sees a result that is not on disk, and a wide DAG pays one
commit per turn instead of one per node.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from contextflow.dags.expressions import evaluate_condition
from contextflow.dags.plan import Plan
from contextflow.dags.refs import resolve_value
from contextflow.core.errors import UserError
from contextflow.runtime.attempts import stopped_result
from contextflow.runtime.checkpoints import CHECKPOINT_MODES, BackgroundWriter, CheckpointMode
from contextflow.runtime.context import RunContext
from contextflow.core.events import (
    NodeFailed,
    NodeFinished,
    NodeSkipped,
    NodeStarted,
    NodeWaiting,
    RunFinished,
    RunStarted,
    Usage,
)
from contextflow.runtime.gates import PROCEED, Gate, Proceed, ProceedWith
from contextflow.runtime.verdicts import add_earlier, held_or_passed, instead_of_running
from contextflow.runtime import run_status
from contextflow.runtime.handlers import HANDLERS, Handler
from contextflow.runtime.policies import NodePolicies, policies_for
from contextflow.core.results import FINISHED_STATES, NodeResult, RunResult
from contextflow.core.waiting import Waiting
from contextflow.runtime.store import RunStore


@dataclass(slots=True)
class _Prepared:
    """Everything about a node that does not change during the run, computed once."""

    node: Any
    kind: str
    handler: Handler
    policies: NodePolicies
    deps: tuple[str, ...]
    dependents: tuple[str, ...]
    when: str | None


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        ctx: RunContext,
        *,
        inputs: dict[str, Any],
        store: RunStore | None = None,
        prior: dict[str, NodeResult] | None = None,
        gate: Gate | None = None,
        resumed: bool = False,
        checkpoint: CheckpointMode = "node",
    ) -> None:
        if checkpoint not in CHECKPOINT_MODES:
            raise UserError(f"unknown checkpoint mode '{checkpoint}'", hint=f"use one of {', '.join(CHECKPOINT_MODES)}")
        self.plan = plan
        self.ctx = ctx
        self.run_store = store  # the run's own row (status, outputs) is kept in every mode
        self.store = store if checkpoint != "off" else None
        self.checkpoint = checkpoint
        self._writer: BackgroundWriter | None = None
        self.gate = gate
        if gate is not None and ctx.escalation_guard is None:
            ctx.escalation_guard = gate.escalation  # a cascade asks the run's gate before it climbs
        self.resumed = resumed
        self.inputs = inputs
        defaults = plan.spec.defaults
        self.max_concurrency = defaults.max_concurrency
        self.prepared: dict[str, _Prepared] = {
            nid: _Prepared(
                node, node.kind, HANDLERS[node.kind], policies_for(node, defaults), plan.deps[nid],
                plan.dependents[nid], node.when,
            )
            for nid, node in plan.nodes.items()
        }
        self.scope: dict[str, Any] = {"inputs": inputs}
        self.results: dict[str, NodeResult] = {}
        self.prior = {nid: r for nid, r in (prior or {}).items() if r.finished and nid in self.prepared}
        self._remaining: dict[str, int] = {}
        self._ready: deque[str] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._running = 0
        self._starting = 0
        self._active_workers = 0
        self._skipped_inputs: dict[str, int] = {}  # per node: how many of its inputs were skipped
        self._unflushed: list[NodeResult] = []
        self._flush_scheduled = False
        self._flushing = False
        self._settled = 0
        self._stop_reason: str | None = None
        self._checkpoint_error: Exception | None = None
        self._done: asyncio.Future[None] | None = None
        self._engine_error: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._emit: Callable[[Any], None] = ctx.bus.emit if ctx.bus else (lambda event: None)
        self.cancelled_result: RunResult | None = None

    # the run ------------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        loop = self._loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        if self.store is not None and self.checkpoint == "background":
            self._writer = BackgroundWriter(self.store)
        run_id = self.ctx.run_id
        if self.run_store is not None:
            run_status.run_started(self.run_store, run_id)
        self._emit(
            RunStarted(run_id, self.plan.spec.name, self.inputs, list(self.plan.order),
                       list(self.plan.graph.edges), resumed=self.resumed)
        )
        for nid, result in self.prior.items():
            self.results[nid] = result
            self.scope[nid] = result.value
            self._settled += 1
            if result.status == "skipped":
                for dep in self.prepared[nid].dependents:
                    self._skipped_inputs[dep] = self._skipped_inputs.get(dep, 0) + 1
        remaining = self._remaining
        for nid in self.plan.order:
            if nid not in self.prior:
                remaining[nid] = sum(1 for d in self.prepared[nid].deps if d not in self.prior)
        for nid in self.plan.order:
            if nid not in self.prior and remaining[nid] == 0:
                self._launch(nid)
        self._flush()
        try:
            await self._done
        except asyncio.CancelledError:
            await self._cancel_in_flight()
            self._flush()
            self._close_writer()
            self.cancelled_result = self._finish("cancelled", "cancelled; resume it to finish the remaining nodes")
            raise
        except BaseException:
            self._close_writer()
            raise
        self._close_writer()
        if self._engine_error is not None:
            await self._cancel_in_flight()
            exc = self._engine_error
            return self._finish("failed", f"contextflow stopped the run after an internal error "
                                          f"({type(exc).__name__}: {exc}); finished nodes are saved: "
                                          f"resume the run to go on")
        if self._writer is not None and self._writer.error is not None:
            return self._finish("failed", f"could not write checkpoints: {self._writer.error}")
        if self._checkpoint_error is not None:
            return self._finish("failed", self._stop_reason)
        return self._finish(self._final_status(), self._stop_reason)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def _final_status(self) -> str:
        if self.ctx.budget.exhausted is not None:
            return "budget_exceeded"
        statuses = {r.status for r in self.results.values()}
        if "failed" in statuses:
            return "failed"
        if "waiting" in statuses:
            return "waiting"
        if any(r.status == "pending" for r in self.results.values()):
            return "failed"
        return "succeeded"

    def _finish(self, status: str, error: str | None) -> RunResult:
        usage = Usage()
        cost = 0.0
        for result in self.results.values():
            usage.add(result.usage)
            cost += result.cost_usd
        for nid in self.plan.order:
            if nid not in self.results:
                self.results[nid] = NodeResult(nid, "pending", error=error or "not run")
        outputs = self._outputs()
        if error is None and status != "succeeded":
            failed = [r for r in self.results.values() if r.status == "failed"]
            error = "; ".join(f"{r.node_id}: {r.error}" for r in failed[:3]) or None
        if self.run_store is not None:
            try:
                run_status.run_finished(self.run_store, self.ctx.run_id, status, error=error, outputs=outputs,
                                        cost_usd=cost)
            except Exception as exc:  # e.g. a full disk: the caller still gets every result computed
                error = f"{error}; " if error else ""
                error += f"the run store could not record how the run ended: {exc}"
        self._emit(RunFinished(self.ctx.run_id, status, outputs, cost, usage, error=error))  # type: ignore[arg-type]
        return RunResult(self.ctx.run_id, status, outputs, cost, usage, self.results, self.plan.spec.name, error)  # type: ignore[arg-type]

    def _outputs(self) -> dict[str, Any]:
        declared = self.plan.spec.outputs
        if not declared:
            sinks = [n for n in self.plan.order if not self.plan.dependents[n]]
            return {n: self.scope[n] for n in sinks if n in self.scope}
        outputs: dict[str, Any] = {}
        for name, ref in declared.items():
            try:
                outputs[name] = resolve_value(ref, self.scope)
            except LookupError:
                continue  # its producer did not finish; the run's status says why
        return outputs

    async def _cancel_in_flight(self) -> None:
        tasks = list(self._workers)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # launching ----------------------------------------------------------------------------

    def _launch(self, nid: str) -> None:
        if nid in self.results:
            return  # already settled (blocked by a failed upstream)
        if self._stop_reason is not None:
            self._block(nid, f"not started: {self._stop_reason}")
            return
        p = self.prepared[nid]
        if p.deps and self._skipped_inputs.get(nid, 0) == len(p.deps):
            self._complete(NodeResult(nid, "skipped", error="every upstream node was skipped"))
            return
        if p.when is not None:
            try:
                go = evaluate_condition(p.when, self.scope)
            except Exception as exc:
                self._complete(NodeResult(nid, "failed", error=f"when: {p.when!r}: {exc}", error_type="condition"))
                return
            if not go:
                self._complete(NodeResult(nid, "skipped", error=f"when: {p.when} is false"))
                return
        self._ready.append(nid)

    def _spawn_workers(self, reserve: int = 0) -> None:
        """Start workers for ready nodes, up to ``max_concurrency`` workers in all.

        ``reserve`` counts workers about to look at the ready queue anyway (the one whose node
        just finished), so a chain runs entirely in one worker without a task per node.
        """
        want = len(self._ready) - reserve - self._starting
        loop = self._loop
        assert loop is not None
        while want > 0 and self._active_workers < self.max_concurrency:
            task = loop.create_task(self._worker())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
            self._active_workers += 1
            self._starting += 1
            want -= 1

    async def _worker(self) -> None:
        self._starting -= 1
        ready = self._ready
        prepared = self.prepared
        try:
            while ready:
                nid = ready.popleft()
                if self._stop_reason is not None:
                    self._block(nid, f"not started: {self._stop_reason}")
                    self._check_done()
                    continue
                await self._run(nid, prepared[nid])
        finally:
            # Counted here, not in a done callback: a flush that runs before the callback would
            # otherwise see a full pool and leave ready nodes waiting for a busy worker.
            self._active_workers -= 1

    async def _run(self, nid: str, p: _Prepared) -> None:
        started = time.time()
        self._running += 1
        self._emit(NodeStarted(self.ctx.run_id, nid, p.kind))
        earlier: NodeResult | None = None
        try:
            verdict = PROCEED if self.gate is None else await self.gate.before(self.ctx, nid, p.node, self.scope)
            if isinstance(verdict, (Proceed, ProceedWith)):
                node, policies = p.node, p.policies
                if isinstance(verdict, ProceedWith):
                    node, earlier = verdict.node, verdict.earlier
                    policies = policies_for(node, self.plan.spec.defaults)
                    if earlier is not None:  # spent before the run stopped; this attempt's books start without it
                        self.ctx.budget.book(earlier.cost_usd, earlier.usage.total_tokens)
                result = await p.handler(self.ctx, node, self.scope, nid, policies, None)
                if self.gate is not None and result.status in FINISHED_STATES:
                    result = held_or_passed(nid, await self.gate.after(self.ctx, nid, node, result), result)
            else:
                result = instead_of_running(nid, verdict, self.ctx.budget)
        except asyncio.CancelledError:
            self._running -= 1
            raise
        except Exception as exc:
            result = stopped_result(nid, exc, started)
        self._running -= 1
        if earlier is not None:
            add_earlier(result, earlier)
        if result.started_at is None:
            result.started_at = started
        self._complete(result, in_worker=True)

    def _complete(self, result: NodeResult, in_worker: bool = False) -> None:
        self.results[result.node_id] = result
        if result.status in FINISHED_STATES:
            self.scope[result.node_id] = result.value
        self._unflushed.append(result)
        if self.checkpoint != "node" or self.store is None:
            self._flush(1 if in_worker else 0)  # nothing to wait for: release dependents now
        elif not self._flush_scheduled:
            # Group every result of this loop turn into one commit.
            self._flush_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _block(self, nid: str, reason: str) -> None:
        """Settle ``nid`` and everything below it as not runnable (left unfinished for resume)."""
        stack = [nid]
        while stack:
            current = stack.pop()
            if current in self.results:
                continue
            self.results[current] = NodeResult(current, "pending", error=reason)
            self._settled += 1
            stack.extend(self.prepared[current].dependents)

    # checkpoints and release ----------------------------------------------------------------

    def _flush(self, reserve: int = 0) -> None:
        # This runs as a loop callback and from workers: an exception escaping it would only be
        # logged by asyncio and the run would wait forever. Fail the run instead, plainly.
        try:
            self._flush_now(reserve)
        except Exception as exc:
            if self._engine_error is None:
                self._engine_error = exc
            if self._done is not None and not self._done.done():
                self._done.set_result(None)

    def _flush_now(self, reserve: int = 0) -> None:
        self._flush_scheduled = False
        if self._flushing:
            return  # a launch inside the loop below settled a node; the loop picks it up
        self._flushing = True
        try:
            while self._unflushed:
                self._release(self._unflushed)
        finally:
            self._flushing = False
        if self._ready:
            if self._stop_reason is not None:
                while self._ready:
                    self._block(self._ready.popleft(), f"not started: {self._stop_reason}")
            else:
                self._spawn_workers(reserve)
        self._check_done()

    def _release(self, pending: list[NodeResult]) -> None:
        batch = list(pending)
        pending.clear()
        if self._writer is not None:
            self._writer.put(self.ctx.run_id, batch)
        elif self.store is not None:
            try:
                self.store.save_nodes(self.ctx.run_id, batch)
            except Exception as exc:  # this runs in a loop callback: raising would hang the run
                if self._checkpoint_error is None:
                    self._checkpoint_error = exc
                    self._stop_reason = f"could not write checkpoints: {type(exc).__name__}: {exc}"
        run_id = self.ctx.run_id
        emit = self._emit
        remaining = self._remaining
        for r in batch:
            self._settled += 1
            status = r.status
            nid = r.node_id
            if status in FINISHED_STATES:
                if status == "skipped":
                    emit(NodeSkipped(run_id, nid, r.error or "skipped"))
                else:
                    emit(NodeFinished(run_id, nid, status, r.value, r.cost_usd, r.usage, r.model, r.cache_hit,
                                      r.duration_s))
                if status == "skipped":
                    for dep in self.prepared[nid].dependents:
                        self._skipped_inputs[dep] = self._skipped_inputs.get(dep, 0) + 1
                for dep in self.prepared[nid].dependents:
                    remaining[dep] -= 1
                    if remaining[dep] == 0:
                        self._launch(dep)
            elif status == "waiting":
                emit(NodeWaiting(run_id, nid, r.waiting or Waiting("before", r.error_type or "approval")))
                for dep in self.prepared[nid].dependents:
                    self._block(dep, f"waiting for approval of '{nid}'")
            else:
                emit(NodeFailed(run_id, nid, r.error or "failed", r.error_type or "error", r.duration_s))
                if r.error_type == "budget" and self._stop_reason is None:
                    self._stop_reason = r.error or "budget exhausted"
                for dep in self.prepared[nid].dependents:
                    self._block(dep, f"upstream node '{nid}' failed")

    def _check_done(self) -> None:
        if (
            self._settled >= len(self.prepared)
            and not self._running
            and not self._unflushed
            and self._done is not None
            and not self._done.done()
        ):
            self._done.set_result(None)

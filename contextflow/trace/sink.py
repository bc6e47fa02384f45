"""The trace sink: scheduler events in, spans out, written to SQLite (WAL).

Tracing stays on by default, so the sink must cost the scheduler almost nothing: ``__call__``
only appends the event to a list. A background thread turns buffered events into span rows and
writes them in one transaction per batch, including after the run has returned: ``close`` does
not wait. Readers in the same process call :func:`drain` first (``TraceStore`` does), and an
``atexit`` hook drains before the interpreter exits, so no finished run's trace is lost.

Span ids are derived from the run and node ids, so a resumed run extends the same trace.

A trace that cannot be written (a full disk, a read-only folder, a damaged file) must not take
the run down with it: the writer keeps the first error in :attr:`TraceSink.error`, logs it once
as a warning (``contextflow.trace``: on stderr when logging is not configured) and drops further
batches.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from contextflow.core import events as ev
from contextflow.core.db import StateError
from contextflow.trace.schema import TraceDatabase
from contextflow.core.catalog import lookup

MAX_TEXT = 100_000  # characters of a prompt or response kept per span
FLUSH_INTERVAL_S = 0.25
# After close, the writer lets the run finish its own closing work (run store, executor) first
# instead of competing with it for the GIL; readers and close(wait=True) cut the wait short.
CLOSE_GRACE_S = 0.1

_log = logging.getLogger("contextflow.trace")
_live: set["TraceSink"] = set()
_live_lock = threading.Lock()


def drain(db_path: str | Path | TraceDatabase | None = None, timeout: float = 30.0) -> None:
    """Wait until every closed sink (writing to ``db_path``, or any) has written its spans."""
    target = None if db_path is None else TraceDatabase.of(db_path)
    with _live_lock:
        sinks = [s for s in _live if target is None or s.database is target]
    for sink in sinks:
        if sink._closed:
            sink._hurry.set()
            sink._thread.join(timeout)


atexit.register(drain)


try:  # orjson (a chromadb dependency) encodes several times faster; plain json otherwise
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
except ImportError:  # pragma: no cover
    def _dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)


def _json(value: Any, limit: int = MAX_TEXT) -> str:
    try:
        text = _dumps(value)
    except (TypeError, ValueError):
        text = json.dumps(str(value))
    if len(text) > limit:
        text = json.dumps({"truncated": True, "preview": text[:limit]})
    return text


def _provider(model: str | None, given: str | None) -> str | None:
    if given:
        return given
    if model and "/" in model:
        return model.split("/", 1)[0]
    if model:
        info = lookup(model)
        return info.provider if info else None
    return None


class TraceSink:
    """An event sink that records spans in ``db_path`` (a file, or a :class:`TraceDatabase` such as
    one in memory); use as ``sinks=[TraceSink(path)]``."""

    def __init__(self, db_path: str | Path | TraceDatabase) -> None:
        self.database = TraceDatabase.of(db_path)
        self.db_path = self.database.path
        self.error: StateError | None = None  # why spans could not be written, if they could not
        self._buffer: list[ev.Event] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._closed = False
        self._node_started: dict[tuple[str, str], float] = {}
        self._node_kind: dict[tuple[str, str], str] = {}
        self._attempt_started: dict[tuple[str, str, int, int | None], tuple[float, Any]] = {}
        self._open_rows: set[tuple[str, str]] = set()
        self.writer_cpu_s = 0.0  # CPU the writer thread spent turning events into rows and writing them
        self._thread = threading.Thread(target=self._loop, name="contextflow-trace", daemon=True)
        with _live_lock:
            _live.add(self)
        self._thread.start()

    def __call__(self, event: ev.Event) -> None:
        self._buffer.append(event)  # list.append is atomic under the GIL: no lock on the hot path

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            events, self._buffer = self._buffer, []
            if events and self.error is None:
                try:
                    self._write(events)
                except StateError as exc:  # the run goes on; its trace is incomplete
                    self.error = exc
                    _log.warning("the trace is not being recorded: %s", exc)

    def close(self, wait: bool = False) -> None:
        """Stop accepting events; the writer finishes in the background (``wait`` to block)."""
        if not self._closed:
            self._closed = True
            self._wake.set()
        if wait:
            self._hurry.set()
            self._thread.join()

    def _loop(self) -> None:
        try:
            while not self._closed:
                self._wake.wait(FLUSH_INTERVAL_S)
                if self._buffer and not self._closed:
                    self._timed_flush()
            self._hurry.wait(CLOSE_GRACE_S)
            self._timed_flush()
        finally:
            with _live_lock:
                _live.discard(self)

    def _timed_flush(self) -> None:
        start = time.thread_time()
        self.flush()
        self.writer_cpu_s += time.thread_time() - start

    def _write(self, events: list[ev.Event]) -> None:
        runs: list[tuple[Any, ...]] = []
        spans: list[tuple[Any, ...]] = []
        finishes: list[tuple[Any, ...]] = []
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event, runs, spans, finishes)
        # Nodes still running when this batch is written get a provisional row, once.
        for key, start in self._node_started.items():
            if key not in self._open_rows:
                self._open_rows.add(key)
                spans.append(self._node_row(key[0], key[1], start, None, "running", None, {}))
        # A node's start and end often land in one batch: keep only its latest row.
        spans = list({row[0]: row for row in spans}.values())
        with self.database.write() as db:
            if runs:
                db.executemany(
                    "INSERT INTO runs(run_id, pipeline, status, started, inputs, nodes, edges) "
                    "VALUES (?, ?, 'running', ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                    "status='running', finished=NULL, nodes=excluded.nodes, edges=excluded.edges",
                    runs,
                )
            if spans:
                db.executemany(
                    "INSERT OR REPLACE INTO spans(span_id, run_id, parent_id, kind, name, node_id, start, end,"
                    " status, model, cost, input_tokens, output_tokens, attributes)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    spans,
                )
            if finishes:
                db.executemany(
                    "UPDATE runs SET status=?, finished=?, outputs=?, error=? WHERE run_id=?", finishes
                )

    # -- event handlers --------------------------------------------------------------------------
    def _run_started(self, e: ev.RunStarted, runs: list, spans: list, finishes: list) -> None:
        runs.append((e.run_id, e.pipeline, e.ts, _json(e.inputs), _json(e.node_ids), _json(e.edges)))

    def _run_finished(self, e: ev.RunFinished, runs: list, spans: list, finishes: list) -> None:
        finishes.append((e.status, e.ts, _json(e.outputs), e.error, e.run_id))

    def _node_started_h(self, e: ev.NodeStarted, runs: list, spans: list, finishes: list) -> None:
        self._node_started[(e.run_id, e.node_id)] = e.ts
        self._node_kind[(e.run_id, e.node_id)] = e.kind

    def _node_row(self, run_id: str, node_id: str, start: float, end: float | None, status: str,
                  model: str | None, attrs: dict[str, Any], cost: float = 0.0, usage: ev.Usage | None = None) -> tuple:
        kind = self._node_kind.get((run_id, node_id), "node")
        attrs = {"contextflow.node.kind": kind, **attrs}
        u = usage or ev.Usage()
        return (f"{run_id}/{node_id}", run_id, run_id, "node", node_id, node_id, start, end, status, model,
                cost, u.input_tokens, u.output_tokens, _json(attrs))

    def _node_end(self, run_id: str, node_id: str, ts: float, duration: float) -> float:
        self._open_rows.discard((run_id, node_id))
        return self._node_started.pop((run_id, node_id), ts - duration)

    def _node_finished(self, e: ev.NodeFinished, runs: list, spans: list, finishes: list) -> None:
        start = self._node_end(e.run_id, e.node_id, e.ts, e.duration_s)
        attrs = {"contextflow.output": e.value, "contextflow.cache_hit": e.cache_hit}
        spans.append(self._node_row(e.run_id, e.node_id, start, e.ts, e.status, e.model, attrs, e.cost_usd, e.usage))

    def _node_failed(self, e: ev.NodeFailed, runs: list, spans: list, finishes: list) -> None:
        start = self._node_end(e.run_id, e.node_id, e.ts, e.duration_s)
        attrs = {"error.message": e.error, "error.type": e.error_type}
        spans.append(self._node_row(e.run_id, e.node_id, start, e.ts, "failed", None, attrs))

    def _node_skipped(self, e: ev.NodeSkipped, runs: list, spans: list, finishes: list) -> None:
        start = self._node_end(e.run_id, e.node_id, e.ts, 0.0)
        spans.append(self._node_row(e.run_id, e.node_id, start, e.ts, "skipped", None, {"contextflow.skip_reason": e.reason}))

    def _node_waiting(self, e: ev.NodeWaiting, runs: list, spans: list, finishes: list) -> None:
        start = self._node_end(e.run_id, e.node_id, e.ts, 0.0)
        attrs = {"contextflow.gate": e.waiting.gate, "contextflow.proposal": e.waiting.to_dict()}
        spans.append(self._node_row(e.run_id, e.node_id, start, e.ts, "waiting", None, attrs))

    def _attempt_started_h(self, e: ev.AttemptStarted, runs: list, spans: list, finishes: list) -> None:
        self._attempt_started[(e.run_id, e.node_id, e.attempt, e.item)] = (e.ts, e.prompt)

    def _attempt_finished(self, e: ev.AttemptFinished, runs: list, spans: list, finishes: list) -> None:
        """One span per attempt, written once: the event carries the call and its checks."""
        a = e.attempt
        began, prompt = self._attempt_started.pop((e.run_id, e.node_id, a.number, a.item), (None, None))
        start = a.started_at if a.started_at is not None else began if began is not None else e.ts - a.latency_s
        u = a.usage
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": _provider(a.model, a.provider),
            "gen_ai.request.model": a.model,
            "gen_ai.response.model": a.response_model or a.model,
            "gen_ai.usage.input_tokens": u.input_tokens,
            "gen_ai.usage.output_tokens": u.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": u.cache_read_tokens,
            "gen_ai.usage.reasoning.output_tokens": u.reasoning_tokens,
            "gen_ai.usage.cost": a.cost_usd,
            "gen_ai.usage.cost.source": a.cost_source,
            "contextflow.latency_s": a.latency_s,
            "contextflow.attempt": a.number,
            "contextflow.prompt": a.prompt if a.prompt is not None else prompt,
            "contextflow.response": a.response,
        }
        if a.time_to_first_token_s is not None:
            attrs["gen_ai.server.time_to_first_token"] = a.time_to_first_token_s
        if a.item is not None:
            attrs["contextflow.map.item"] = a.item
        if a.error:
            attrs["error.message"], attrs["error.type"] = a.error, a.error_type
        if a.verdicts:
            attrs["contextflow.verdicts"] = [v.to_dict() for v in a.verdicts]
            attrs["contextflow.verdicts.passed"] = a.passed
        if a.routing is not None:
            attrs["contextflow.routing"] = a.routing.to_dict()
        if a.rung is not None:
            attrs["contextflow.ladder.rung"] = a.rung
        if a.escalation_stopped is not None:
            attrs["contextflow.ladder.escalation_stopped"] = a.escalation_stopped.to_dict()
        if a.stepped_down is not None:
            attrs["contextflow.ladder.stepped_down"] = a.stepped_down.to_dict()
        if a.validation_error:
            attrs["contextflow.validation_error"] = a.validation_error
        span_id = f"{e.run_id}/{e.node_id}/attempt-{a.number}" + (f"-item-{a.item}" if a.item is not None else "")
        spans.append((span_id + f"@{start:.6f}", e.run_id, f"{e.run_id}/{e.node_id}", "attempt",
                      f"chat {a.model}", e.node_id, start, start + a.latency_s, "ok" if a.ok else "error", a.model,
                      a.cost_usd, u.input_tokens, u.output_tokens, _json(attrs)))

    def _retrieval(self, e: ev.RetrievalFinished, runs: list, spans: list, finishes: list) -> None:
        attrs = {
            "gen_ai.operation.name": "retrieval",
            "contextflow.query": e.query,
            "contextflow.context.budget_tokens": e.budget_tokens,
            "contextflow.context.used_tokens": e.used_tokens,
            "contextflow.context.items": e.items,
        }
        start = e.ts - e.latency_s
        spans.append((f"{e.run_id}/{e.node_id}/retrieval@{start:.6f}", e.run_id, f"{e.run_id}/{e.node_id}",
                      "retrieval", "retrieve", e.node_id, start, e.ts, "ok", None, 0.0, 0, 0, _json(attrs)))

    def _decision(self, e: ev.DecisionRecorded, runs: list, spans: list, finishes: list) -> None:
        attrs = {"contextflow.decision": e.decision, "contextflow.actor": e.actor, "contextflow.diff": e.diff,
                 "contextflow.comment": e.comment}
        spans.append((f"{e.run_id}/{e.node_id}/decision@{e.ts:.6f}", e.run_id, f"{e.run_id}/{e.node_id}",
                      "decision", f"{e.decision} by {e.actor}", e.node_id, e.ts, e.ts, "ok", None, 0.0, 0, 0,
                      _json(attrs)))


_HANDLERS: dict[type, Any] = {
    ev.RunStarted: TraceSink._run_started,
    ev.RunFinished: TraceSink._run_finished,
    ev.NodeStarted: TraceSink._node_started_h,
    ev.NodeFinished: TraceSink._node_finished,
    ev.NodeFailed: TraceSink._node_failed,
    ev.NodeSkipped: TraceSink._node_skipped,
    ev.NodeWaiting: TraceSink._node_waiting,
    ev.AttemptStarted: TraceSink._attempt_started_h,
    ev.AttemptFinished: TraceSink._attempt_finished,
    ev.RetrievalFinished: TraceSink._retrieval,
    ev.DecisionRecorded: TraceSink._decision,
}

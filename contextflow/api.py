"""The library's entry points with the project's stores wired in.

``contextflow.runtime`` runs a pipeline against whatever stores and sinks it is given; this
module is where the defaults are chosen: the project's run store (``runs.db``) and its trace
(``traces.db``), so that every run can be read in the viewer and resumed. It sits above
``runtime`` and ``trace``.

    from contextflow import run
    result = run("pipeline.yaml", {"question": "..."})

An app that embeds a run and must write nothing to disk passes ``stores=Stores.in_memory()``
(or ``in_memory=True`` for a one-off): the run store, trace and result cache then live in the
process, and no ``.contextflow/`` folder is created.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable, Iterator, Mapping

from contextflow.core.errors import UserError
from contextflow.core.events import Event, EventSink
from contextflow.core.results import RunResult
from contextflow.core.state import StateDir
from contextflow.dags.compiler import compile
from contextflow.runtime import api as engine
from contextflow.runtime import approvals
from contextflow.runtime.cache import MemoryResultCache, ResultCache
from contextflow.runtime.interrupts import run_sync
from contextflow.runtime.memory_store import MemoryRunStore
from contextflow.runtime.sqlite_store import SQLiteRunStore
from contextflow.runtime.store import RunStore
from contextflow.trace import TraceDatabase, TraceSink, TraceStore
from contextflow.trace.sink import drain
from contextflow.runtime.streaming import RunStream, iterate_in_thread

Project = str | os.PathLike[str] | None


@dataclass
class Stores:
    """Where runs keep their state: the run store, the trace and the result cache.

    ``trace=None`` records no trace; ``cache=None`` uses the cache files under the project's
    state folder. Keep the object to read results and spans afterwards, or to resume a run.
    """

    runs: RunStore
    trace: TraceStore | None = None
    cache: ResultCache | MemoryResultCache | None = None

    @classmethod
    def in_memory(cls) -> Stores:
        """Run store, trace and cache in this process only: nothing is written to disk."""
        return cls(MemoryRunStore(), TraceStore.in_memory(), MemoryResultCache())


@dataclass
class _Opened:
    runs: RunStore
    trace: TraceDatabase | None
    cache: ResultCache | MemoryResultCache | None


@asynccontextmanager
async def _stores(project: Project, stores: Stores | None, in_memory: bool, *,
                  resuming: bool = False) -> AsyncIterator[_Opened]:
    """The stores of one call: those given, new in-memory ones, or the project's (opened and closed here)."""
    if stores is not None and in_memory:
        raise UserError("pass either stores= or in_memory=True, not both")
    if in_memory:
        stores = Stores.in_memory()
    if stores is not None:
        yield _Opened(stores.runs, stores.trace.database if stores.trace is not None else None, stores.cache)
        return
    state = StateDir.for_project(project)
    if resuming and not state.runs_db.exists():
        raise UserError(f"no run store at {state.runs_db}", hint="run a pipeline first, or pass the project folder")
    state.ensure()
    runs = SQLiteRunStore(state.runs_db)
    try:
        yield _Opened(runs, TraceDatabase.at(state.traces_db), None)
    finally:
        runs.close()


def _with_trace(opened: _Opened, sinks: Iterable[EventSink], trace: bool) -> tuple[list[EventSink], TraceSink | None]:
    chosen = list(sinks)
    if not trace or opened.trace is None:
        return chosen, None
    opened.trace.open()  # a damaged traces.db stops the run here, with its name and what to do
    # A closed sink of an earlier run may still be writing; its last events must not land after
    # this run's first ones (a resume right after a run would otherwise read as the old status).
    drain(opened.trace)
    sink = TraceSink(opened.trace)
    return [*chosen, sink], sink


async def arun(pipeline: Any, inputs: Mapping[str, Any] | None = None, *, project: Project = None,
               sinks: Iterable[EventSink] = (), trace: bool = True, stores: Stores | None = None,
               in_memory: bool = False, **options: Any) -> RunResult:
    """Run a pipeline (a builder ``Pipeline``, a ``Plan``, a spec, a dict or a YAML path).

    ``trace``: record the run's spans (in the project's ``traces.db``, which the viewer reads).
    ``stores``: run against these stores instead of the project's; ``in_memory``: against new
    in-memory ones. Other options are those of :func:`contextflow.runtime.api.arun`.
    """
    # Check the pipeline before any store is opened: a pipeline with problems leaves no trace.
    plan = compile(pipeline, allow_imports=list(options.get("allow_imports") or ()))
    async with _stores(project, stores, in_memory) as opened:
        chosen, sink = _with_trace(opened, sinks, trace)
        if opened.cache is not None:
            options.setdefault("result_cache", opened.cache)
        try:
            return await engine.arun(plan, inputs, store=opened.runs, project=project, sinks=chosen, **options)
        finally:
            if sink is not None:
                sink.close()


async def aresume(run_id: str, *, project: Project = None, sinks: Iterable[EventSink] = (), trace: bool = True,
                  stores: Stores | None = None, **options: Any) -> RunResult:
    """Continue a failed, interrupted or waiting run without repeating finished nodes.

    A run made with ``stores=`` is resumed from the same ``stores``."""
    async with _stores(project, stores, False, resuming=True) as opened:
        chosen, sink = _with_trace(opened, sinks, trace)
        if opened.cache is not None:
            options.setdefault("result_cache", opened.cache)
        try:
            return await engine.aresume(run_id, store=opened.runs, project=project, sinks=chosen, **options)
        finally:
            if sink is not None:
                sink.close()


def run(pipeline: Any, inputs: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
    """Synchronous :func:`arun`."""
    return run_sync(arun(pipeline, inputs, **options))


def resume(run_id: str, **options: Any) -> RunResult:
    """Synchronous :func:`aresume`."""
    return run_sync(aresume(run_id, **options))


def astream(pipeline: Any, inputs: Mapping[str, Any] | None = None, *, sinks: Iterable[EventSink] = (),
            **options: Any) -> RunStream:
    """:func:`arun`, yielding the run's events as they happen (token deltas included); the trace is
    recorded as for :func:`arun`. ``async with astream(...) as events: async for event in events``;
    leaving early cancels the run, keeping what finished (see :mod:`contextflow.runtime.streaming`)."""
    given = list(sinks)
    return RunStream(lambda extra: arun(pipeline, inputs, sinks=[*given, *extra], **options))


def astream_resume(run_id: str, *, sinks: Iterable[EventSink] = (), **options: Any) -> RunStream:
    """:func:`aresume`, yielding the continued run's events."""
    given = list(sinks)
    return RunStream(lambda extra: aresume(run_id, sinks=[*given, *extra], **options))


def stream(pipeline: Any, inputs: Mapping[str, Any] | None = None, **options: Any) -> Iterator[Event]:
    """Synchronous :func:`astream`: a generator of the run's events (the run goes on a background thread)."""
    return iterate_in_thread(lambda: astream(pipeline, inputs, **options))


def stream_resume(run_id: str, **options: Any) -> Iterator[Event]:
    """Synchronous :func:`astream_resume`."""
    return iterate_in_thread(lambda: astream_resume(run_id, **options))


def _decided(decide: Any, *args: Any, project: Project = None, stores: Stores | None = None, **options: Any) -> int:
    if stores is not None:
        trace = stores.trace.database if stores.trace is not None else None
        sink = TraceSink(trace) if trace is not None else None
        options["store"] = stores.runs
    else:
        sink = TraceSink(StateDir.for_project(project).ensure().traces_db)
    try:
        return int(decide(*args, project=project, sinks=[sink] if sink else [], **options))
    finally:
        if sink is not None:
            sink.close(wait=True)


def approve(run_id: str, node_id: str, **options: Any) -> int:
    """Let a waiting node go on (recorded in the run store and the trace); then :func:`resume`."""
    return _decided(approvals.approve, run_id, node_id, **options)


def edit(run_id: str, node_id: str, value: Any, **options: Any) -> int:
    """Replace a waiting node's tool arguments or held output, then let it go on."""
    return _decided(approvals.edit, run_id, node_id, value, **options)


def reject(run_id: str, node_id: str, **options: Any) -> int:
    """Skip a waiting node (or, with ``abort=True``, stop the run)."""
    return _decided(approvals.reject, run_id, node_id, **options)


def pending(run_id: str, *, project: Project = None, stores: Stores | None = None) -> dict[str, dict[str, Any]]:
    """The run's waiting nodes and what each proposes."""
    return approvals.pending(run_id, project=project, store=stores.runs if stores is not None else None)


def decisions(run_id: str, *, project: Project = None, stores: Stores | None = None) -> list[Any]:
    """The decisions made on the run's nodes, oldest first."""
    return approvals.decisions(run_id, project=project, store=stores.runs if stores is not None else None)

__all__ = ["Stores", "approve", "arun", "aresume", "astream", "astream_resume", "decisions", "edit", "pending",
           "reject", "resume", "run", "stream", "stream_resume"]

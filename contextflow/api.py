"""The library's entry points with the project's stores wired in.

``contextflow.runtime`` runs a pipeline against whatever stores and sinks it is given; this
module is where the defaults are chosen: the project's run store and its trace (``traces.db``),
so that every run can be read in the viewer. It sits above ``runtime`` and ``trace``.

    from contextflow import run
    result = run("pipeline.yaml", {"question": "..."})
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Mapping

from contextflow.core.events import Event, EventSink
from contextflow.core.results import RunResult
from contextflow.core.state import StateDir
from contextflow.runtime import api as engine
from contextflow.runtime import approvals
from contextflow.runtime.interrupts import run_sync
from contextflow.runtime.streaming import RunStream, iterate_in_thread
from contextflow.trace import TraceSink

Project = str | os.PathLike[str] | None


def _with_trace(project: Project, sinks: Iterable[EventSink], trace: bool) -> tuple[list[EventSink], TraceSink | None]:
    chosen = list(sinks)
    if not trace:
        return chosen, None
    sink = TraceSink(StateDir.for_project(project).ensure().traces_db)
    return [*chosen, sink], sink


async def arun(pipeline: Any, inputs: Mapping[str, Any] | None = None, *, project: Project = None,
               sinks: Iterable[EventSink] = (), trace: bool = True, **options: Any) -> RunResult:
    """Run a pipeline (a builder ``Pipeline``, a ``Plan``, a spec, a dict or a YAML path).

    ``trace``: record the run's spans in the project's ``traces.db`` (the viewer reads them).
    Other options are those of :func:`contextflow.runtime.api.arun`.
    """
    chosen, sink = _with_trace(project, sinks, trace)
    try:
        return await engine.arun(pipeline, inputs, project=project, sinks=chosen, **options)
    finally:
        if sink is not None:
            sink.close()


async def aresume(run_id: str, *, project: Project = None, sinks: Iterable[EventSink] = (), trace: bool = True,
                  **options: Any) -> RunResult:
    """Continue a failed, interrupted or waiting run without repeating finished nodes."""
    chosen, sink = _with_trace(project, sinks, trace)
    try:
        return await engine.aresume(run_id, project=project, sinks=chosen, **options)
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


def _decided(decide: Any, *args: Any, project: Project = None, **options: Any) -> int:
    sink = TraceSink(StateDir.for_project(project).ensure().traces_db)
    try:
        return int(decide(*args, project=project, sinks=[sink], **options))
    finally:
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


pending = approvals.pending
decisions = approvals.decisions

__all__ = ["approve", "arun", "aresume", "astream", "astream_resume", "decisions", "edit", "pending", "reject",
           "resume", "run", "stream", "stream_resume"]

"""Watch a run as it goes: :func:`astream` and :func:`stream` yield its events, tokens included.

    async with astream("pipeline.yaml", {"question": "..."}) as events:
        async for event in events:
            if isinstance(event, TokenDelta):
                print(event.text, end="", flush=True)

The run is a task on the caller's loop with one more sink on its bus, a queue the iterator reads;
that sink consumes token deltas, so the run's model calls stream (see
:mod:`contextflow.runtime.progress`). Events arrive in the order the run emits them: a node's
token deltas before its NodeFinished, RunFinished last. Every event type is yielded, including
NodeWaiting (a node stopped for approval), ToolCallStarted/ToolCallFinished and BudgetWarning.

Leaving early (``break`` inside ``async with``, or :meth:`RunStream.aclose`) cancels the run the
way Ctrl-C does: finished nodes stay saved and ``resume`` runs the rest. A stream dropped
without being closed cancels its run too, once it is garbage collected. :func:`stream` is the
same for synchronous code: the run goes on an event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Awaitable, Callable, Iterable, Iterator, Mapping

from contextflow.core.events import Event, EventSink, RunFinished
from contextflow.core.results import RunResult
from contextflow.runtime import api as engine

Start = Callable[[list[EventSink]], Awaitable[RunResult]]
_DONE = object()  # the run's task ended (after RunFinished, or with an error before it)


class _QueueSink:
    """Hands the run's events to the stream's queue, from whichever thread emits them."""

    consumes_token_deltas = True

    def __init__(self, events: "asyncio.Queue[Any]", loop: asyncio.AbstractEventLoop) -> None:
        self._events = events
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def __call__(self, event: Event) -> None:
        if threading.get_ident() == self._loop_thread:
            self._events.put_nowait(event)
        else:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)


class RunStream:
    """The events of one run, as an async iterator (and an async context manager that closes it).

    ``result`` is the run's :class:`RunResult` once the iterator is exhausted; ``finished`` the
    run's RunFinished event, also after an early close (its status is then ``cancelled``).
    """

    def __init__(self, start: Start) -> None:
        self._start = start
        self._events: asyncio.Queue[Any] | None = None
        self._task: asyncio.Task[RunResult] | None = None
        self._ended = False
        self.result: RunResult | None = None
        self.finished: RunFinished | None = None

    def _begin(self) -> None:
        loop = asyncio.get_running_loop()
        self._events = asyncio.Queue()
        self._task = loop.create_task(self._start([_QueueSink(self._events, loop)]))
        events = self._events
        self._task.add_done_callback(lambda _: events.put_nowait(_DONE))

    def __aiter__(self) -> "RunStream":
        return self

    async def __anext__(self) -> Event:
        if self._task is None:
            self._begin()
        assert self._events is not None and self._task is not None
        if self._ended:
            raise StopAsyncIteration
        try:
            item = await self._events.get()
        except asyncio.CancelledError:
            self._task.cancel()  # whoever awaited the next event was cancelled: so is the run
            raise
        if item is _DONE:
            self._ended = True
            self.result = self._task.result()  # the run's own error, when it failed before finishing
            raise StopAsyncIteration
        if isinstance(item, RunFinished):
            self.finished = item
        return item

    async def aclose(self) -> None:
        """Stop the run if it is still going (finished nodes stay saved) and wait until it has."""
        task = self._task
        if task is None:
            self._ended = True
            return
        if not task.done():
            task.cancel()
        await asyncio.wait([task])
        self._ended = True
        # An early close wants no error from the run; exception() also marks it as retrieved.
        if not task.cancelled() and task.exception() is None:
            self.result = task.result()
        self._drain()

    def _drain(self) -> None:
        """Keep the RunFinished a cancelled run emitted while closing (nobody iterates any more)."""
        while self._events is not None and not self._events.empty():
            item = self._events.get_nowait()
            if isinstance(item, RunFinished):
                self.finished = item

    async def __aenter__(self) -> "RunStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __del__(self) -> None:
        task = self._task
        if task is not None and not task.done():
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is closed: the run ended with it
                pass


def astream(
    pipeline: Any, inputs: Mapping[str, Any] | None = None, *, sinks: Iterable[EventSink] = (), **options: Any
) -> RunStream:
    """Run ``pipeline`` (any form :func:`contextflow.runtime.api.arun` takes, with its options)
    and yield its events as they happen."""
    given = list(sinks)
    return RunStream(lambda extra: engine.arun(pipeline, inputs, sinks=[*given, *extra], **options))


def astream_resume(run_id: str, *, sinks: Iterable[EventSink] = (), **options: Any) -> RunStream:
    """:func:`contextflow.runtime.api.aresume`, yielding the continued run's events."""
    given = list(sinks)
    return RunStream(lambda extra: engine.aresume(run_id, sinks=[*given, *extra], **options))


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def iterate_in_thread(make: Callable[[], RunStream]) -> Iterator[Event]:
    """A run stream's events for synchronous code: the run goes on a loop in a background thread.

    Closing the generator (``break``, or an exception in the caller, Ctrl-C included) cancels the
    run and waits until it has saved what finished.
    """
    handoff: "queue.Queue[Any]" = queue.Queue()
    ready = threading.Event()
    running: dict[str, Any] = {}

    async def pump() -> None:
        running["loop"], running["task"] = asyncio.get_running_loop(), asyncio.current_task()
        ready.set()
        async with make() as events:
            async for event in events:
                handoff.put(event)

    def main() -> None:
        try:
            asyncio.run(pump())
            handoff.put(_DONE)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            handoff.put(_Failed(exc))
        finally:
            ready.set()

    thread = threading.Thread(target=main, name="contextflow-stream", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        if thread.is_alive():
            ready.wait()
            loop, task = running.get("loop"), running.get("task")
            if loop is not None and task is not None:
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:  # its loop just closed: the run is over
                    pass
            thread.join()


def stream(pipeline: Any, inputs: Mapping[str, Any] | None = None, **options: Any) -> Iterator[Event]:
    """Synchronous :func:`astream`: a generator of the run's events."""
    return iterate_in_thread(lambda: astream(pipeline, inputs, **options))


def stream_resume(run_id: str, **options: Any) -> Iterator[Event]:
    """Synchronous :func:`astream_resume`."""
    return iterate_in_thread(lambda: astream_resume(run_id, **options))


__all__ = ["RunStream", "astream", "astream_resume", "iterate_in_thread", "stream", "stream_resume"]

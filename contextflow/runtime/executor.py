"""The executor boundary: where one piece of a node's work actually runs.

The scheduler decides *what* runs and *when* (ordering, limits, retries, budgets, cache,
checkpoints, events); an executor only runs a :class:`Work` item and hands back its value or
raises its error. Each model call attempt, python function, tool or retrieval is one work item,
so a retry is a second submission and every policy stays in the scheduler whichever executor
runs the work. A work item names a module-level callable and plain arguments, so it pickles and
can be shipped to another process (Dask, and Ray later) unchanged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import queue
import threading
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Callable, Protocol, runtime_checkable


@dataclass(slots=True)
class Work:
    """One unit of work: call ``fn(**kwargs)``.

    ``is_async`` says whether ``fn`` is a coroutine function (awaited on the loop rather than
    blocking a thread). ``resources`` carries the node's hints (e.g. ``{"gpus": 1}``) for
    executors that place work on machines; the local executor ignores them.
    """

    node_id: str
    kind: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    is_async: bool = False
    resources: dict[str, float] = field(default_factory=dict)
    attempt: int = 1


@runtime_checkable
class Executor(Protocol):
    """Runs work items. ``submit`` returns the work's value or raises its exception."""

    async def submit(self, work: Work) -> Any: ...

    async def aclose(self) -> None: ...


@lru_cache(maxsize=4096)
def is_async_callable(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def run_work_blocking(work: Work) -> Any:
    """Run a work item to completion in the calling thread (for executors in other processes)."""
    if work.is_async:
        return asyncio.run(work.fn(**work.kwargs))
    return work.fn(**work.kwargs)


class DaemonThreadPool:
    """A small thread pool whose threads do not hold up interpreter exit.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads at exit, so one blocking python
    node would keep a Ctrl-C'd run alive until it returns. A node abandoned this way is not
    checkpointed, so resume runs it again.
    """

    def __init__(self, max_workers: int, name: str = "contextflow-node") -> None:
        self.max_workers = max_workers
        self.name = name
        self._jobs: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._waiting_jobs = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], Any]) -> "concurrent.futures.Future[Any]":
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is closed")
            self._jobs.put((future, fn))
            self._waiting_jobs += 1
            # Idle threads take waiting jobs; add a thread when the jobs outnumber them.
            if self._waiting_jobs > self._idle and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            job = self._jobs.get()
            with self._lock:
                self._idle -= 1
                if job is not None:
                    self._waiting_jobs -= 1
            if job is None:
                return
            future, fn = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # delivered to the awaiting node
                    future.set_exception(exc)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._jobs.put(None)


class LocalExecutor:
    """Coroutines are awaited on the scheduler's loop; blocking functions run in threads.

    Model calls are coroutines (``litellm.acompletion``) and cost the loop nothing while they
    wait; python functions, retrievals and tools may block or burn CPU, so they go to threads.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool: DaemonThreadPool | None = None

    def _threads(self) -> DaemonThreadPool:
        if self._pool is None:
            self._pool = DaemonThreadPool(self.max_workers)
        return self._pool

    async def submit(self, work: Work) -> Any:
        if work.is_async:
            return await work.fn(**work.kwargs)
        return await asyncio.wrap_future(self._threads().submit(partial(work.fn, **work.kwargs)))

    async def aclose(self) -> None:
        if self._pool is not None:
            # Threads still running a cancelled node cannot be interrupted; do not wait for them.
            self._pool.shutdown()
            self._pool = None

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
import inspect
import os
from concurrent.futures import ThreadPoolExecutor
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


class LocalExecutor:
    """Coroutines are awaited on the scheduler's loop; blocking functions run in a thread pool.

    Model calls are coroutines (``litellm.acompletion``) and cost the loop nothing while they
    wait; python functions, retrievals and tools may block or burn CPU, so they go to threads.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool: ThreadPoolExecutor | None = None

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="contextflow-node")
        return self._pool

    async def submit(self, work: Work) -> Any:
        if work.is_async:
            return await work.fn(**work.kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads(), partial(work.fn, **work.kwargs))

    async def aclose(self) -> None:
        if self._pool is not None:
            # Threads still running a cancelled node cannot be interrupted; do not wait for them.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

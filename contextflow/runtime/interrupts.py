"""Ctrl-C for a run driven by ``asyncio.run``: cancel the run (it saves what finished), then
raise KeyboardInterrupt, whichever thread the signal landed on."""

from __future__ import annotations

import asyncio
import signal
from typing import Any, Awaitable, TypeVar

from contextflow.core.errors import UserError

T = TypeVar("T")


async def cancel_on_sigint(coro: Awaitable[T]) -> T:
    """Await ``coro``; Ctrl-C cancels it (the run saves what finished) and ends as KeyboardInterrupt.

    The loop's own signal handler is used, not the plain one ``asyncio.run`` installs: the kernel
    may hand SIGINT to any thread (a node's worker thread), and only the loop's wakeup fd then
    wakes a loop that is waiting on long timers, so Ctrl-C acts at once rather than when the next
    node finishes. A SIGINT the process was started with ignored stays ignored.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        if task is not None:
            task.cancel()

    installed = False
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):  # no signals here (e.g. a worker thread)
            pass
    try:
        return await coro
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def run_sync(coro: Any) -> Any:
    """Run ``coro`` to its end from synchronous code, with Ctrl-C handled as above."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(cancel_on_sigint(coro))
    coro.close()
    raise UserError("run()/resume() were called inside a running event loop", hint="await arun()/aresume() instead")

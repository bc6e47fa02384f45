"""Functions for python nodes in runtime tests, registered with the import allowlist."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from contextflow.dags.imports import register_function
from contextflow.dags.spec import PipelineSpec

PREFIX = "runtime_helpers"
_active = 0
peak_active = 0


def pipeline(nodes: list[dict[str, Any]], **extra: Any) -> PipelineSpec:
    return PipelineSpec.model_validate({"name": extra.pop("name", "test"), "nodes": nodes, **extra})


async def nap(seconds: float = 0.1, value: Any = None, log: str | None = None, tag: str = "") -> Any:
    """Sleep, tracking how many naps overlap; optionally append ``tag`` to a log file."""
    global _active, peak_active
    _active += 1
    peak_active = max(peak_active, _active)
    try:
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{tag}\n")
                handle.flush()
                os.fsync(handle.fileno())
        await asyncio.sleep(seconds)
    finally:
        _active -= 1
    return value if value is not None else tag


def blocking_nap(seconds: float = 0.1, log: str | None = None, tag: str = "") -> str:
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{tag}\n")
    time.sleep(seconds)
    return tag


def add(a: int, b: int = 0) -> int:
    return a + b


def boom(message: str = "boom") -> None:
    raise RuntimeError(message)


def listing(n: int = 3) -> list[int]:
    return list(range(n))


def flaky_connection(counter: str) -> str:
    """Raise ConnectionError the first time it is called for ``counter`` (a file path)."""
    path = Path(counter)
    if not path.exists():
        path.write_text("1")
        raise ConnectionError("dropped")
    return "ok"


def interrupt_from_worker_thread(delay: float = 0.2) -> str:
    """Send SIGINT to the calling (worker) thread, as a kernel may when a person presses Ctrl-C."""
    import signal
    import threading

    time.sleep(delay)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    time.sleep(30)  # stay blocked: finishing would wake the loop and hide a missed signal
    return "sent"


for _fn in (nap, blocking_nap, add, boom, listing, flaky_connection, interrupt_from_worker_thread):
    register_function(_fn, f"{PREFIX}:{_fn.__name__}")


def reset_peak() -> None:
    global peak_active
    peak_active = 0


def write_marker(path: str, text: str = "ran") -> str:
    """A side effect a test can look for: append ``text`` to the file at ``path``."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return text


class HTTPFailure(Exception):
    """An HTTP client's error that is not litellm's: it carries only a status code."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"server answered {status_code}")
        self.status_code = status_code


def fail_with_status(counter: str, status: int = 500) -> str:
    """Raise HTTPFailure(status) the first time it is called for ``counter`` (a file path)."""
    path = Path(counter)
    if not path.exists():
        path.write_text("1")
        raise HTTPFailure(status)
    return "ok"


def counted_add(a: int, b: int = 0, log: str | None = None) -> int:
    """``a + b``, logging each real call (so a test can tell a cache hit from a call)."""
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{a}+{b}\n")
    return a + b


for _fn in (write_marker, fail_with_status, counted_add):
    register_function(_fn, f"{PREFIX}:{_fn.__name__}")

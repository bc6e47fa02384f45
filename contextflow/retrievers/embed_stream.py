"""Run a consumer (a vector-store write) in its own thread so it overlaps encoding.

The encoder hands each finished batch to a bounded queue and goes straight back to the device;
a single consumer thread drains the queue. Bounded so a slow store applies back-pressure instead
of piling every vector up in memory; a single thread so the consumer sees batches one at a time
and needs no locking of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable

import numpy as np

BatchCallback = Callable[[np.ndarray, np.ndarray], None]

_DONE = object()


class ConsumerFailed(RuntimeError):
    """Wraps the exception a batch callback raised, so the caller sees it and the batch it broke on."""


def drain_into(
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    callback: BatchCallback,
    *,
    max_pending: int = 4,
) -> int:
    """Feed every ``(indices, vectors)`` pair to ``callback`` on a worker thread; return the count.

    If the callback raises, encoding stops at the next batch and the error is re-raised here with
    the original as its cause. Batches already handed over are not lost: the callback saw them.
    """
    pending: queue.Queue[object] = queue.Queue(maxsize=max(1, max_pending))
    failure: list[BaseException] = []
    delivered = 0

    def consume() -> None:
        nonlocal delivered
        while True:
            item = pending.get()
            if item is _DONE:
                return
            if failure:
                continue  # keep draining so the producer never blocks on a full queue
            indices, vectors = item  # type: ignore[misc]
            try:
                callback(indices, vectors)
                delivered += len(indices)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)

    worker = threading.Thread(target=consume, name="cf-embed-consumer", daemon=True)
    worker.start()
    try:
        for indices, vectors in batches:
            if failure:
                break
            pending.put((indices, vectors))
    finally:
        pending.put(_DONE)
        worker.join()
    if failure:
        raise ConsumerFailed(f"the batch callback failed after {delivered} vectors: {failure[0]!r}") from failure[0]
    return delivered

"""How finished results reach the run store: at once (``node``), behind the loop (``background``), or not.

``node`` (the default): every result that finished during one turn of the event loop is committed
in one transaction before its dependents start, so no node ever starts on an input that is not on
disk. The cost is one commit per turn, which shows on long chains of tiny python nodes
(measured in ``benchmarks/scheduler_overhead.py``).

``background``: results are encoded on the loop (a snapshot, safe from later mutation) and
committed in order by one writer thread that groups whatever has queued up. Dependents start
without waiting. Commits keep the order in which nodes finished, so the store never holds a
node without the inputs it was computed from; a ``kill -9`` loses at most the results of the
last few milliseconds, which resume runs again. A result that was committed is never run again,
under either mode.

``off``: nothing is written (the run cannot be resumed).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Literal

from contextflow.core.results import NodeResult
from contextflow.runtime.store import RunStore, node_row

CheckpointMode = Literal["node", "background", "off"]
CHECKPOINT_MODES: tuple[str, ...] = ("node", "background", "off")

_STOP = object()


class BackgroundWriter:
    """One thread that commits queued rows in order, grouping what has accumulated."""

    def __init__(self, store: RunStore, coalesce_s: float = 0.002) -> None:
        self.store = store
        self.coalesce_s = coalesce_s
        self.error: BaseException | None = None
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="contextflow-checkpoints", daemon=True)
        self._thread.start()

    def put(self, run_id: str, results: list[NodeResult]) -> None:
        self._queue.put([node_row(run_id, r) for r in results])

    def _work(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            rows = list(item)
            # Let a few milliseconds of results pile up: one commit for many rows, and the loop
            # thread is not woken for every single row (the GIL handoff costs more than the row).
            time.sleep(self.coalesce_s)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                rows.extend(more)
            try:
                self.store.save_rows(rows)
            except BaseException as exc:  # reported by close(); the run then fails loudly
                self.error = exc

    def close(self) -> None:
        """Wait until everything queued is committed."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

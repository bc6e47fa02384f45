"""Following a run's trace while it is written: what changed since the last look.

The viewer is a separate process from the run, so it learns of new spans by polling the trace
database (WAL lets it read while the run's sink writes). A span is rewritten in place as its node
goes on (``INSERT OR REPLACE``: a running node's provisional row, then its finished one), so a
change is found by comparing each span's fingerprint (status, times, cost, tokens, size of its
attributes, whether it has children) with the one seen last; only changed spans are read whole.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contextflow.trace.store import TraceNotFound, check_run_id

_LEAF = "NOT EXISTS (SELECT 1 FROM spans c WHERE c.parent_id = s.span_id)"
_KEYS = ("span_id", "parent_id", "kind", "name", "node_id", "start", "end", "status", "model", "cost",
         "input_tokens", "output_tokens", "attributes", "leaf")
#: run statuses after which nothing more is written (until a resume starts the run again)
SETTLED = frozenset({"succeeded", "failed", "cancelled", "budget_exceeded", "waiting"})


@dataclass
class Changes:
    """Spans new or changed since the last poll (as :meth:`TraceStore.spans` gives them), and the
    run's row when it changed."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.spans) or self.run is not None


class TraceTail:
    """Polls one run's spans and status in ``db_path`` (it only reads)."""

    def __init__(self, db_path: str | Path, run_id: str) -> None:
        self.run_id = check_run_id(run_id)
        path = Path(db_path)
        if not path.exists():
            raise TraceNotFound(run_id)
        # Opened once per follower and used from one thread at a time (a worker of the viewer).
        # Not ``mode=ro``: a read-only connection cannot open a WAL database whose -shm is gone.
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self._seen: dict[str, tuple[Any, ...]] = {}
        self._run: tuple[Any, ...] | None = None
        if self._run_row() is None:
            self.close()
            raise TraceNotFound(run_id)

    def _run_row(self) -> tuple[Any, ...] | None:
        return self._db.execute(
            "SELECT status, finished, error FROM runs WHERE run_id = ?", (self.run_id,)
        ).fetchone()

    @property
    def status(self) -> str | None:
        """The run's status at the last poll."""
        return self._run[0] if self._run else None

    def poll(self) -> Changes:
        changes = Changes()
        run = self._run_row()
        if run is not None and run != self._run:
            self._run = run
            changes.run = {"run_id": self.run_id, "status": run[0], "finished": run[1], "error": run[2]}
        rows = self._db.execute(
            "SELECT s.span_id, s.status, s.start, s.end, s.cost, s.input_tokens, s.output_tokens,"
            f" length(s.attributes), {_LEAF} FROM spans s WHERE s.run_id = ?", (self.run_id,)
        ).fetchall()
        changed = [row[0] for row in rows if self._seen.get(row[0]) != row[1:]]
        for row in rows:
            self._seen[row[0]] = row[1:]
        if changed:
            changes.spans = self._spans(changed)
        return changes

    def _spans(self, span_ids: list[str]) -> list[dict[str, Any]]:
        spans: list[dict[str, Any]] = []
        for start in range(0, len(span_ids), 500):  # SQLite caps the number of parameters
            chunk = span_ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT s.span_id, s.parent_id, s.kind, s.name, s.node_id, s.start, s.end, s.status, s.model,"
                f" s.cost, s.input_tokens, s.output_tokens, s.attributes, {_LEAF} FROM spans s"
                f" WHERE s.run_id = ? AND s.span_id IN ({marks})", (self.run_id, *chunk)
            ).fetchall()
            for row in rows:
                span = dict(zip(_KEYS, row))
                span["attributes"] = json.loads(span["attributes"] or "{}")
                span["leaf"] = bool(span["leaf"])
                spans.append(span)
        spans.sort(key=lambda s: s["start"] or 0.0)
        return spans

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "TraceTail":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

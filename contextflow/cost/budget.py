"""Run budgets: hard caps on $ cost, tokens and wall time, enforced by reservations.

Before a model call starts, the scheduler reserves its worst case (counted prompt tokens plus the
output limit, at the model's price). A reservation is granted only while everything already spent
plus everything already reserved plus this call stays within every cap, so no interleaving of
concurrent calls can end above a cap. After the call the reservation is settled with the actual
usage, which frees the difference for other calls.

The check itself is :meth:`Caps.fit` (what :meth:`Budget.fits` answers and what a reservation
must pass); :meth:`Budget.book` counts spend that was not reserved first. The books live in a
ledger. :class:`MemoryLedger` serves one process (a lock makes it safe from threads, and
reserve/settle never await, so it is safe on an asyncio loop too).
:class:`SQLiteLedger` keeps the same books in a SQLite table and takes ``BEGIN IMMEDIATE`` around
each check-and-insert, so reservations hold across processes (e.g. Dask workers on one host).
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

from contextflow.core.db import open_db
from contextflow.core.errors import ContextflowError

if TYPE_CHECKING:
    from contextflow.dags.spec import BudgetSpec

BudgetKind = Literal["cost", "tokens", "wall"]


class BudgetExceeded(ContextflowError):
    """A call was refused because its worst case does not fit what is left of a cap."""

    def __init__(self, kind: BudgetKind, message: str) -> None:
        self.kind = kind
        super().__init__(message)


@dataclass(slots=True)
class Reservation:
    """Worst-case cost and tokens held for one call until it is settled."""

    id: int
    cost_usd: float
    tokens: int
    label: str = ""
    settled: bool = False


@dataclass(frozen=True, slots=True)
class Totals:
    spent_cost_usd: float
    spent_tokens: int
    reserved_cost_usd: float
    reserved_tokens: int

    @property
    def committed_cost_usd(self) -> float:
        return self.spent_cost_usd + self.reserved_cost_usd

    @property
    def committed_tokens(self) -> int:
        return self.spent_tokens + self.reserved_tokens


# Float sums drift by ulps; a cap is compared with this slack so an exact fit is not refused.
_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class Fit:
    """Whether a call's worst case fits what is left of every cap; ``bool(fit)`` says it does.

    ``kind`` names the first cap the call would pass (None when it fits); ``totals`` are the
    books the answer was computed from.
    """

    cost_usd: float
    tokens: int
    caps: "Caps"
    totals: Totals
    kind: BudgetKind | None = None

    @property
    def ok(self) -> bool:
        return self.kind is None

    def __bool__(self) -> bool:
        return self.kind is None

    @property
    def left_cost_usd(self) -> float | None:
        """What is left of the cost cap (spent and reserved both count), or None without one."""
        cap = self.caps.max_cost_usd
        return None if cap is None else cap - self.totals.committed_cost_usd

    @property
    def left_tokens(self) -> int | None:
        cap = self.caps.max_tokens
        return None if cap is None else cap - self.totals.committed_tokens

    def shortfall(self) -> tuple[float, int]:
        """How far past each cap the call could go ($, tokens; 0 where it fits or no cap is set)."""
        cost = self.left_cost_usd
        tokens = self.left_tokens
        return (max(self.cost_usd - cost, 0.0) if cost is not None else 0.0,
                max(self.tokens - tokens, 0) if tokens is not None else 0)

    def error(self) -> BudgetExceeded:
        """The refusal of a call that does not fit."""
        if self.kind == "tokens":
            return BudgetExceeded(
                "tokens",
                f"token budget exhausted: {self.totals.committed_tokens} tokens spent or reserved of "
                f"{self.caps.max_tokens}, and the next call may use up to {self.tokens}",
            )
        return BudgetExceeded(
            "cost",
            f"cost budget exhausted: ${self.totals.committed_cost_usd:.6f} spent or reserved of "
            f"${self.caps.max_cost_usd:.6f}, and the next call may cost up to ${self.cost_usd:.6f}",
        )


@dataclass(frozen=True, slots=True)
class Caps:
    max_cost_usd: float | None = None
    max_tokens: int | None = None

    def fit(self, totals: Totals, cost_usd: float, tokens: int) -> Fit:
        """The one budget check: spent + reserved + this call's worst case within every cap.

        A call that exactly fills a cap fits.
        """
        if self.max_cost_usd is not None and totals.committed_cost_usd + cost_usd > self.max_cost_usd + _EPS:
            return Fit(cost_usd, tokens, self, totals, "cost")
        if self.max_tokens is not None and totals.committed_tokens + tokens > self.max_tokens:
            return Fit(cost_usd, tokens, self, totals, "tokens")
        return Fit(cost_usd, tokens, self, totals)

    def raised(self, cost_usd: float = 0.0, tokens: int = 0) -> "Caps":
        """These caps raised by a grant (a cap that is not set stays unset)."""
        return Caps(
            self.max_cost_usd + cost_usd if self.max_cost_usd is not None else None,
            self.max_tokens + tokens if self.max_tokens is not None else None,
        )


class Ledger(Protocol):
    def reserve(self, caps: Caps, cost_usd: float, tokens: int) -> int: ...
    def settle(self, reservation_id: int, cost_usd: float, tokens: int) -> None: ...
    def book(self, cost_usd: float, tokens: int) -> None: ...
    def totals(self) -> Totals: ...


def _admit(caps: Caps, totals: Totals, cost_usd: float, tokens: int) -> None:
    fit = caps.fit(totals, cost_usd, tokens)
    if not fit:
        raise fit.error()


class MemoryLedger:
    """Books for one process; a lock makes reserve/settle atomic across threads."""

    def __init__(self, spent_cost_usd: float = 0.0, spent_tokens: int = 0) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._open: dict[int, tuple[float, int]] = {}
        self._spent_cost = spent_cost_usd
        self._spent_tokens = spent_tokens
        self._reserved_cost = 0.0
        self._reserved_tokens = 0

    def reserve(self, caps: Caps, cost_usd: float, tokens: int) -> int:
        with self._lock:
            _admit(caps, self._totals(), cost_usd, tokens)
            rid = next(self._ids)
            self._open[rid] = (cost_usd, tokens)
            self._reserved_cost += cost_usd
            self._reserved_tokens += tokens
            return rid

    def settle(self, reservation_id: int, cost_usd: float, tokens: int) -> None:
        with self._lock:
            held = self._open.pop(reservation_id, None)
            if held is None:
                return
            self._reserved_cost -= held[0]
            self._reserved_tokens -= held[1]
            self._spent_cost += cost_usd
            self._spent_tokens += tokens

    def book(self, cost_usd: float, tokens: int) -> None:
        with self._lock:
            self._spent_cost += cost_usd
            self._spent_tokens += tokens

    def totals(self) -> Totals:
        with self._lock:
            return self._totals()

    def _totals(self) -> Totals:
        return Totals(self._spent_cost, self._spent_tokens, max(self._reserved_cost, 0.0), self._reserved_tokens)


_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    budget_key TEXT NOT NULL,
    reserved_cost REAL NOT NULL,
    reserved_tokens INTEGER NOT NULL,
    spent_cost REAL NOT NULL DEFAULT 0,
    spent_tokens INTEGER NOT NULL DEFAULT 0,
    open INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_ledger_key ON budget_ledger(budget_key, open);
"""


class SQLiteLedger:
    """Books in a SQLite table shared by every process that opens the same file and key.

    ``BEGIN IMMEDIATE`` takes the database's write lock before the totals are read, so two
    processes cannot both see room for one more call and both take it.
    """

    def __init__(self, path: str | Path, budget_key: str, *, spent_cost_usd: float = 0.0, spent_tokens: int = 0) -> None:
        self.path = Path(path)
        self.budget_key = budget_key
        self._local = threading.local()
        self._conn()  # creates the file and its table, or refuses a damaged or newer one
        if spent_cost_usd or spent_tokens:
            self.book(spent_cost_usd, spent_tokens)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_db(self.path, kind="budget ledger", schema=_LEDGER_SCHEMA)
            self._local.conn = conn
        return conn

    def _immediate(self) -> "_Immediate":
        return _Immediate(self._conn())

    def _totals_in(self, conn: sqlite3.Connection) -> Totals:
        row = conn.execute(
            "SELECT COALESCE(SUM(spent_cost), 0), COALESCE(SUM(spent_tokens), 0),"
            " COALESCE(SUM(CASE WHEN open THEN reserved_cost ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN open THEN reserved_tokens ELSE 0 END), 0)"
            " FROM budget_ledger WHERE budget_key = ?",
            (self.budget_key,),
        ).fetchone()
        return Totals(float(row[0]), int(row[1]), float(row[2]), int(row[3]))

    def reserve(self, caps: Caps, cost_usd: float, tokens: int) -> int:
        with self._immediate() as conn:
            _admit(caps, self._totals_in(conn), cost_usd, tokens)
            cur = conn.execute(
                "INSERT INTO budget_ledger (budget_key, reserved_cost, reserved_tokens, created_at)"
                " VALUES (?, ?, ?, ?)",
                (self.budget_key, cost_usd, tokens, time.time()),
            )
            return int(cur.lastrowid or 0)

    def settle(self, reservation_id: int, cost_usd: float, tokens: int) -> None:
        with self._immediate() as conn:
            conn.execute(
                "UPDATE budget_ledger SET open = 0, spent_cost = ?, spent_tokens = ? WHERE id = ? AND open = 1",
                (cost_usd, tokens, reservation_id),
            )

    def book(self, cost_usd: float, tokens: int) -> None:
        with self._immediate() as conn:
            conn.execute(
                "INSERT INTO budget_ledger (budget_key, reserved_cost, reserved_tokens, spent_cost,"
                " spent_tokens, open, created_at) VALUES (?, 0, 0, ?, ?, 0, ?)",
                (self.budget_key, cost_usd, tokens, time.time()),
            )

    def totals(self) -> Totals:
        return self._totals_in(self._conn())


class _Immediate:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class Budget:
    """Caps for one run; ``reserve`` before a call, ``settle`` after it (also after a failure)."""

    def __init__(
        self,
        max_cost_usd: float | None = None,
        max_tokens: int | None = None,
        max_wall_s: float | None = None,
        *,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.caps = Caps(max_cost_usd, max_tokens)
        self.max_wall_s = max_wall_s
        self.ledger: Ledger = ledger or MemoryLedger()
        self._clock = clock
        self._started = clock()
        self.exhausted: BudgetExceeded | None = None
        # Per model: the highest billed/catalog price ratio a provider has charged in this run.
        self._markups: dict[str, float] = {}

    @classmethod
    def from_spec(cls, spec: "BudgetSpec | None", *, ledger: Ledger | None = None) -> "Budget":
        if spec is None:
            return cls(ledger=ledger)
        return cls(spec.max_cost_usd, spec.max_tokens, spec.max_wall_s, ledger=ledger)

    @property
    def limits_calls(self) -> bool:
        return self.caps.max_cost_usd is not None or self.caps.max_tokens is not None

    def reserve(self, cost_usd: float, tokens: int, label: str = "", *, model: str | None = None) -> Reservation:
        """Hold a call's worst case, or raise :class:`BudgetExceeded` (and remember it).

        ``cost_usd`` is the worst case at the catalog price; for a ``model`` whose provider has
        billed above that price in this run, the hold is raised by the same ratio.
        """
        cost_usd *= self.markup(model)
        try:
            self.check_wall()
            rid = self.ledger.reserve(self.caps, cost_usd, tokens)
        except BudgetExceeded as exc:
            if self.exhausted is None:
                self.exhausted = exc
            raise
        return Reservation(rid, cost_usd, tokens, label)

    def markup(self, model: str | None) -> float:
        """How many times its catalog price ``model``'s provider has billed (1.0 until it billed more)."""
        return self._markups.get(model, 1.0) if model is not None else 1.0

    def observe_bill(self, model: str, billed_usd: float, catalog_usd: float | None) -> None:
        """A provider reported what it billed for a call of ``model``. Above the catalog price,
        later reservations for the model are raised by that ratio, so the hard cap still holds."""
        if catalog_usd is None or catalog_usd <= 0 or billed_usd <= catalog_usd:
            return
        ratio = billed_usd / catalog_usd
        if ratio > self._markups.get(model, 1.0):
            self._markups[model] = ratio

    def settle(self, reservation: Reservation, cost_usd: float, tokens: int) -> None:
        """Replace a reservation with what the call actually used (0, 0 after a failed call)."""
        if reservation.settled:
            return
        reservation.settled = True
        self.ledger.settle(reservation.id, cost_usd, tokens)

    def fits(self, cost_usd: float, tokens: int, *, model: str | None = None) -> Fit:
        """Whether a call of this worst case would be granted now (nothing is reserved);
        ``model`` raises the cost as :meth:`reserve` would."""
        return self.caps.fit(self.ledger.totals(), cost_usd * self.markup(model), tokens)

    def book(self, cost_usd: float, tokens: int) -> None:
        """Count spend that was not reserved first: a judge's call made by a verifier, or what a
        node spent in an earlier attempt of the run that this attempt's books do not hold yet."""
        if cost_usd or tokens:
            self.ledger.book(cost_usd, tokens)

    def grant(self, cost_usd: float = 0.0, tokens: int = 0) -> None:
        """Raise the caps by what a person approved spending past them."""
        if cost_usd or tokens:
            self.caps = self.caps.raised(cost_usd, tokens)

    def totals(self) -> Totals:
        return self.ledger.totals()

    @property
    def spent_cost_usd(self) -> float:
        return self.ledger.totals().spent_cost_usd

    @property
    def spent_tokens(self) -> int:
        return self.ledger.totals().spent_tokens

    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def remaining_wall_s(self) -> float | None:
        if self.max_wall_s is None:
            return None
        return self.max_wall_s - self.elapsed_s()

    def check_wall(self, slack_s: float = 0.005) -> None:
        """Raise when the wall budget is spent (``slack_s``: a timer may fire a hair early)."""
        left = self.remaining_wall_s()
        if left is not None and left <= slack_s:
            exc = BudgetExceeded("wall", f"wall-time budget exhausted: {self.max_wall_s:g} s elapsed")
            if self.exhausted is None:
                self.exhausted = exc
            raise exc

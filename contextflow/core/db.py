"""The one way contextflow opens a SQLite database, and what its failures mean to a user.

Every database in the state folder (``runs.db``, ``traces.db``, the index's ``meta.db`` and
vector cache, a shared budget ledger) is opened by :func:`open_db`, so they all get the same
pragmas (WAL, ``synchronous``, a busy timeout) and the same format check: ``PRAGMA user_version``
holds :data:`~contextflow.core.state.STATE_FORMAT_VERSION`. A database written by a newer
contextflow is refused instead of being half-understood; an older or unstamped one gets the
caller's schema (``CREATE ... IF NOT EXISTS`` statements) and the current stamp.

SQLite reports a damaged file, a read-only folder or a full disk as ``sqlite3.DatabaseError``
or ``OperationalError`` with a terse message. :func:`state_error` turns each kind into a
:class:`StateError` that names the file and says what to do; :func:`guard` applies it around
any use of a connection.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal
from urllib.parse import quote

from contextflow.core.errors import UserError
from contextflow.core.state import STATE_FORMAT_VERSION

BUSY_TIMEOUT_S = 30.0
Synchronous = Literal["OFF", "NORMAL", "FULL"]


class StateError(UserError):
    """A state file that cannot be used as it is: damaged, read-only, a folder, a full disk, too new.

    Exit code 1: the input was fine, the machine's state is not."""

    exit_code = 1


def open_db(
    path: str | os.PathLike[str] | None,
    *,
    kind: str,
    schema: str = "",
    readonly: bool = False,
    create: bool = True,
    autocommit: bool = True,
    synchronous: Synchronous = "NORMAL",
) -> sqlite3.Connection:
    """A connection to the database at ``path`` (``None``: a private in-memory database).

    ``kind`` names the database in messages ("run store", "trace store", ...). ``schema``
    (``CREATE ... IF NOT EXISTS`` statements) is applied on every writable open, and the format
    version stamped in the same transaction when the file is new, unstamped or older.
    ``readonly`` opens with ``mode=ro``: nothing is created, migrated or stamped, so reading works
    in a folder that cannot be written. ``create=False`` refuses a missing file. ``autocommit``
    (the default) leaves transactions to explicit ``BEGIN``/``COMMIT``; otherwise Python's
    implicit transactions apply (commit with ``conn.commit()`` or ``with conn:``).

    Raises :class:`StateError` for anything SQLite or the filesystem refuses.
    """
    where = Path(path) if path is not None else None
    if where is not None:
        _check_location(where, kind, readonly=readonly, create=create)
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(where, readonly=readonly, create=create, autocommit=autocommit)
        try:
            version = _version(conn)  # the first read of the header: fails on a file that is not SQLite
        except sqlite3.OperationalError as exc:
            if not (readonly and where is not None and "unable to open" in str(exc)):
                raise
            # A WAL database in a folder nobody may write: SQLite cannot create the -shm file it
            # reads through. No process can be writing there either, so read the file as it stands.
            conn.close()
            conn = _connect(where, readonly=True, create=False, autocommit=autocommit, immutable=True)
            version = _version(conn)
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        raise state_error(exc, where, kind) from exc
    try:
        if version > STATE_FORMAT_VERSION:
            raise StateError(
                f"{where or kind} is a {kind} database of format version {version}; this contextflow reads"
                f" format version {STATE_FORMAT_VERSION} and older",
                hint="upgrade contextflow (pip install -U contextflow), or point CONTEXTFLOW_HOME at another"
                " folder; the file was not changed",
            )
        if not readonly:
            if where is not None:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            if version < STATE_FORMAT_VERSION:
                _migrate(conn, schema)
            else:  # tables that another kind of database sharing this file lacks; a no-op otherwise
                for statement in _statements(schema):
                    conn.execute(statement)
    except StateError:
        conn.close()
        raise
    except (sqlite3.Error, OSError) as exc:
        conn.close()
        raise state_error(exc, where, kind) from exc
    return conn


def _check_location(path: Path, kind: str, *, readonly: bool, create: bool) -> None:
    if path.is_dir():
        raise StateError(
            f"{path} is a folder, not a {kind} database",
            hint=f"move it aside (mv {path} {path}.folder) so contextflow can create the database there",
        )
    if readonly or not create:
        if not path.exists():
            raise StateError(f"no {kind} database at {path}", hint="run a pipeline first, or pass its project folder")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise state_error(exc, path.parent, kind) from exc


def _connect(path: Path | None, *, readonly: bool, create: bool, autocommit: bool,
             immutable: bool = False) -> sqlite3.Connection:
    options = {"timeout": BUSY_TIMEOUT_S, "isolation_level": None if autocommit else "", "check_same_thread": False}
    if path is None:
        return sqlite3.connect(":memory:", **options)  # type: ignore[arg-type]
    mode = "ro" if readonly else "rwc" if create else "rw"
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}" + ("&immutable=1" if immutable else "")
    conn = sqlite3.connect(uri, uri=True, **options)  # type: ignore[arg-type]
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, schema: str) -> None:
    """Apply ``schema`` and stamp the version in one transaction (``executescript`` would commit early)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _version(conn) < STATE_FORMAT_VERSION:  # not done meanwhile
            for statement in _statements(schema):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={STATE_FORMAT_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> Iterator[str]:
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        yield pending


def state_error(exc: BaseException, path: Path | None, kind: str) -> StateError:
    """What ``exc`` (from SQLite or the filesystem, using ``path``) means, and what to do about it."""
    where = str(path) if path is not None else f"the in-memory {kind}"
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC or "database or disk is full" in text:
        return StateError(
            f"cannot write {where}: the disk is full",
            hint="free some space and try again; a run it stopped keeps its finished nodes:"
            " contextflow resume RUN_ID",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text:
        return StateError(
            f"cannot write {where}: it is read-only",
            hint="make the state folder writable, or set CONTEXTFLOW_HOME to a folder you can write;"
            " reading commands (contextflow runs, contextflow trace list) still work",
        )
    if "file is not a database" in text or "malformed" in text or "file is encrypted" in text:
        return StateError(
            f"{where} is damaged ({exc}); it is not a readable {kind} database",
            hint=f"nothing was changed; move it aside (mv {where} {where}.damaged) and contextflow starts a new one"
            f" (sqlite3 {where}.damaged .recover may rescue what it held)",
        )
    if "locked" in text or "busy" in text:
        return StateError(
            f"{where} is locked by another process",
            hint="wait for the other contextflow command to finish, then try again",
        )
    if "unable to open" in text:
        if path is not None and path.is_dir():
            return StateError(
                f"{where} is a folder, not a {kind} database",
                hint=f"move it aside (mv {where} {where}.folder) so contextflow can create the database there",
            )
        return StateError(f"cannot open {where} ({exc})", hint="check that the file and its folder exist and may be read")
    if "disk i/o error" in text:
        return StateError(f"cannot read or write {where}: disk I/O error", hint="check the disk, then try again")
    return StateError(f"{kind} database {where}: {type(exc).__name__}: {exc}",
                      hint="if the file is damaged, move it aside and run again")


@contextmanager
def guard(path: Path | None, kind: str) -> Iterator[None]:
    """Report SQLite and filesystem failures inside the block as a :class:`StateError`."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise state_error(exc, path, kind) from exc

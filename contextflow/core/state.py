"""The project's state folder (``.contextflow/``) and its layout.

Everything contextflow persists lives under one folder so a project can be cleaned, moved or
ignored as a unit. Layout (format version 1)::

    .contextflow/
      runs.db        run store: runs, node results (checkpoints), approvals      (SQLite, WAL)
      traces.db      trace store: spans and their attributes                     (SQLite, WAL)
      cache/         content-addressed cache of node results
      index/         retrieval index: chroma/ (vectors), bm25/, meta.db
      routers/       trained routers

Every SQLite database records ``PRAGMA user_version = STATE_FORMAT_VERSION`` and is opened by
:func:`contextflow.core.db.open_db`, which refuses a newer version and stamps an older one.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from contextflow.core.errors import UserError

STATE_DIR_NAME = ".contextflow"
STATE_FORMAT_VERSION = 1
STATE_DIR_ENV = "CONTEXTFLOW_HOME"


@dataclass(frozen=True)
class StateDir:
    """Paths inside one state folder; creating them is left to the component that writes there."""

    root: Path

    @classmethod
    def for_project(cls, project: str | os.PathLike[str] | None = None) -> "StateDir":
        """The state folder of ``project`` (default: the current directory).

        ``$CONTEXTFLOW_HOME`` overrides the location for every project.
        """
        override = os.environ.get(STATE_DIR_ENV)
        if override:
            return cls(Path(override).expanduser().resolve())
        base = Path(project) if project is not None else Path.cwd()
        return cls(base.expanduser().resolve() / STATE_DIR_NAME)

    def ensure(self) -> "StateDir":
        """Create the folder (and its ``.gitignore``); a folder that cannot be made is a ``UserError``."""
        gitignore = self.root / ".gitignore"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not gitignore.exists():
                # The state folder holds caches and traces that may quote private code: never commit it.
                gitignore.write_text("*\n", encoding="utf-8")
        except OSError as exc:
            full = exc.errno == errno.ENOSPC
            raise UserError(
                f"cannot write the state folder {self.root}: {exc.strerror or exc}",
                hint="free some space, then run again" if full else
                "make it writable, or set CONTEXTFLOW_HOME to a folder you can write",
                exit_code=1,
            ) from exc
        return self

    @property
    def runs_db(self) -> Path:
        return self.root / "runs.db"

    @property
    def traces_db(self) -> Path:
        return self.root / "traces.db"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def routers_dir(self) -> Path:
        return self.root / "routers"

"""The project's state folder (``.contextflow/``) and its layout.

Everything contextflow persists lives under one folder so a project can be cleaned, moved or
ignored as a unit. Layout (format version 1)::

    .contextflow/
      runs.db        run store: runs, node results (checkpoints), approvals      (SQLite, WAL)
      traces.db      trace store: spans and their attributes                     (SQLite, WAL)
      cache/         content-addressed cache of node results
      index/         retrieval index: chroma/ (vectors), bm25/, meta.db
      routers/       trained routers

Every SQLite database records ``PRAGMA user_version = STATE_FORMAT_VERSION``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
        self.root.mkdir(parents=True, exist_ok=True)
        gitignore = self.root / ".gitignore"
        if not gitignore.exists():
            # The state folder holds caches and traces that may quote private code: never commit it.
            gitignore.write_text("*\n", encoding="utf-8")
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

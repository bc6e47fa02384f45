"""One per-user cache of converted model weights, safe under concurrent conversion.

Converting the local model's GGUF file takes seconds of CPU and about half a gigabyte of disk, so
it is done once per user, not once per project: ``$CONTEXTFLOW_MODELS_DIR``, else
``$XDG_CACHE_HOME/contextflow/models``, else ``~/.cache/contextflow/models``.

A converted folder is written under a temporary name beside its final place, with a manifest of
every file's size and SHA-256, and renamed into place in one step. Two processes that convert at
once both finish: the second finds a complete, verified folder already there and drops its own
copy. A folder whose files do not match its manifest (a crash mid-copy on a filesystem without
atomic rename, a disk error, a hand edit) is treated as absent and converted again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

MODELS_DIR_ENV = "CONTEXTFLOW_MODELS_DIR"
MANIFEST = "contextflow-manifest.json"
MANIFEST_FORMAT = 1
_CHUNK = 1 << 20


def user_models_dir() -> Path:
    """Where converted weights live for this user (see the module docstring for the order)."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "contextflow" / "models"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            sha.update(block)
    return sha.hexdigest()


def _write_manifest(folder: Path) -> None:
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _digest(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1),
                                   encoding="utf-8")


def verified(folder: Path) -> bool:
    """True when ``folder`` holds every file its manifest lists, each of the recorded size and hash."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not files:
            return False
        for name, meta in files.items():
            path = folder / name
            if path.stat().st_size != meta["size"] or _digest(path) != meta["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def install(folder: Path, write: Callable[[Path], None]) -> bool:
    """Make ``folder`` a verified copy of what ``write(staging)`` produces.

    Returns True when this call's copy was installed, False when a verified copy was already
    there (this call's work is then discarded). ``write`` fills an empty staging folder.
    """
    if verified(folder):
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.converting-", dir=folder.parent))
    try:
        write(staging)
        _write_manifest(staging)
        if verified(folder):  # another process finished while this one was converting
            return False
        if folder.exists():
            # A broken copy: move it aside first so the rename below is the only step that
            # makes the folder visible.
            aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.broken-", dir=folder.parent))
            try:
                folder.rename(aside / folder.name)
            except OSError:
                pass  # another process moved or replaced it just now
            shutil.rmtree(aside, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:
            if verified(folder):  # lost the race to an equal, complete copy
                return False
            raise
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)

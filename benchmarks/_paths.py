"""Where the benchmarks find what they measure on: nothing here knows a particular machine's layout.

* Shared data (recorded outcomes, benchmark tasks) lives in ``shared/`` beside the repository's
  root folder, that is ``<repo>/../shared``; ``--shared DIR`` or ``$CONTEXTFLOW_BENCH_SHARED``
  points elsewhere.
* Any other folder (bare clones of repositories to extract, folders to work in) is named by a flag
  or its environment variable; a benchmark never guesses one.

Exit codes, the same for every benchmark:

* ``0``: the figures were printed, or the benchmark was skipped because data it measures on is not
  on this machine. A skip prints one line ``skipped: <what is missing and what to pass>``; with
  ``--json`` a last line ``{"skipped": "..."}`` follows, so the last line is always one JSON object.
* ``2``: a folder the benchmark must be told was not given (or a flag is malformed). The message
  names the flag and its environment variable; with ``--json`` stdout's last line is
  ``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import NoReturn

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "CONTEXTFLOW_BENCH_SHARED"


def default_shared_dir() -> Path:
    """``shared/`` beside the repository root (``<repo>/../shared``)."""
    return REPO_ROOT.parent / "shared"


def add_shared_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shared", type=Path, default=None,
                        help=f"The shared data folder (default ${SHARED_ENV}, else {default_shared_dir()}).")


def shared_dir(flag: Path | None = None) -> Path:
    """The shared data folder: ``--shared``, else ``$CONTEXTFLOW_BENCH_SHARED``, else ``<repo>/../shared``."""
    return folder_from(flag, SHARED_ENV) or default_shared_dir()


def folder_from(flag: Path | None, env: str) -> Path | None:
    """The folder given by a flag, else by the environment variable ``env``, else None."""
    if flag is not None:
        return flag.expanduser()
    raw = os.environ.get(env, "").strip()
    return Path(raw).expanduser() if raw else None


def usage_error(parser: argparse.ArgumentParser, message: str, as_json: bool) -> NoReturn:
    """Exit 2 with ``message`` (argparse's usage line first); with --json stdout ends with it as JSON."""
    if as_json:
        print(json.dumps({"error": message}), flush=True)
    parser.error(message)


def require_folder(parser: argparse.ArgumentParser, flag: Path | None, option: str, env: str, what: str,
                   as_json: bool) -> Path:
    """The folder given by ``option`` or ``env``; exit 2 naming both when neither is set."""
    folder = folder_from(flag, env)
    if folder is None:
        usage_error(parser, f"no {what} given: pass {option} DIR or set {env}", as_json)
    return folder


def skip(reason: str, as_json: bool) -> int:
    """Say why the benchmark did not run; the exit code of a skip (0)."""
    print(f"skipped: {reason}", flush=True)
    if as_json:
        print(json.dumps({"skipped": reason}), flush=True)
    return 0


def scratch_dir(prefix: str) -> Path:
    """A fresh private folder under the system's temporary directory, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder

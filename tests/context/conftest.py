"""Reuse the repository builders of tests/retrievers (test folders are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_retrievers_repos", _here.parent / "retrievers" / "conftest.py")
_repos = importlib.util.module_from_spec(_spec)
sys.modules["_retrievers_repos"] = _repos
_spec.loader.exec_module(_repos)
sys.path.insert(0, str(_here.parent / "retrievers"))  # for secret_corpus

make_repo = _repos.make_repo
git = _repos.git
write = _repos.write

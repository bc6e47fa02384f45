"""Reuse the repository builders and the secret corpus of tests/retrievers (test folders are not packages)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "retrievers"))

import pytest  # noqa: E402
from repo_builders import make_payments_repo  # noqa: E402


@pytest.fixture()
def make_repo(tmp_path):
    def make(git_history: bool = True, extra: dict[str, str] | None = None):
        return make_payments_repo(tmp_path / ("repo" if git_history else "plain"), git_history, extra)

    return make

"""Fixtures of the retriever tests (helpers live in repo_builders.py, shared with tests/context)."""

from __future__ import annotations

import pytest
from repo_builders import make_payments_repo


@pytest.fixture()
def make_repo(tmp_path):
    """make_repo(git_history=True, extra=None) -> a small payments repository."""

    def make(git_history: bool = True, extra: dict[str, str] | None = None):
        return make_payments_repo(tmp_path / ("repo" if git_history else "plain"), git_history, extra)

    return make

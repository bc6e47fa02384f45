"""Shared test setup: offline everywhere, state folders in tmp, no network."""

from __future__ import annotations

import os

import pytest

import contextflow  # noqa: F401  (applies offline defaults before anything imports litellm)

os.environ.setdefault("CONTEXTFLOW_TEST", "1")


@pytest.fixture()
def state_home(tmp_path, monkeypatch):
    """A private state folder so tests never touch the developer's .contextflow/."""
    home = tmp_path / ".contextflow"
    monkeypatch.setenv("CONTEXTFLOW_HOME", str(home))
    return home

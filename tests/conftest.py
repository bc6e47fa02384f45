"""Shared test setup: offline everywhere, state folders in tmp, no network."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import hypothesis.configuration  # imported at collection: see below
import pytest

import contextflow  # noqa: F401  (applies offline defaults before anything imports litellm)

os.environ.setdefault("CONTEXTFLOW_TEST", "1")
# hypothesis is imported here, while collection is single-threaded: imported late (its pytest
# plugin does that at the session's end when no test module used it), its modules are compiled
# while threads left by Dask or litellm may compile too, and CPython 3.11.7 then fails with
# "SystemError: AST constructor recursion depth mismatch".

# hypothesis keeps its example database and caches in ./.hypothesis by default, a folder in the
# checkout that two runs of the suite would share; it writes there while collecting, before any
# fixture runs. Each run gets a fresh folder of its own, removed when the run ends.
_HYPOTHESIS_HOME = Path(tempfile.mkdtemp(prefix="contextflow-tests-hypothesis-"))
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
hypothesis.configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)


@pytest.fixture()
def state_home(tmp_path, monkeypatch):
    """A private state folder so tests never touch the developer's .contextflow/."""
    home = tmp_path / ".contextflow"
    monkeypatch.setenv("CONTEXTFLOW_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_hosted_model_keys(monkeypatch):
    """Tests never reach a hosted model, whatever keys the machine running them has set."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "CONTEXTFLOW_MODEL", "CONTEXTFLOW_LADDER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def local_models_dir(tmp_path_factory: pytest.TempPathFactory):
    """This test run's own folder for the local model's converted weights (converted once per run)."""
    return tmp_path_factory.mktemp("local-models")

"""Fixtures for runtime tests: sim models configured per test."""

from __future__ import annotations

import uuid
from typing import Any

import pytest


@pytest.fixture()
def sim_model():
    """A fresh ``sim/<unique>`` model configured with the given options; returns its full name."""
    from contextflow.providers import simulated

    made: list[str] = []

    def make(**options: Any) -> str:
        name = f"t{uuid.uuid4().hex[:8]}"
        simulated.configure(name, **options)
        made.append(name)
        return f"sim/{name}"

    yield make
    for name in made:
        simulated.reset(name)

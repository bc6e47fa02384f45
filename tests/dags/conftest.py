"""Pipeline tests: the fixture module named in python nodes is importable and allowlisted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ALLOW = ("cf_test_functions",)

if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))


@pytest.fixture()
def allow() -> tuple[str, ...]:
    return ALLOW

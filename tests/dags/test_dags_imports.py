"""The import allowlist: API argument, environment variable, registered functions; no imports."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from contextflow.dags.imports import Allowlist, locate, resolve_callable
from contextflow.dags.validate import validate_text
from contextflow.core.errors import UserError

PIPELINE = """name: t
nodes:
  - id: run
    kind: python
    function: {target}
    args: {{text: hi}}
"""


def _codes(target: str, **kwargs: object) -> list[str]:
    report = validate_text(PIPELINE.format(target=target), **kwargs)  # type: ignore[arg-type]
    return [p.code for p in report.problems]


def test_default_allowlist_is_contextflow_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTEXTFLOW_ALLOW_IMPORTS", raising=False)
    assert _codes("cf_test_functions:shout") == ["import-not-allowed"]
    assert Allowlist.build().allows("contextflow.dags.refs:render_template")
    assert not Allowlist.build().allows("contextflowx.evil:run")


def test_api_argument_and_env_var_extend_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _codes("cf_test_functions:shout", allow_imports=["cf_test_functions"]) == []
    monkeypatch.setenv("CONTEXTFLOW_ALLOW_IMPORTS", "somewhere.else, cf_test_functions")
    assert _codes("cf_test_functions:shout") == []


def test_disallowed_modules_are_never_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []
    real = importlib.util.find_spec

    def spy(name: str, *args: object) -> object:
        looked_up.append(name)
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", spy)
    sys.modules.pop("antigravity", None)
    assert _codes("antigravity:fly") == ["import-not-allowed"]
    assert "antigravity" not in looked_up and "antigravity" not in sys.modules


def test_checking_does_not_import_the_module() -> None:
    sys.modules.pop("cf_test_functions", None)
    status, signature = locate("cf_test_functions:count_items")
    assert status == "ok" and signature is not None
    assert [p.name for p in signature.parameters] == ["items"]
    assert signature.returns == {"type": "integer"}
    assert "cf_test_functions" not in sys.modules


def test_resolve_callable_refuses_outside_the_allowlist() -> None:
    with pytest.raises(UserError):
        resolve_callable("os:system", Allowlist.build(env=False))
    assert resolve_callable("cf_test_functions:shout", Allowlist.build(["cf_test_functions"]))("a") == "A "

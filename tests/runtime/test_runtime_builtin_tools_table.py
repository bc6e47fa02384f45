"""The pipeline checks know the built-in tools from core's table; the runtime keeps it true."""

from __future__ import annotations

import pytest

from contextflow.core.builtin_tools import BUILTIN_TOOL_PARAMS, ToolParams
from contextflow.runtime import tools


def test_the_table_describes_the_runtime_tools() -> None:
    assert set(BUILTIN_TOOL_PARAMS) == set(tools.BUILTIN_TOOLS) == set(tools.BUILTIN_SIDE_EFFECTS)
    tools.check_builtin_table()  # what runs when the module is imported


def test_a_stale_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    stale = {**BUILTIN_TOOL_PARAMS, "write_file": ToolParams(("path",))}
    monkeypatch.setattr(tools, "BUILTIN_TOOL_PARAMS", stale)
    with pytest.raises(RuntimeError, match="out of date"):
        tools.check_builtin_table()
    monkeypatch.setattr(tools, "BUILTIN_TOOL_PARAMS", {**BUILTIN_TOOL_PARAMS, "delete_all": ToolParams(())})
    with pytest.raises(RuntimeError, match="out of date"):
        tools.check_builtin_table()

"""The built-in tools a ``tool`` node may name, and the arguments each one takes.

This table lives in core so the pipeline checks know the tools without importing the runtime that
implements them (the checks sit below the runtime). ``contextflow.runtime.tools`` compares its
functions with this table when it is imported and refuses to load if they differ.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolParams:
    """The arguments a tool node passes in ``args:`` (the runtime adds the working tree itself)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


BUILTIN_TOOL_PARAMS: dict[str, ToolParams] = {
    "write_file": ToolParams(("path", "content"), ("create_dirs",)),
    "read_file": ToolParams(("path",)),
    "apply_patch": ToolParams(("patch",), ("check_only",)),
    "run_command": ToolParams(("command",), ("timeout_s", "check", "env")),
}

#: The argument every built-in receives from the runtime, never from ``args:``.
RUNTIME_ARGUMENT = "workdir"

"""Pipelines for the autonomy tests (a helper module; also run as a script by the cross-process test)."""

from __future__ import annotations

from typing import Any


def branching(model: str, workdir_file: str = "out.txt") -> dict[str, Any]:
    """Two independent branches: 'draft' (llm) -> 'save' (write_file tool), and 'other' (llm) -> 'tail'."""
    return {
        "name": "branches",
        "nodes": [
            {"id": "draft", "kind": "llm", "model": model, "prompt": "draft notes"},
            {"id": "save", "kind": "tool", "tool": "write_file",
             "args": {"path": workdir_file, "content": "${draft}"}},
            {"id": "other", "kind": "llm", "model": model, "prompt": "other branch"},
            {"id": "tail", "kind": "llm", "model": model, "prompt": "tail of ${other}"},
        ],
    }

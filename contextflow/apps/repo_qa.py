"""Steps of the repository Q&A app (``dags/repo_qa.yaml``): check an answer's citations.

An answer cites ``path:line`` or ``path:start-end``; a citation counts only when it points inside
an item of the context window the model was given, so a reader can trust every reference.
"""

from __future__ import annotations

import re
from typing import Any

_CITATION = re.compile(r"(?<![\w/.-])([\w./-]+\.[A-Za-z0-9]+):(\d+)(?:-(\d+))?")


def _items(window: Any) -> list[dict[str, Any]]:
    if hasattr(window, "model_dump"):
        window = window.model_dump()
    if isinstance(window, dict):
        return list(window.get("items", []))
    return []


def find_citations(text: str) -> list[dict[str, Any]]:
    found = []
    for match in _CITATION.finditer(text or ""):
        start = int(match.group(2))
        end = int(match.group(3) or start)
        found.append({"path": match.group(1), "start_line": start, "end_line": max(start, end)})
    return found


def check_citations(answer: Any, window: Any) -> dict[str, Any]:
    """Which citations of ``answer`` land inside the window's items, and which do not."""
    text = answer.get("answer", "") if isinstance(answer, dict) else str(answer or "")
    items = _items(window)
    valid, invalid = [], []
    for citation in find_citations(text):
        inside = any(
            item.get("path") == citation["path"]
            and item.get("start_line", 0) <= citation["start_line"]
            and citation["end_line"] <= item.get("end_line", 0)
            for item in items
        )
        (valid if inside else invalid).append(citation)
    return {
        "answer": text,
        "citations": valid,
        "invalid_citations": invalid,
        "ok": bool(valid) and not invalid,
        "sources": sorted({f"{i['path']}:{i['start_line']}-{i['end_line']}" for i in items}),
    }


def citations_valid(value: Any, window: Any = None) -> bool:
    """Verifier: the answer cites at least one place and every citation is in the window."""
    if window is None:
        return bool(find_citations(value.get("answer", "") if isinstance(value, dict) else str(value)))
    return bool(check_citations(value, window)["ok"])


def citations_point_into_context(value: Any, context: Any = None) -> bool:
    """Verifier for ``dags/repo_qa.yaml``: ``context`` binds to the pipeline's retrieve node."""
    return citations_valid(value, context)

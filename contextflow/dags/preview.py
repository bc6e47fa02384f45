"""A short, repr-like preview of any value, whose cost depends on the preview's length only.

Messages quote the value they complain about. ``repr()`` reads the whole value first: a long
string, a list of a million items, or a structure whose parts are shared many times over (YAML
aliases) would take as long to quote as to build. :func:`preview` walks the value one visible
piece at a time and stops as soon as the text is long enough.
"""

from __future__ import annotations

from itertools import islice
from typing import Any


class _Piece(str):
    """Literal text to emit (brackets, separators), as opposed to a value still to be shown."""


_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})"), dict: ("{", "}"),
}


def preview(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to at most ``limit`` characters (ending in ``...`` when cut)."""
    out: list[str] = []
    used = 0
    stack: list[Any] = [value]
    while stack and used <= limit:
        item = stack.pop()
        text = item if isinstance(item, _Piece) else _open(item, stack, limit)
        out.append(text)
        used += len(text)
    text = "".join(out)
    if stack or used > limit:
        return text[: max(limit - 3, 0)] + "..."
    return text


def _open(item: Any, stack: list[Any], limit: int) -> str:
    """The visible start of ``item``; what follows it is pushed onto ``stack`` (last shown first)."""
    if isinstance(item, str):
        return repr(item[: limit + 1]) if len(item) > limit else repr(item)
    if item is None or isinstance(item, (bool, float)):
        return repr(item)
    if isinstance(item, int):
        return repr(item) if item.bit_length() < 256 else f"<int of {item.bit_length()} bits>"
    kind = next((k for k in _BRACKETS if isinstance(item, k)), None)
    if kind is None:
        return f"<{type(item).__name__}>"  # an arbitrary object's repr may be unbounded
    if kind in (set, frozenset) and not item:
        return f"{kind.__name__}()"
    start, end = _BRACKETS[kind]
    # Every shown entry takes at least two characters with its separator: no more can be visible.
    source = item.items() if isinstance(item, dict) else item
    entries = list(islice(iter(source), limit // 2 + 1))
    if len(entries) < len(item):
        end = ", ..." + end
    stack.append(_Piece(end))
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if isinstance(item, dict):
            stack.extend((entry[1], _Piece(": "), entry[0]))
        else:
            stack.append(entry)
        if index:
            stack.append(_Piece(", "))
    if kind is tuple and len(entries) == 1 and len(item) == 1:
        stack.insert(len(stack) - 1, _Piece(","))
    return start

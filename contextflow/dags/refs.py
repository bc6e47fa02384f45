"""Inline references (``${inputs.q}``, ``${node.output.field}``) and template rendering.

One parser serves the validator (which needs each reference and its offset in the text) and the
scheduler (which resolves references against finished results), so both agree on the syntax.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

# ${root.path.to.field}; path segments may be identifiers or list indices.
_REF = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z0-9_]+)*)\s*\}")


@dataclass(frozen=True, slots=True)
class Ref:
    """One ``${...}`` occurrence: ``root`` is ``inputs``, a node id or a map alias."""

    root: str
    path: tuple[str, ...]
    start: int
    end: int

    @property
    def text(self) -> str:
        return "${" + ".".join((self.root, *self.path)) + "}"

    @property
    def field_path(self) -> tuple[str, ...]:
        """The path below ``output`` for node references (``${n.output.a.b}`` -> ``(a, b)``)."""
        if self.path and self.path[0] == "output":
            return self.path[1:]
        return self.path


class RefError(LookupError):
    """A reference that cannot be resolved against the values at hand."""

    def __init__(self, ref: Ref, message: str) -> None:
        self.ref = ref
        super().__init__(f"{ref.text}: {message}")


def find_refs(text: str) -> list[Ref]:
    return [_to_ref(m) for m in _REF.finditer(text)]


def iter_refs(value: Any) -> Iterator[Ref]:
    """Every reference inside a value: strings, and strings nested in lists and dicts."""
    if isinstance(value, str):
        if "${" in value:
            yield from (_to_ref(m) for m in _REF.finditer(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_refs(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_refs(item)


def _to_ref(match: re.Match[str]) -> Ref:
    path = tuple(p for p in match.group(2).split(".") if p)
    return Ref(match.group(1), path, match.start(), match.end())


def lookup(ref: Ref, scope: Mapping[str, Any]) -> Any:
    """The value a reference points at. ``scope`` maps roots (``inputs``, node ids) to values;
    a node's value is reachable both as ``${n}`` and ``${n.output}``."""
    if ref.root not in scope:
        raise RefError(ref, f"'{ref.root}' is not an input, a node or a map variable")
    value = scope[ref.root]
    path = ref.path
    if ref.root != "inputs" and path and path[0] == "output":
        path = path[1:]
    for segment in path:
        value = _step(ref, value, segment)
    return value


def _step(ref: Ref, value: Any, segment: str) -> Any:
    if isinstance(value, Mapping):
        if segment in value:
            return value[segment]
        raise RefError(ref, f"no field '{segment}' (fields: {', '.join(map(str, value)) or 'none'})")
    if isinstance(value, (list, tuple)) and segment.isdigit():
        index = int(segment)
        if index < len(value):
            return value[index]
        raise RefError(ref, f"index {index} is out of range (length {len(value)})")
    attr = getattr(value, segment, _MISSING)
    if attr is not _MISSING:
        return attr
    raise RefError(ref, f"cannot take '{segment}' of a {type(value).__name__}")


_MISSING = object()


def to_text(value: Any) -> str:
    """How a value reads inside a prompt: strings as they are, rich values by their renderer,
    everything else as JSON."""
    if isinstance(value, str):
        return value
    render = getattr(value, "render", None)
    if callable(render):
        return str(render())
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    try:
        return json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):
        return str(value)


def render_template(template: str, scope: Mapping[str, Any]) -> str:
    """Substitute every reference in ``template`` with the text of its value."""
    if "${" not in template:
        return template
    return _REF.sub(lambda m: to_text(lookup(_to_ref(m), scope)), template)


def resolve_value(value: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve references in a node argument. A string that is exactly one reference yields the
    referenced object itself (lists stay lists); other strings are rendered as text."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        match = _REF.fullmatch(value.strip())
        if match:
            return lookup(_to_ref(match), scope)
        return render_template(value, scope)
    if isinstance(value, Mapping):
        return {k: resolve_value(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_value(v, scope) for v in value]
    return value

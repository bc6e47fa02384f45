"""Just enough JSON Schema to check references statically: field lookup and type compatibility.

A schema of ``None`` means "unknown": nothing is claimed about it, so no problem is reported.
Only definite contradictions are problems (a field a closed object does not list, a string where a
list is needed), so the checks never reject a pipeline that could run.
"""

from __future__ import annotations

import typing
from typing import Any

Schema = dict[str, Any]

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")

#: What a ``retrieve`` node yields (contextflow.context.ContextWindow), for field checks.
CONTEXT_WINDOW_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "budget_tokens": {"type": "integer"},
        "used_tokens": {"type": "integer"},
        "model": {"type": ["string", "null"]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    name: {"type": t}
                    for name, t in (
                        ("path", "string"), ("start_line", "integer"), ("end_line", "integer"),
                        ("source", "string"), ("sources", "array"), ("score", "number"),
                        ("tokens", "integer"), ("reason", "string"), ("text", "string"),
                        ("symbol", ["string", "null"]),
                    )
                },
            },
        },
    },
}


class FieldError(LookupError):
    def __init__(self, message: str, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.candidates = candidates or []


def _deref(schema: Schema, root: Schema) -> Schema:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return {}
        schema = target
        seen += 1
    return schema


def _branches(schema: Schema) -> list[Schema] | None:
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return [b for b in schema[key] if isinstance(b, dict) and b.get("type") != "null"]
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        return [schema["allOf"][0]]
    return None


def types_of(schema: Schema | None, root: Schema | None = None) -> set[str] | None:
    """The JSON types a schema admits, or None when it does not say."""
    if not isinstance(schema, dict):
        return None
    schema = _deref(schema, root or schema)
    branches = _branches(schema)
    if branches is not None:
        found: set[str] = set()
        for branch in branches:
            sub = types_of(branch, root or schema)
            if sub is None:
                return None
            found |= sub
        return found or None
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)} or None
    if "properties" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return {_json_type(v) for v in schema["enum"]}
    if "const" in schema:
        return {_json_type(schema["const"])}
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def value_matches(value: Any, json_type: str) -> bool:
    actual = _json_type(value)
    return actual == json_type or (json_type == "number" and actual == "integer")


def compatible(expected: set[str] | None, actual: set[str] | None) -> bool:
    """True unless every type the producer may yield is one the consumer cannot take."""
    if not expected or not actual:
        return True
    widened = set(actual)
    if "integer" in widened:
        widened.add("number")
    return bool(widened & expected) or "null" in expected and "null" in widened


def field_schema(schema: Schema | None, path: tuple[str, ...], root: Schema | None = None) -> Schema | None:
    """The schema of ``path`` below ``schema``; raises :class:`FieldError` on a definite miss."""
    root = root if root is not None else schema
    current = schema
    walked: list[str] = []
    for segment in path:
        if not isinstance(current, dict):
            return None
        current = _deref(current, root or {})
        branches = _branches(current)
        if branches is not None:
            return _first_branch(branches, path[len(walked):], root, walked)
        kinds = types_of(current, root)
        where = "the output" if not walked else "'" + ".".join(walked) + "'"
        if kinds and kinds <= {"array"}:
            if not segment.isdigit():
                raise FieldError(f"{where} is a list; '{segment}' is not an index", [])
            current = current.get("items") if isinstance(current.get("items"), dict) else None
        elif kinds and "object" not in kinds and "array" not in kinds:
            raise FieldError(f"{where} is {_article(kinds)}, which has no field '{segment}'")
        else:
            props = current.get("properties")
            extra = current.get("additionalProperties")
            if isinstance(props, dict) and segment in props:
                current = props[segment]
            elif isinstance(extra, dict):
                current = extra
            elif isinstance(props, dict) and not extra:
                raise FieldError(f"{where} has no field '{segment}'", sorted(map(str, props)))
            else:
                return None
        walked.append(segment)
    return _deref(current, root or {}) if isinstance(current, dict) else None


def _first_branch(branches: list[Schema], rest: tuple[str, ...], root: Schema | None, walked: list[str]) -> Schema | None:
    errors: list[FieldError] = []
    for branch in branches:
        try:
            return field_schema(branch, rest, root)
        except FieldError as exc:
            errors.append(exc)
    if errors and len(errors) == len(branches):
        raise errors[0]
    return None


def _article(kinds: set[str]) -> str:
    names = sorted(kinds)
    text = " or ".join(names)
    return ("an " if names[0][0] in "aeiou" else "a ") + text


def schema_problem(schema: Any) -> tuple[str, tuple[Any, ...]] | None:
    """Why an output_schema cannot be used and where in it, or None when it looks like JSON Schema."""
    if not isinstance(schema, dict):
        return "an output_schema must be a mapping (a JSON Schema object)", ()
    return _check_types(schema, (), depth=0)


def _check_types(schema: dict[str, Any], at: tuple[Any, ...], depth: int) -> tuple[str, tuple[Any, ...]] | None:
    if depth > 64:
        return None
    declared = schema.get("type")
    for t in [declared] if isinstance(declared, str) else declared if isinstance(declared, list) else []:
        if t not in JSON_TYPES:
            return f"'{t}' is not a JSON Schema type (use one of {', '.join(JSON_TYPES)})", (*at, "type")
    props = schema.get("properties")
    if props is not None and not isinstance(props, dict):
        return "'properties' must be a mapping of field name to schema", (*at, "properties")
    for name, sub in (props or {}).items():
        if isinstance(sub, dict) and (found := _check_types(sub, (*at, "properties", name), depth + 1)):
            return found
    items = schema.get("items")
    if isinstance(items, dict):
        return _check_types(items, (*at, "items"), depth + 1)
    return None


def annotation_schema(annotation: Any) -> Schema | None:
    """The JSON Schema of a Python annotation, for checking python node parameters and results."""
    if annotation is None or annotation is typing.Any:
        return None
    if isinstance(annotation, str):
        return _annotation_text_schema(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return annotation_schema(typing.get_args(annotation)[0])
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        return {"type": "array"}
    if origin is dict or annotation is dict:
        return {"type": "object"}
    if origin is typing.Union or str(type(annotation)) == "<class 'types.UnionType'>":
        branches = [annotation_schema(a) for a in typing.get_args(annotation) if a is not type(None)]
        if any(b is None for b in branches):
            return None
        return {"anyOf": branches}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in simple:
        return {"type": simple[annotation]}
    schema_fn = getattr(annotation, "model_json_schema", None)
    if callable(schema_fn):
        try:
            return dict(schema_fn())
        except Exception:  # a model that cannot describe itself claims nothing
            return {"type": "object"}
    return None


_TEXT_TYPES = {
    "str": "string", "int": "integer", "float": "number", "bool": "boolean",
    "list": "array", "tuple": "array", "set": "array", "dict": "object",
    "List": "array", "Tuple": "array", "Sequence": "array", "Dict": "object", "Mapping": "object",
}


def _annotation_text_schema(text: str) -> Schema | None:
    """Annotation source text (read with ``ast``, never imported): the outer type only."""
    text = text.strip().strip("'\"")
    if "|" in text or text.startswith(("Optional", "Union", "Any")):
        return None
    head = text.split("[", 1)[0].split(".")[-1]
    json_type = _TEXT_TYPES.get(head)
    return {"type": json_type} if json_type else None

"""Free-form option mappings (an llm node's ``params``, ``params.sim``) checked against a schema,
with every error placed on its own key and a hint that says what the option takes."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contextflow.dags.check_context import CheckContext
from contextflow.dags.preview import preview
from contextflow.dags.problems import suggestion_hint
from contextflow.dags.yaml_source import PathKey


class LiteLLMParams(BaseModel):
    """The litellm parameters whose type the run depends on; others pass through unchecked."""

    model_config = ConfigDict(extra="allow")

    max_tokens: int | None = Field(None, ge=1, description="Most tokens of the reply.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Most tokens of the reply.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1)
    seed: int | None = None
    timeout: float | None = Field(None, gt=0, description="Seconds.")
    stop: str | list[str] | None = None
    response_format: dict[str, Any] | None = None


def report_options(ctx: CheckContext, where: str, path: PathKey, schema: type[BaseModel],
                   value: dict[str, Any]) -> None:
    """Every error of ``schema`` on ``value``, each at its own key's position (one per key).

    ``where`` names the mapping in messages, e.g. ``node 'draft' params.sim``.
    """
    try:
        schema.model_validate(value)
    except ValidationError as exc:
        seen: set[PathKey] = set()
        for err in exc.errors():
            at_key = err["loc"][-1:] == ("[key]",)  # a mapping key of the wrong kind
            loc = _data_loc(value, tuple(err["loc"]))
            if not loc or loc in seen:  # a union reports once per member
                continue
            seen.add(loc)
            name = f"{where}." + ".".join(map(str, loc))
            kind = err["type"]
            message = f"{err['msg'][0].lower()}{err['msg'][1:]}"
            if kind == "extra_forbidden":
                known = list(schema.model_fields)
                ctx.add("unknown-key", f"{name} is not an option", (*path, *loc), key=True,
                        hint=suggestion_hint(str(loc[-1]), known) or "known options: " + ", ".join(known))
                continue
            code = "wrong-type" if kind.endswith(("_type", "_parsing")) else "invalid-value"
            ctx.add(code, f"{name}: {message} (got {preview(err.get('input'))})", (*path, *loc),
                    key=at_key, hint=_field_hint(schema, loc))


def _data_loc(value: Any, loc: tuple[Any, ...]) -> PathKey:
    """pydantic's error location minus the parts that are not keys of the data (union members,
    ``[key]``), so the problem sits on the key or item that is wrong."""
    path: list[Any] = []
    here = value
    for part in loc:
        if isinstance(here, dict) and part in here or isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _field_hint(schema: type[BaseModel], loc: PathKey) -> str:
    info = schema.model_fields.get(str(loc[0]))
    if info is None:
        return "remove it"
    words = type_words(info.annotation) + _bound_words(*info.metadata)
    described = f" ({info.description.rstrip('.')})" if info.description else ""
    return f"'{loc[0]}' takes {words}{described}"


_WORDS: dict[Any, str] = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
                          type(None): "null", Any: "any value"}


def type_words(tp: Any) -> str:
    """A type annotation in words: ``dict[str, float]`` -> 'a mapping of text to a number'."""
    if tp in _WORDS:
        return _WORDS[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return type_words(args[0]) + _bound_words(*args[1:])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_words(a) for a in args)
    if origin is list:
        return f"a list of {type_words(args[0])}" if args else "a list"
    if origin is dict:
        return f"a mapping of {type_words(args[0])} to {type_words(args[1])}" if args else "a mapping"
    return getattr(tp, "__name__", str(tp))


def _bound_words(*metadata: Any) -> str:
    """' (>= 0, <= 1)' for pydantic's bound markers (``Ge``, ``Le``, a ``FieldInfo``); '' for none."""
    bounds: list[str] = []
    for meta in metadata:
        bounds += [f"{word} {getattr(meta, attr)}" for attr, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                   if getattr(meta, attr, None) is not None]
        inner = _bound_words(*getattr(meta, "metadata", ()))  # a FieldInfo inside Annotated
        if inner:
            bounds.append(inner[2:-1])
    return f" ({', '.join(bounds)})" if bounds else ""

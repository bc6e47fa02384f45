"""Structured outputs: ask for JSON matching a schema, parse it, validate it, explain failures.

Models wrap JSON in prose or code fences, so parsing looks for the first complete JSON value in
the reply. Validation uses the ``jsonschema`` package (Draft 2020-12). The error message names
the path of the first few problems, which is what the repair attempt shows the model.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from contextflow.core.errors import ContextflowError


class OutputValidationError(ContextflowError):
    """A model's reply is not JSON or does not match the node's ``output_schema``."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        self.raw = raw
        super().__init__(message)


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Reply with only a JSON value (no prose, no code fences) that matches this JSON Schema:\n"
        + json.dumps(schema, ensure_ascii=False)
    )


def response_format_for(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name[:64], "schema": schema, "strict": False}}


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """A model may write a JSON escape of half a surrogate pair (``"\\udff9"``), which JSON
    decoders accept; such a string cannot be written as UTF-8 anywhere (store, trace, file,
    terminal). Each one becomes U+FFFD, as a decoder does with a broken byte sequence. (Decoders
    join valid pairs into one character, so any surrogate left is a lone one.)"""
    if isinstance(value, str):
        return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value


def extract_json(text: str) -> Any:
    """The first JSON value in ``text``; raises OutputValidationError when there is none."""
    return without_lone_surrogates(_first_json(text))


def _first_json(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for index, char in enumerate(stripped):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(stripped, index)
                return value
            except ValueError:
                continue
    preview = stripped[:200] + ("..." if len(stripped) > 200 else "")
    raise OutputValidationError(f"the reply is not valid JSON: {preview!r}", raw=text)


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    import jsonschema

    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def validate(value: Any, schema: dict[str, Any]) -> None:
    """Raise OutputValidationError listing where ``value`` breaks ``schema``."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = []
    for error in errors[:5]:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        lines.append(f"at {where}: {error.message}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    raise OutputValidationError("the reply does not match the output schema: " + "; ".join(lines) + more)


def parse_structured(text: str, schema: dict[str, Any]) -> Any:
    value = extract_json(text)
    validate(value, schema)
    return value


def repair_messages(messages: list[dict[str, Any]], reply: str, error: str) -> list[dict[str, Any]]:
    """The conversation for the one repair attempt: the bad reply and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {
            "role": "user",
            "content": f"That reply could not be used: {error}\n"
            "Reply again with only the corrected JSON value.",
        },
    ]

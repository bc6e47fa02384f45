"""JSON-schema-constrained decoding for local transformers models.

A 135M-parameter model rarely writes valid JSON on its own; constraining each generated token to
those that keep the output a valid prefix of the schema makes structured nodes usable offline.
lm-format-enforcer supplies the character-level JSON-schema parser; its bundled transformers
integration imports modules that transformers 5 removed, so the token-level glue lives here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

_TokenFilter = Callable[[int, Any], list[int]]


def _vocabulary(tokenizer: Any) -> list[tuple[int, str, bool]]:
    """(token id, text, starts a word) for every regular token, as the enforcer expects."""
    special = set(tokenizer.all_special_ids)
    anchor = tokenizer.encode("0", add_special_tokens=False)[-1]
    vocab: list[tuple[int, str, bool]] = []
    for token_id in range(len(tokenizer)):
        if token_id in special:
            continue
        # Decoding after an anchor token shows the leading space a word-start token carries.
        with_anchor = tokenizer.decode([anchor, token_id])[1:]
        alone = tokenizer.decode([token_id])
        vocab.append((token_id, with_anchor, len(with_anchor) > len(alone)))
    return vocab


@lru_cache(maxsize=4)
def _tokenizer_data(tokenizer: Any) -> Any:
    from lmformatenforcer.tokenenforcer import TokenEnforcerTokenizerData

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens).rstrip("\ufffd")

    return TokenEnforcerTokenizerData(
        _vocabulary(tokenizer), decode, tokenizer.eos_token_id, False, len(tokenizer)
    )


def fit_schema_to_budget(schema: dict[str, Any], max_new_tokens: int) -> dict[str, Any]:
    """A copy of ``schema`` whose strings are short enough to close within ``max_new_tokens``.

    The enforcer only keeps output a valid *prefix*: a small model that rambles inside a string
    runs out of tokens before the closing quote and the JSON is lost. A string of N characters
    never needs more than N tokens, so capping every string by its share of the budget means the
    document can always be finished.
    """
    strings = _count_strings(schema)
    if strings == 0:
        return schema
    share = max(16, (max_new_tokens - 12 * strings) // strings)
    return _cap_strings(schema, share)


def _count_strings(node: Any) -> int:
    if not isinstance(node, dict):
        return 0
    if node.get("type") == "string" and "enum" not in node:
        return 1
    count = sum(_count_strings(child) for child in (node.get("properties") or {}).values())
    items = node.get("items")
    if isinstance(items, dict):
        count += _count_strings(items) * int(node.get("maxItems") or 3)
    return count


def _cap_strings(node: Any, cap: int) -> Any:
    if not isinstance(node, dict):
        return node
    copy = dict(node)
    if copy.get("type") == "string" and "enum" not in copy:
        copy["maxLength"] = min(int(copy.get("maxLength") or cap), cap)
    if isinstance(copy.get("properties"), dict):
        copy["properties"] = {k: _cap_strings(v, cap) for k, v in copy["properties"].items()}
    if isinstance(copy.get("items"), dict):
        copy["items"] = _cap_strings(copy["items"], cap)
    return copy


def json_schema_token_filter(
    tokenizer: Any, schema: dict[str, Any], max_new_tokens: int | None = None
) -> _TokenFilter:
    """A ``prefix_allowed_tokens_fn`` for ``model.generate`` that admits only schema-valid JSON
    (fitted to ``max_new_tokens`` when given, so the document can always be closed)."""
    from lmformatenforcer import JsonSchemaParser
    from lmformatenforcer.tokenenforcer import TokenEnforcer

    if max_new_tokens is not None:
        schema = fit_schema_to_budget(schema, max_new_tokens)
    enforcer = TokenEnforcer(_tokenizer_data(tokenizer), JsonSchemaParser(schema))

    def allowed(batch_id: int, sequence: Any) -> list[int]:
        # The enforcer takes the first sequence it sees as the prompt and constrains what follows.
        return enforcer.get_allowed_tokens(sequence.tolist()).allowed_tokens

    return allowed

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


def json_schema_token_filter(tokenizer: Any, schema: dict[str, Any]) -> _TokenFilter:
    """A ``prefix_allowed_tokens_fn`` for ``model.generate`` that admits only schema-valid JSON."""
    from lmformatenforcer import JsonSchemaParser
    from lmformatenforcer.tokenenforcer import TokenEnforcer

    enforcer = TokenEnforcer(_tokenizer_data(tokenizer), JsonSchemaParser(schema))

    def allowed(batch_id: int, sequence: Any) -> list[int]:
        # The enforcer takes the first sequence it sees as the prompt and constrains what follows.
        return enforcer.get_allowed_tokens(sequence.tolist()).allowed_tokens

    return allowed

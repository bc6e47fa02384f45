"""Redaction against the formats of two public rule sets and the shapes that once got through.

The cases are our own synthetic tokens in each rule's documented shape (secret_corpus.py). Where
detect-secrets is installed (the ``test`` extra), it serves as an oracle: each of its plugins must
flag our example for that plugin, so the example is a true instance, and nothing it would flag
may survive redaction.
"""

from __future__ import annotations

import pytest
from secret_corpus import (
    DETECT_SECRETS_CASES,
    DOCUMENTS,
    GITLEAKS_CASES,
    HOSTILE_CASES,
    Case,
)

from contextflow.retrievers.repo_text import read_text
from contextflow.retrievers.secrets import find_secrets, is_secret_file, redact


def _hidden(case: Case) -> bool:
    if case.path:
        return is_secret_file(case.path)
    return case.secret not in redact(case.text)


def test_the_corpus_names_every_rule_of_both_sets():
    assert len(GITLEAKS_CASES) == 222
    assert len(DETECT_SECRETS_CASES) == 27
    assert all(c.secret in c.text for c in [*GITLEAKS_CASES.values(), *DETECT_SECRETS_CASES.values()] if not c.path)


@pytest.mark.parametrize("rule", sorted(GITLEAKS_CASES))
def test_gitleaks_format_is_redacted(rule):
    assert _hidden(GITLEAKS_CASES[rule])


@pytest.mark.parametrize("rule", sorted(r for r, c in DETECT_SECRETS_CASES.items() if c.is_secret))
def test_detect_secrets_format_is_redacted(rule):
    assert _hidden(DETECT_SECRETS_CASES[rule])


@pytest.mark.parametrize("rule", sorted(HOSTILE_CASES))
def test_shapes_that_once_leaked_are_redacted(rule):
    case = HOSTILE_CASES[rule]
    out = redact(case.text)
    assert case.secret not in out and "[REDACTED:" in out
    assert out.count("\n") == case.text.count("\n")


def test_a_public_address_is_kept_on_purpose():
    case = DETECT_SECRETS_CASES["IPPublicDetector"]
    assert not case.is_secret and redact(case.text) == case.text


def test_a_keystore_file_is_never_read(tmp_path):
    path = GITLEAKS_CASES["pkcs12-file"].path
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text("marker_p12_contents\n")
    assert read_text(tmp_path, path) is None


@pytest.fixture()
def detect_secrets_scan(tmp_path):
    """scan(text) -> {(secret type, value)} as ``detect-secrets scan`` reports them, defaults on."""
    pytest.importorskip("detect_secrets")
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    def scan(text: str) -> set[tuple[str, str]]:
        path = tmp_path / "snippet.py"
        path.write_text(text, encoding="utf-8")
        with default_settings():
            found = SecretsCollection()
            found.scan_file(str(path))
        return {(secret.type, secret.secret_value or "") for _, secret in found}

    return scan


@pytest.mark.parametrize("plugin", sorted(r for r, c in DETECT_SECRETS_CASES.items() if c.is_secret))
def test_detect_secrets_flags_our_example_with_its_plugin(plugin, detect_secrets_scan):
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    secret_type = {cls.__name__: kind for kind, cls in get_mapping_from_secret_type_to_class().items()}[plugin]
    assert secret_type in {kind for kind, _ in detect_secrets_scan(DETECT_SECRETS_CASES[plugin].text)}


def test_our_plugin_list_is_detect_secrets_own():
    pytest.importorskip("detect_secrets")
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    assert {cls.__name__ for cls in get_mapping_from_secret_type_to_class().values()} == set(DETECT_SECRETS_CASES)


def test_nothing_detect_secrets_flags_survives_redaction(detect_secrets_scan):
    texts = [*DOCUMENTS.values(), *(c.text for c in GITLEAKS_CASES.values()),
             *(c.text for c in DETECT_SECRETS_CASES.values() if c.is_secret), *(c.text for c in HOSTILE_CASES.values())]
    before = sum(len(detect_secrets_scan(text)) for text in texts)
    after = [(found, text[:60]) for text in texts if (found := detect_secrets_scan(redact(text)))]
    assert before > len(DETECT_SECRETS_CASES)  # the oracle does see the secrets before redaction
    assert after == []


@pytest.mark.parametrize(
    "code",
    [
        'DEFAULT_TOKENIZER_MODEL = "gpt-4o"',
        'TOKEN_URL = "https://auth.example.invalid/oauth/token"',
        'SECRET_NAME = "prod-db-credentials"',
        "commit 3f0ce0e1c2b4a5d6e7f8091a2b3c4d5e6f708192",
        'request_id = "123e4567-e89b-12d3-a456-426614174000"',
        '"integrity": "sha512-Q2hlY2tzdW1zIG9mIHB1Ymxpc2hlZCBwYWNrYWdlcyBhcmUgcHVibGljIGRhdGEgYW5kIG5vdCBzZWNyZXRz+/w=="',
        'ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"',
        "key = self.cache_key(name)",
        'api_version = "2024-06-01"',
        'auth_header_name = "X-Request-Signature"',
        "machine learning models need a password reset flow",
        'access_mode = "read_write_execute"',
        "def get_api_key(self) -> str:",
        'login_url = "/accounts/login/"',
    ],
)
def test_ordinary_text_is_left_alone(code):
    assert find_secrets(code) == []

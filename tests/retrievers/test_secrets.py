"""The secret filter: every planted credential is redacted; ordinary code is left alone."""

from __future__ import annotations

import pytest

from contextflow.retrievers.secrets import find_secrets, is_secret_file, redact

from secret_corpus import DOCUMENTS, PLANTED, SECRET_FILES


def test_every_planted_secret_is_redacted():
    redacted = {path: redact(text) for path, text in DOCUMENTS.items()}
    joined = "\n".join(redacted.values())
    leaked = [label for label, value in PLANTED.items() if value in joined]
    assert leaked == []
    assert "[REDACTED:" in joined


@pytest.mark.parametrize("path,text", sorted(DOCUMENTS.items()))
def test_redaction_keeps_line_count(path, text):
    assert redact(text).count("\n") == text.count("\n")


def test_labels_name_the_kind():
    out = redact(f"token = '{PLANTED['github_pat']}'\nkey = {PLANTED['aws_id']}")
    assert "[REDACTED:github-token]" in out
    assert "[REDACTED:aws-access-key-id]" in out


def test_unterminated_private_key_is_hidden_to_the_end():
    text = "x = 1\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabcdefghijklmnop\nqrstuvwxyz0123"
    out = redact(text)
    assert "MIIE" not in out and "qrstuv" not in out and out.startswith("x = 1\n")


@pytest.mark.parametrize(
    "code",
    [
        "max_tokens = 4096",
        "token = self.token",
        "password = getpass.getpass('Password: ')",
        "tokens = tokenizer.encode(text)",
        "secret_name = os.environ['SECRET_NAME']",
        'password = "${DB_PASSWORD}"',
        'api_key = "<your-api-key>"',
        "def check_password(password: str) -> bool:",
        'raise ValueError("token expired, ask for a new one")',
        "num_tokens: int = 0",
        "sk-learn is a typo of sklearn",
        "See https://example.com/docs/auth for tokens.",
    ],
)
def test_ordinary_code_is_not_redacted(code):
    assert find_secrets(code) == []
    assert redact(code) == code


def test_url_keeps_user_and_host():
    out = redact("postgres://admin:s3cr3tPassw0rd@db:5432/app")
    assert out == "postgres://admin:[REDACTED:url-password]@db:5432/app"


@pytest.mark.parametrize("path", sorted(SECRET_FILES) + [
    ".env.local", ".envrc", "deploy/prod.key", "a/b/client_secret_123.json", "id_ed25519.pub", ".pypirc",
    ".netrc", "release.keystore", "infra/terraform.tfstate", "home/.ssh/config", "gcp-service-account.json",
    ".git-credentials", "store.p12",
])
def test_secret_files_are_recognised(path):
    assert is_secret_file(path)


@pytest.mark.parametrize("path", [
    "src/secrets.py", "environment.py", "docs/keys.md", "tests/test_env.py", "keyboard.js", "README.md",
    "src/token_utils.go", "pem_reader.rs", ".envoy/config.yaml",
])
def test_ordinary_files_are_not_secret(path):
    assert not is_secret_file(path)

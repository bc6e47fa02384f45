"""Keep secrets out of context windows: skip secret-bearing files, redact key-shaped text.

Two layers, because either alone leaks: files whose whole purpose is to hold credentials
(``.env``, private keys, credential stores) are never read, and every other text that reaches a
window passes through :func:`redact`, which replaces tokens in known formats (cloud keys, vendor
API tokens, JWTs, private-key blocks, bearer headers, credentials in URLs) and high-entropy values
assigned to password/secret/token-like names.

The replacement keeps the shape of the text (``[REDACTED:github-token]``) so a model still sees
that a value was there, which matters for code review.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import PurePath

__all__ = ["SECRET_PATTERNS", "is_secret_file", "redact", "find_secrets", "shannon_entropy"]

# ---------------------------------------------------------------------------------------------
# Files that hold secrets by convention

_SECRET_NAMES = frozenset(
    {
        ".netrc", "_netrc", ".npmrc", ".pypirc", ".pgpass", ".git-credentials", ".htpasswd",
        ".dockercfg", ".s3cfg", ".boto", ".my.cnf", ".yarnrc.yml", "credentials", "credentials.json",
        "credentials.yml", "credentials.yaml", "credentials.toml", ".credentials", "secrets.json",
        "secrets.yml", "secrets.yaml", "secrets.toml", "application_default_credentials.json",
        "terraform.tfvars", "keyring.cfg", "master.key", "known_hosts", "authorized_keys",
    }
)
_SECRET_SUFFIXES = (
    ".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".bks", ".kdbx", ".ppk", ".gpg", ".pgp",
    ".tfstate", ".tfstate.backup", ".tfvars", ".ovpn", ".p8", ".der", ".asc", ".sqlite-credentials",
)
_SECRET_NAME_PATTERNS = (
    re.compile(r"^\.env(\..*)?$|^\.envrc$", re.I),  # .env, .env.local, .env.production, .envrc
    re.compile(r"^id_(rsa|dsa|ecdsa|ed25519)(\..*)?$"),  # ssh keys (and their .pub twins)
    re.compile(r"^client_secret.*\.json$", re.I),
    re.compile(r".*service[-_]?account.*\.json$", re.I),
    re.compile(r".*\.(pem|key)\.(bak|old|orig)$", re.I),
)
# (parent folder, file name) pairs whose meaning depends on where they sit.
_SECRET_DIR_FILES = {(".aws", "config"), (".kube", "config"), (".docker", "config.json"), (".gnupg", None),
                     (".ssh", None)}


def is_secret_file(path: str | PurePath) -> bool:
    """True for files that exist to hold credentials; such files are never indexed or shown."""
    parts = str(path).replace("\\", "/").strip("/").split("/")
    name = parts[-1]
    if not name:
        return False
    lower = name.lower()
    if lower in _SECRET_NAMES or lower.endswith(_SECRET_SUFFIXES):
        return True
    if any(p.match(name) for p in _SECRET_NAME_PATTERNS):
        return True
    for folder in parts[:-1]:
        for secret_dir, secret_name in _SECRET_DIR_FILES:
            if folder == secret_dir and (secret_name is None or secret_name == name):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Token formats

#: (kind, pattern). Order matters: multi-line blocks first, then specific vendor formats, then
#: generic shapes, so the most precise label wins. A group named ``v`` marks the part to hide.
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # A PEM private key, also inside a JSON string with literal "\n"; an unterminated block is
    # redacted to the end of the text rather than left half-visible.
    ("private-key", re.compile(
        r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
    )),
    ("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}\b")),
    ("aws-secret-access-key", re.compile(
        r"(?i)aws_secret_access_key[\"']?\s*[:=]\s*[\"']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
    )),
    ("gcp-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    ("gcp-oauth-secret", re.compile(r"\bGOCSPX-[A-Za-z0-9_\-]{28}(?![A-Za-z0-9_\-])")),
    ("gcp-oauth-token", re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}")),
    ("azure-storage-key", re.compile(r"(?i)(?<=AccountKey=)[A-Za-z0-9+/]{80,90}={0,2}")),
    ("azure-sas-signature", re.compile(r"(?i)(?<=[?&]sig=)[A-Za-z0-9%+/=]{30,}")),
    ("azure-client-secret", re.compile(r"\b[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}(?![A-Za-z0-9_~.\-])")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("gitlab-token", re.compile(
        r"\bgl(?:pat|dt|rt|ptt|cbt|imt|oas|ft|soat|agent|ffct)-[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])"
    )),
    ("slack-token", re.compile(r"\bxox[abposr]-(?:\d+-)?[A-Za-z0-9\-]{10,}")),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}")),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("anthropic-key", re.compile(r"\bsk-ant-[A-Za-z0-9]{2,8}-[A-Za-z0-9_\-]{20,}")),
    ("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])")),
    ("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("pypi-token", re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{40,}")),
    ("sendgrid-key", re.compile(r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b")),
    ("twilio-key", re.compile(r"\bSK[0-9a-f]{32}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
    ("bearer-token", re.compile(r"(?i)(?<=\bbearer\s)\s*[A-Za-z0-9\-._~+/]{16,}=*")),
    ("basic-auth", re.compile(r"(?i)(?<=authorization:\sbasic\s)[A-Za-z0-9+/]{12,}=*")),
    # user:password@host in a URL: only the password goes.
    ("url-password", re.compile(r"(?<=://)(?:[^\s:/@'\"]+):(?P<v>[^\s@/'\"]{3,})(?=@[^\s/'\"]+)")),
)

_KEY_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key"
    r"|client[_\-]?secret|auth[_\-]?key|credentials?|session[_\-]?key|signing[_\-]?key|encryption[_\-]?key"
    r"|connection[_\-]?string|dsn"
)
# NAME = value, NAME: value, "NAME": "value", NAME := value, export NAME=value, NAME => value.
_ASSIGNMENT = re.compile(
    r"(?ix)(?P<key>[\"']?[\w.\-]*(?:" + _KEY_WORDS + r")[\w.\-]*[\"']?)"
    r"(?P<sep>\s*(?::=|=>|==|=|:)\s*)"
    r"(?:(?P<q>[\"'`])(?P<quoted>[^\"'`\n]{6,}?)(?P=q)"
    r"|(?P<bare>[^\s\"'`,;(){}\[\]<>#]{8,})(?=[\s,;'\"}\]#]|$))"
)
_PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_.\-]*$")  # self.token, get_password, os.environ
_PLACEHOLDER = re.compile(
    r"^(?:\$\{?[\w.]+\}?|<[^>]*>|\{\{.*\}\}|%\(?\w+\)?s?|x{6,}|\*{6,}|\.{3,}|changeme|your[_\-].*|example.*|dummy.*"
    r"|placeholder.*|none|null|true|false|redacted.*|\[REDACTED[^\]]*\])$",
    re.I,
)


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s character distribution."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def _looks_secret(value: str, quoted: bool) -> bool:
    if _PLACEHOLDER.match(value) or value.startswith("[REDACTED"):
        return False
    if " " in value.strip() and quoted:
        # Prose ("Enter your password") is not a credential; a passphrase with spaces is rare in code.
        return shannon_entropy(value) >= 4.2 and len(value) >= 24
    if not quoted and _PLAIN_IDENTIFIER.match(value):
        return False  # a variable or attribute, not a literal
    if value.isdigit() and len(value) < 12:
        return False  # max_tokens = 4096
    return shannon_entropy(value) >= (2.5 if quoted else 3.0)


def _assignment_spans(text: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for match in _ASSIGNMENT.finditer(text):
        group = "quoted" if match.group("quoted") is not None else "bare"
        value = match.group(group)
        if value and _looks_secret(value, quoted=group == "quoted"):
            key = match.group("key").strip("\"'").lower()
            kind = "password" if "pass" in key or "pwd" in key else "secret"
            spans.append((match.start(group), match.end(group), kind))
    return spans


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, kind)`` of secrets in ``text``, merged where they overlap."""
    spans: list[tuple[int, int, str]] = []
    for kind, pattern in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            if "v" in pattern.groupindex:  # only the value, not the name around it
                spans.append((match.start("v"), match.end("v"), kind))
            else:
                spans.append((match.start(), match.end(), kind))
    spans.extend(_assignment_spans(text))
    spans.sort(key=lambda s: (s[0], -s[1]))
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, kind))
    return merged


def redact(text: str, *, replacement: Callable[[str], str] | None = None) -> str:
    """``text`` with every secret replaced by ``[REDACTED:<kind>]`` (line structure kept)."""
    if not text:
        return text
    spans = find_secrets(text)
    if not spans:
        return text
    label = replacement or (lambda kind: f"[REDACTED:{kind}]")
    out: list[str] = []
    cursor = 0
    for start, end, kind in spans:
        out.append(text[cursor:start])
        hidden = text[start:end]
        # Keep the number of lines so spans (path:start-end) computed before redaction stay true.
        out.append(label(kind) + "\n" * hidden.count("\n"))
        cursor = end
    out.append(text[cursor:])
    return "".join(out)

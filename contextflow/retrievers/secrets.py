"""Keep secrets out of context windows: recognise secret-bearing files, redact key-shaped text.

Two layers, because either alone leaks: files whose whole purpose is to hold credentials
(``.env``, private keys, credential stores) are never read, and every other text passes through
:func:`redact`, which replaces tokens in known formats (``secret_formats``: cloud keys, vendor API
tokens, JWTs, private-key blocks, credentials in URLs and headers) and values that their
surroundings give away (``secret_context``: random values under credential or vendor names, an
AWS secret key beside its id, netrc passwords, Kubernetes Secret data, long base64 blobs).

Repository text reaches these functions through one boundary, ``repo_text`` (file reads and the
git runner); :func:`redact_text` serves text from elsewhere, such as tool output.

The replacement keeps the shape of the text (``[REDACTED:github-token]``) so a model still sees
that a value was there, which matters for code review.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath

from contextflow.retrievers.secret_context import CONTEXT_FINDERS, shannon_entropy
from contextflow.retrievers.secret_formats import KEYWORDS, TOKEN_PATTERNS

__all__ = ["SECRET_PATTERNS", "is_secret_file", "redact", "redact_text", "find_secrets", "shannon_entropy"]

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
# Redaction

#: The shape table (vendor prefixes, fixed layouts); contextual finders live in ``secret_context``.
SECRET_PATTERNS = TOKEN_PATTERNS


def find_secrets(text: str) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, kind)`` of secrets in ``text``, merged where they overlap."""
    spans: list[tuple[int, int, str]] = []
    lower = text.lower()
    for kind, pattern in TOKEN_PATTERNS:
        keywords = KEYWORDS.get(kind)
        if keywords and not any(word in lower for word in keywords):
            continue
        for match in pattern.finditer(text):
            if "v" in pattern.groupindex:  # only the value, not the name around it
                spans.append((match.start("v"), match.end("v"), kind))
            else:
                spans.append((match.start(), match.end(), kind))
    for finder in CONTEXT_FINDERS:
        spans.extend(finder(text))
    spans = [s for s in spans if s[1] > s[0]]
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


def redact_text(text: str) -> str:
    """Untrusted text from outside the repository's files (tool output, command output, messages)
    with its secrets hidden; the function a tool node calls before a result is stored or shown.

    Field separators that machine-readable output uses (NUL, the ASCII record and unit
    separators) are kept and each field is redacted on its own, so no pattern spans two fields."""
    if not text:
        return text
    if not _SEPARATORS.search(text):
        return redact(text)
    pieces = _SEPARATORS.split(text)
    return "".join(piece if index % 2 else redact(piece) for index, piece in enumerate(pieces))


_SEPARATORS = re.compile(r"([\x00\x1e\x1f])")

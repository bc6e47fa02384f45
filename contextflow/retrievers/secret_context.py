"""Secrets that only their surroundings give away: a key name, a nearby AWS key id, a YAML kind.

Each finder takes the whole text and returns ``(start, end, kind)`` spans of values to hide.
They complement the shape table in ``secret_formats``: a 40-character AWS secret key or a
vendor's 32-character hex key has no prefix, so a name (``stripe_key = ...``) or a neighbour
(an ``AKIA...`` id on the line) has to tell.

Thresholds are set so ordinary code survives: a value must look random (mixed character classes,
high entropy), not like an identifier, a path or prose.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from itertools import pairwise

Span = tuple[int, int, str]

_STRONG_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key"
    r"|client[_\-]?secret|auth[_\-]?key|credentials?|session[_\-]?key|signing[_\-]?key|encryption[_\-]?key"
    r"|connection[_\-]?string|dsn"
)
# Words that name a credential only sometimes (``key = "name"``) and vendors whose keys have no
# prefix of their own: a value under them must also look random.
_WEAK_WORDS = (
    r"key|auth|access|creds|api|login|license|adafruit|adobe|airtable|algolia|alibaba|asana|atlassian|confluence"
    r"|jira|beamer|bitbucket|bittrex|meraki|cloudflare|codecov|cohere|coinbase|confluent|contentful|datadog"
    r"|discord|droneci|dropbox|etsy|facebook|fastly|finicity|finnhub|flickr|freshbooks|gitter|gocardless|heroku"
    r"|hubspot|intercom|jfrog|artifactory|bintray|xray|kraken|kucoin|launchdarkly|linear|linked[_\-]?in|looker"
    r"|mailchimp|mailgun|mapbox|mattermost|message[_\-]?bird|netlify|new[_\-]?relic|nytimes|okta|plaid"
    r"|private[_\-]?ai|rapidapi|sendbird|sentry|snyk|sonar|sourcegraph|squarespace|sumo|telegr|travis|twitch"
    r"|twitter|yandex|zendesk|cloudant|softlayer|ibm|contribsys|webhook"
)
_SEP = r"(?P<sep>[ \t]*(?::=|=>|\?=|==|=|:)[ \t]*)"
_VALUE = (
    r"(?:(?P<q>[\"'`])(?P<quoted>[^\"'`\n]{6,}?)(?P=q)"
    r"|(?P<bare>[^\s\"'`,;(){}\[\]<>#]{8,})(?=[\s,;'\"}\]#]|$))"
)
# One pass finds every ``name <sep> value``; the name is then checked against the word lists. A
# name starts only where a word does and is taken whole (possessive), so the scan stays linear.
_ASSIGNMENT = re.compile(r"(?x)(?<![\w.\-\"'])(?P<key>[\"']?[\w.\-]++[\"']?)" + _SEP + _VALUE)
_STRONG_KEY = re.compile(r"(?i)" + _STRONG_WORDS)
_WEAK_KEY = re.compile(r"(?i)" + _WEAK_WORDS)
# Names that describe a credential rather than hold one (TOKEN_URL, SECRET_NAME, tokenizer).
_DESCRIPTIVE_KEY = re.compile(
    r"(?i)(?:tokeni[sz]|tokens\b|passthrough|_(?:model|name|names|url|uri|path|file|dir|type|kind|len|length|count"
    r"|limit|size|env|var|field|header|prefix|suffix|format|pattern|regex|id_field)[\"']?$)"
)
_PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z_.\-]*$")  # self.token, get_password, os.environ
_PLACEHOLDER = re.compile(
    r"^(?:\$\{?[\w.]+\}?|<[^>]*>|\{\{.*\}\}|%\(?\w+\)?s?|x{6,}|\*{6,}|\.{3,}|changeme|your[_\-].*|example.*|dummy.*"
    r"|placeholder.*|none|null|true|false|redacted.*|\[REDACTED[^\]]*\])$",
    re.IGNORECASE,
)
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-=.+/~%]+$")
_HEXISH = re.compile(r"^[0-9a-fA-F\-]+$")
_ALPHABET_RUNS = ("ABCDEFGH", "abcdefgh", "0123456")  # an alphabet table, not a secret


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s character distribution."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(c / total * math.log2(c / total) for c in counts.values())


def _looks_secret(value: str, quoted: bool) -> bool:
    """A value under a strong key word (password, token, secret...) that is a literal, not code."""
    if _PLACEHOLDER.match(value):
        return False
    if " " in value.strip() and quoted:
        # Prose ("Enter your password") is not a credential; a passphrase with spaces is rare in code.
        return shannon_entropy(value) >= 4.2 and len(value) >= 24
    if not quoted and _PLAIN_IDENTIFIER.match(value):
        return False  # a variable or attribute, not a literal
    if value.isdigit() and len(value) < 12:
        return False  # max_tokens = 4096
    return shannon_entropy(value) >= (2.5 if quoted else 3.0)


def looks_random(value: str, *, min_len: int = 12) -> bool:
    """A machine-made token: long, from a token alphabet, mixed classes, high entropy."""
    if len(value) < min_len or not _TOKEN_CHARS.match(value) or _PLACEHOLDER.match(value):
        return False
    if any(run in value for run in _ALPHABET_RUNS):
        return False
    digit = any(c.isdigit() for c in value)
    lower = any(c.islower() for c in value)
    upper = any(c.isupper() for c in value)
    if value.isdigit():
        return len(value) >= 14  # numeric client ids of 16-19 digits
    if _HEXISH.match(value):
        return digit and (lower or upper) and len(value.replace("-", "")) >= 16
    if not digit:
        # Without digits, random case is the tell: capitals side by side more than once, unlike
        # the one capital per word of camelCase.
        paired_capitals = sum(1 for a, b in pairwise(value) if a.isupper() and b.isupper())
        return lower and upper and (len(value) >= 30 or paired_capitals >= 2) and shannon_entropy(value) >= 3.5
    if value.isalnum() and sum(c.isdigit() for c in value) >= 2 and sum(c.isalpha() for c in value) >= 6:
        return shannon_entropy(value) >= 3.3  # one solid token of letters and digits
    return (lower and upper or len(value) >= 20) and shannon_entropy(value) >= 3.3


def _assignment_kind(key: str) -> str:
    key = key.strip("\"'").lower()
    return "password" if "pass" in key or "pwd" in key else "secret"


def assignment_spans(text: str) -> list[Span]:
    """Values assigned to credential-like names, in code, config, env and JSON/YAML shapes."""
    spans: list[Span] = []
    for match in _ASSIGNMENT.finditer(text):
        key = match.group("key")
        strong = _STRONG_KEY.search(key) is not None
        if not strong and _WEAK_KEY.search(key) is None:
            continue
        group = "quoted" if match.group("quoted") is not None else "bare"
        value = match.group(group)
        if not value:
            continue
        if strong and not _DESCRIPTIVE_KEY.search(key) and _looks_secret(value, quoted=group == "quoted"):
            spans.append((match.start(group), match.end(group), _assignment_kind(key)))
        elif looks_random(value):
            spans.append((match.start(group), match.end(group), "secret"))
    return spans


_AWS_ID = re.compile(r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")
_FORTY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_WORD = re.compile(r"(?i)aws")


def aws_secret_spans(text: str) -> list[Span]:
    """A 40-character AWS secret key near its key id or on a line that says ``aws``."""
    spans: list[Span] = []
    for match in _FORTY.finditer(text):
        value = match.group(0)
        if not (any(c.isdigit() for c in value) or "/" in value or "+" in value):
            continue
        if not (any(c.islower() for c in value) and any(c.isupper() for c in value)):
            continue  # a git sha or another lower-case hex digest
        if shannon_entropy(value) < 3.8:
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : len(text) if line_end < 0 else line_end]
        # Three lines either side: the id and the key usually sit together in a config block.
        lo = line_start
        for _ in range(3):
            lo = text.rfind("\n", 0, max(lo - 1, 0)) + 1 if lo > 0 else 0
        hi = match.end()
        for _ in range(3):
            nxt = text.find("\n", hi + 1)
            hi = len(text) if nxt < 0 else nxt
        if _AWS_WORD.search(line) or _AWS_ID.search(text, lo, hi):
            spans.append((match.start(), match.end(), "aws-secret-access-key"))
    return spans


_BLOB = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9+/_\-]{60,}={0,2}(?![A-Za-z0-9+/=_\-])")
_BLOB_LINE = re.compile(r"[\s+\-\"'|>]*(?P<b>[A-Za-z0-9+/_\-]{8,}={0,2})[\"',\\n]*\s*$")
_SRI_PREFIX = re.compile(r"(?:sha(?:1|256|384|512)-|integrity[\"']?\s*[:=]\s*[\"']?)$")


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def blob_spans(text: str) -> list[Span]:
    """Long random base64 (an encoded key or keystore under any name), with its wrapped lines."""
    spans: list[Span] = []
    for match in _BLOB.finditer(text):
        value = match.group(0)
        if _SRI_PREFIX.search(text, max(0, match.start() - 20), match.start()):
            continue  # a lock file's published integrity hash
        if not looks_random(value, min_len=60) or shannon_entropy(value) < 4.5:
            continue
        start, end = match.start(), match.end()
        # Wrapped base64 (PEM bodies, YAML block scalars): take the neighbouring lines of it too.
        line_start, line_end = _line_bounds(text, start)
        while line_start > 0:
            prev_start, prev_end = _line_bounds(text, line_start - 1)
            found = _BLOB_LINE.match(text, prev_start, prev_end)
            if not found:
                break
            start, line_start = prev_start + found.start("b"), prev_start
        while line_end < len(text):
            next_start, next_end = _line_bounds(text, line_end + 1)
            found = _BLOB_LINE.match(text, next_start, next_end)
            if not found or next_start >= next_end:
                break
            end, line_end = next_start + found.end("b"), next_end
        spans.append((start, end, "encoded-secret"))
    return spans


_SRI_VALUE = re.compile(r"sha(?:1|256|384|512)-")  # subresource integrity: a public digest
_QUOTED = re.compile(r"(?P<q>[\"'])(?P<v>[A-Za-z0-9+/=_\-]{20,})(?P=q)")


def quoted_entropy_spans(text: str) -> list[Span]:
    """Quoted strings too random to be words: base64 above 4.5 bits a character, long hex digests."""
    spans: list[Span] = []
    for match in _QUOTED.finditer(text):
        value = match.group("v")
        if any(run in value for run in _ALPHABET_RUNS) or _PLACEHOLDER.match(value) or _SRI_VALUE.match(value):
            continue
        if _HEXISH.match(value) and "-" not in value:
            hit = len(value) >= 24 and shannon_entropy(value) >= 3.3 and any(c.isdigit() for c in value) \
                and any(c.isalpha() for c in value)
        else:
            hit = shannon_entropy(value) >= 4.5 and looks_random(value, min_len=20)
        if hit:
            spans.append((match.start("v"), match.end("v"), "high-entropy-string"))
    return spans


_K8S_SECRET = re.compile(r"(?im)^\s*kind:\s*[\"']?secret[\"']?\s*$")
_K8S_DATA = re.compile(r"(?m)^(?P<indent>[ \t]*)(?:data|stringData):[ \t]*$")
_K8S_ENTRY = re.compile(r"(?P<indent>[ \t]+)[\w.\-]+:[ \t]*(?P<v>[^\s#][^\n#]*?)[ \t]*$")


def kubernetes_secret_spans(text: str) -> list[Span]:
    """Every value under ``data:``/``stringData:`` of a YAML document whose kind is Secret."""
    spans: list[Span] = []
    for document in _documents(text):
        start, end = document
        if not _K8S_SECRET.search(text, start, end):
            continue
        for block in _K8S_DATA.finditer(text, start, end):
            parent = len(block.group("indent"))
            pos = block.end() + 1
            while pos < end:
                line_end = text.find("\n", pos)
                line_end = end if line_end < 0 or line_end > end else line_end
                entry = _K8S_ENTRY.match(text, pos, line_end)
                if entry is None or len(entry.group("indent")) <= parent:
                    if text[pos:line_end].strip():
                        break
                elif not _PLACEHOLDER.match(entry.group("v").strip("\"'")):
                    spans.append((entry.start("v"), entry.end("v"), "kubernetes-secret"))
                pos = line_end + 1
    return spans


_NETRC_MACHINE = re.compile(r"(?im)^[+\- ]?[ \t]*(?:machine|default)\b")
_NETRC_PASSWORD = re.compile(r"(?im)^[+\- ]?[ \t]*(?:login\s+\S+\s+)?password[ \t]+(?P<v>[^\s=:][^\s]*)")


def netrc_spans(text: str) -> list[Span]:
    """``password VALUE`` lines of netrc-shaped text (a ``machine`` line says it is one)."""
    if not _NETRC_MACHINE.search(text):
        return []
    return [(m.start("v"), m.end("v"), "netrc-password") for m in _NETRC_PASSWORD.finditer(text)]


def _documents(text: str) -> list[tuple[int, int]]:
    bounds = [0] + [m.end() for m in re.finditer(r"(?m)^---[ \t]*$", text)] + [len(text)]
    return list(pairwise(bounds))


#: The contextual finders, run after the shape table.
CONTEXT_FINDERS: tuple[Callable[[str], list[Span]], ...] = (
    aws_secret_spans, netrc_spans, kubernetes_secret_spans, blob_spans, quoted_entropy_spans, assignment_spans,
)

"""Who the viewer answers: every request, pages and static files included, passes one gate.

The viewer serves prompts, responses and retrieved context, and takes approval decisions, so a
request is refused unless:

* it names this viewer: the ``Host`` header is exactly one of the names it listens under
  (``127.0.0.1``, ``localhost``, ``[::1]``) with its port. A web page on another name that
  resolves to 127.0.0.1 (DNS rebinding) is same-origin to the browser, but its requests still say
  ``Host: attacker.example`` and are refused; a name merely containing ``127.0.0.1`` is not it.
* its ``Origin``, when the browser sends one, is this viewer's own (a page on another port of
  localhost is another origin), and ``Sec-Fetch-Site`` says the request comes from the viewer's
  own page, except for opening the page itself from a link;
* it comes from this machine, unless the viewer was started with ``allow_remote``; then it must
  carry the access token printed at start: ``?token=`` once (the reply sets a cookie, as Jupyter
  does), or the cookie, or an ``Authorization: Bearer`` header.

Responses also forbid framing, so another site cannot overlay the approval buttons (clickjacking).
The gate is plain ASGI with no framework import; decisions add the page's CSRF value on top
(:mod:`contextflow.ui.approvals`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
TOKEN_PARAM = "token"

_HOST = re.compile(r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(?P<port>\d{1,5}))?$")
_SAME_SITE = frozenset({"same-origin", "none"})
_SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def host_form(host: str) -> str:
    """How ``host`` (a bind address or name) appears in a Host header: IPv6 in brackets."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host.strip("[]")).version == 6 else host
    except ValueError:
        return host.lower()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ViewerAccess:
    """What one viewer accepts. ``port`` None (an app not started by ``serve``) accepts any port."""

    port: int | None = None
    bind_host: str = "127.0.0.1"
    allow_remote: bool = False
    token: str | None = None
    #: The value decisions must echo; only the served page carries it (see ui/approvals.py).
    csrf: str = field(default_factory=new_secret, repr=False)

    def __post_init__(self) -> None:
        if self.allow_remote and not self.token:
            raise ValueError("a viewer reachable from other machines needs an access token")

    @property
    def cookie_name(self) -> str:
        # Cookies are shared by every port of a host name: a per-port name keeps two viewers apart.
        return f"contextflow_token_{self.port or 'any'}"

    def names(self) -> frozenset[str]:
        names = set(LOOPBACK_NAMES)
        if is_loopback(self.bind_host):
            names.add(host_form(self.bind_host))
        return frozenset(names)

    def url(self, shown_host: str | None = None) -> str:
        host = host_form(shown_host or self.bind_host)
        query = f"/?{urlencode({TOKEN_PARAM: self.token})}" if self.token else "/"
        return f"http://{host}:{self.port}{query}"

    # -- the checks ---------------------------------------------------------------------------
    def refusal(self, request: RequestView) -> tuple[int, str] | None:
        """(status, reason) when the request must be refused; None when it may pass."""
        client = request.client
        if not self.allow_remote and client and _is_ip(client) and not is_loopback(client):
            return 403, "this viewer only answers requests from this machine"
        host = request.header("host")
        parsed = _HOST.match(host.lower()) if host else None
        if parsed is None:
            return 403, f"the Host header {host!r} is not a host name"
        name, port = parsed["name"], parsed["port"]
        if not self.allow_remote and name not in self.names():
            return 403, (f"this viewer answers only to {', '.join(sorted(self.names()))} "
                         f"(e.g. http://127.0.0.1:{self.port or 'PORT'}), not '{name}'")
        if self.port is not None and port != str(self.port):
            return 403, f"this viewer listens on port {self.port}, not {port or 'the default port'}"
        origin = request.header("origin")
        if origin is not None and origin.lower() != f"http://{host.lower()}":
            return 403, f"requests from the page at {origin!r} are refused: it is not this viewer"
        site = request.header("sec-fetch-site")
        if site is not None and site not in _SAME_SITE and not _opening_the_page(request):
            return 403, "requests from other sites are refused"
        if self.token is not None and not self._has_token(request):
            return 401, ("this viewer needs its access token: open the address printed when it "
                         "started (it ends in ?token=...)")
        return None

    def _has_token(self, request: RequestView) -> bool:
        offered = [request.query.get(TOKEN_PARAM), request.cookies.get(self.cookie_name)]
        auth = request.header("authorization") or ""
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:].strip())
        return any(value and _same(value, self.token or "") for value in offered)

    def token_in_query(self, request: RequestView) -> bool:
        value = request.query.get(TOKEN_PARAM)
        return bool(self.token and value and _same(value, self.token))


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False  # a test client or a Unix socket: not a network peer
    return True


def _opening_the_page(request: RequestView) -> bool:
    """A top-level visit to the page from a link elsewhere: the linking site cannot read it."""
    return (request.method == "GET" and request.path == "/" and request.header("sec-fetch-mode") == "navigate"
            and request.header("sec-fetch-dest") in (None, "document"))


@dataclass
class RequestView:
    """The parts of an ASGI HTTP scope the gate reads."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    cookies: Mapping[str, str]
    client: str | None

    @classmethod
    def of(cls, scope: Mapping[str, Any]) -> RequestView:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            if name not in headers:  # a repeated Host or Origin: the first one, as servers route
                headers[name] = raw_value.decode("latin-1")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        cookies: dict[str, str] = {}
        for part in headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key:
                cookies.setdefault(key, value)
        client = scope.get("client")
        return cls(scope.get("method", "GET"), scope.get("path", "/"), headers, query, cookies,
                   client[0] if client else None)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class ViewerGuard:
    """ASGI middleware applying :class:`ViewerAccess` to every HTTP request (websockets refused)."""

    def __init__(self, app: Callable[..., Awaitable[None]], access: ViewerAccess) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        request = RequestView.of(scope)
        refused = self.access.refusal(request)
        if refused is not None:
            await _plain(send, refused[0], refused[1])
            return
        cookie: list[tuple[bytes, bytes]] = []
        if self.access.token_in_query(request):
            cookie = [(b"set-cookie", (f"{self.access.cookie_name}={self.access.token}; Path=/; "
                                       "HttpOnly; SameSite=Strict").encode())]
            if request.method == "GET" and request.path == "/":
                # Take the token out of the address bar and history; the cookie carries it now.
                rest = {k: v for k, v in request.query.items() if k != TOKEN_PARAM}
                location = "/" + (f"?{urlencode(rest)}" if rest else "")
                await _plain(send, 303, "see /", [(b"location", location.encode()), *cookie])
                return

        async def send_with_headers(message: Mapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS, *cookie]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *_SECURITY_HEADERS, *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


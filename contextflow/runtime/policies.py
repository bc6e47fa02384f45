"""Per-node policies (retry, timeout, fallbacks, cache), resolved once from a node and its defaults.

Which errors are worth another try is decided by :func:`is_retryable`: timeouts, rate limits,
server errors and dropped connections are transient; authentication, permission and bad-request
errors (a wrong key, a malformed request, a prompt over the context window) fail the same way
every time, so retrying them only burns time and quota.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextflow.dags.spec import CacheSpec, Defaults, RetrySpec
    from contextflow.dags.spec import Node

# Exception class names (anywhere in the MRO) of litellm/openai errors, so classifying an error
# does not import litellm.
_NEVER_RETRY = frozenset(
    {
        "AuthenticationError",
        "PermissionDeniedError",
        "BadRequestError",
        "NotFoundError",
        "UnprocessableEntityError",
        "ContextWindowExceededError",
        "ContentPolicyViolationError",
        "UnsupportedParamsError",
        "InvalidRequestError",
        "BudgetExceeded",
        "UserError",
        "OutputValidationError",
    }
)
_RETRY = frozenset(
    {
        "Timeout",
        "APITimeoutError",
        "RateLimitError",
        "InternalServerError",
        "ServiceUnavailableError",
        "BadGatewayError",
        "APIConnectionError",
        "TimeoutError",
        "ConnectionError",
    }
)
# litellm reports a missing API key as an InternalServerError; it is an auth problem all the same.
_AUTH_MARKERS = ("missing credentials", "api key", "api_key", "authentication", "unauthorized", "invalid x-api-key")


def is_retryable(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _NEVER_RETRY:
        return False
    message = str(exc).lower()
    if any(marker in message for marker in _AUTH_MARKERS):
        return False
    if names & _RETRY or isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in (408, 409, 429) or status >= 500
    return False


def error_kind(exc: BaseException) -> str:
    """A short stable label for an error (rate_limit, timeout, server, auth, bad_request, ...)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "RateLimitError" in names:
        return "rate_limit"
    if names & {"Timeout", "APITimeoutError", "TimeoutError"} or isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if names & {"AuthenticationError", "PermissionDeniedError"} or any(m in str(exc).lower() for m in _AUTH_MARKERS):
        return "auth"
    if names & {"BadRequestError", "ContextWindowExceededError", "UnprocessableEntityError", "NotFoundError"}:
        return "bad_request"
    if names & {"APIConnectionError", "ConnectionError"}:
        return "connection"
    if names & {"InternalServerError", "ServiceUnavailableError", "BadGatewayError"}:
        return "server"
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` tries in all; the delay before try n+1 grows by ``multiplier`` up to ``max_backoff_s``,
    and a ``jitter`` fraction of it is randomised so that many callers do not retry in lockstep."""

    attempts: int = 3
    backoff_s: float = 0.5
    multiplier: float = 2.0
    max_backoff_s: float = 30.0
    jitter: float = 0.5

    @classmethod
    def from_spec(cls, spec: "RetrySpec") -> "RetryPolicy":
        return cls(spec.attempts, spec.backoff_s, spec.backoff_multiplier, spec.backoff_max_s, spec.jitter)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failures``-th failed try (1-based)."""
        base = min(self.backoff_s * self.multiplier ** max(failures - 1, 0), self.max_backoff_s)
        if self.jitter <= 0 or base <= 0:
            return base
        r = (rng or random).random()
        return base * (1 - self.jitter) + base * self.jitter * r

    def should_retry(self, exc: BaseException, tries_so_far: int) -> bool:
        return tries_so_far < self.attempts and is_retryable(exc)


@dataclass(frozen=True, slots=True)
class Timeout:
    seconds: float | None = None

    def bounded_by(self, remaining_wall_s: float | None) -> float | None:
        if remaining_wall_s is None:
            return self.seconds
        if self.seconds is None:
            return max(remaining_wall_s, 0.0)
        return max(min(self.seconds, remaining_wall_s), 0.0)


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    """Models tried, in order, after the primary model's retries are used up."""

    models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    enabled: bool = True
    ttl_s: float | None = None

    @classmethod
    def from_spec(cls, spec: "CacheSpec") -> "CachePolicy":
        return cls(spec.enabled, spec.ttl_s)


@dataclass(frozen=True, slots=True)
class NodePolicies:
    retry: RetryPolicy
    timeout: Timeout
    fallbacks: FallbackPolicy
    cache: CachePolicy


_NO_CACHE = CachePolicy(enabled=False)


def policies_for(node: "Node", defaults: "Defaults") -> NodePolicies:
    """A node's own settings where it has them, the pipeline's defaults otherwise.

    Only ``llm`` nodes are cached by default: their result is a function of the rendered prompt,
    model and params. Python and retrieve nodes may read the outside world, so they are cached
    only when the node asks for it; tool nodes have side effects and are never cached.
    """
    cached = _RESOLVED.get(id(node))
    if cached is not None and cached[0] is node and cached[1] is defaults:
        return cached[2]
    retry = RetryPolicy.from_spec(node.retry or defaults.retry)
    timeout = Timeout(node.timeout_s if node.timeout_s is not None else defaults.timeout_s)
    fallbacks = FallbackPolicy(tuple(node.fallbacks) if node.kind == "llm" else ())
    if node.kind == "tool":
        cache = _NO_CACHE
    elif node.cache is not None:
        cache = CachePolicy.from_spec(node.cache)
    elif node.kind == "llm":
        cache = CachePolicy.from_spec(defaults.cache)
    else:
        cache = _NO_CACHE
    policies = NodePolicies(retry, timeout, fallbacks, cache)
    if len(_RESOLVED) >= 65536:
        _RESOLVED.clear()
    _RESOLVED[id(node)] = (node, defaults, policies)  # holding both keeps their ids from being reused
    return policies


# Specs are not mutated while they run; a plan run many times resolves its policies once.
_RESOLVED: dict[int, tuple[object, object, NodePolicies]] = {}

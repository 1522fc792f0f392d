"""Pure retry decisions: which failures are worth another attempt, and how long to wait first.

The rule for requests that create something (``files.create``, ``batches.create``) lives in
``should_retry_status`` and ``should_retry_exception``: they are re-sent only when the server
cannot have acted on them. Everything else (GET, DELETE, cancel, which are safe to repeat) is
retried on any transient failure, like openai-python does.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping

import httpx

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

# Transient statuses for requests that are safe to repeat (409: OpenAI's lock timeouts).
RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600)) - {501}

# Exceptions raised before a connection existed, so no byte of the request reached the server.
NOT_SENT_EXCEPTIONS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


# Failures that may pass; not e.g. UnsupportedProtocol or LocalProtocolError, which will recur.
_TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) else None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return email.utils.mktime_tz(parsed) - now()
    except (TypeError, ValueError, OverflowError):
        return None


def retry_delay(
    retries_done: int,
    headers: Mapping[str, str] | None = None,
    *,
    random: Callable[[], float],
    now: Callable[[], float] = time.time,
) -> float:
    """How long to sleep before retry number ``retries_done + 1``.

    A server-given delay is honoured when it is in (0, 60] seconds; otherwise exponential backoff
    from 0.5 s doubling up to 8 s, shortened by a random 0-25 % so clients spread out.
    """
    if headers is not None:
        asked = parse_retry_after(headers, now=now)
        if asked is not None and 0 < asked <= MAX_RETRY_AFTER:
            return asked
    backoff = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_done, 64), MAX_RETRY_DELAY)
    return max(backoff * (1 - 0.25 * random()), 0.0)


def _server_says(headers: Mapping[str, str]) -> bool | None:
    # openai's servers send `x-should-retry` to overrule the client's guess either way.
    value = (headers.get("x-should-retry") or "").strip().lower()
    return {"true": True, "false": False}.get(value)


def should_retry_status(status: int, headers: Mapping[str, str], *, creates: bool) -> bool:
    """Whether an error response is worth another attempt.

    For a create, only answers that mean "I did not act on this" qualify: 408 (the server gave up
    waiting for the request), 429 (rejected by the rate limiter before any work) and 503 *with* a
    Retry-After (the server is shedding load and says when to come back). A 409 may mean the object
    already exists, and a 500/502/504 may come after the server (or the upstream behind a gateway)
    created the object, so a create is not re-sent then: a duplicate batch is billed twice.
    An explicit ``x-should-retry`` from the server overrules all of this.
    """
    explicit = _server_says(headers)
    if explicit is not None:
        return explicit
    if not creates:
        return status in RETRYABLE_STATUSES
    if status in (408, 429):
        return True
    return status == 503 and parse_retry_after(headers) is not None


def should_retry_exception(exc: Exception, *, creates: bool) -> bool:
    """Whether a transport failure (no response) is worth another attempt.

    A create is re-sent only after a failure to connect (connect error/timeout, no pooled
    connection free): the request never left. A read timeout or a dropped connection after the
    body was sent may have reached a server that is creating the object right now.
    """
    if not isinstance(exc, _TRANSIENT_EXCEPTIONS):
        return False
    if creates:
        return isinstance(exc, NOT_SENT_EXCEPTIONS)
    return True

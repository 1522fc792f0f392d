"""What runs one request of a batch: the offline `echo` model (`echo.py`), or an upstream OpenAI-compatible server.

An executor turns (endpoint, body) into an `Outcome`: an HTTP status and JSON body, or -- when no
response could be had at all -- an error code and message. It never raises for a failed request:
every request of a batch ends as exactly one output or error line.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from batchctl.api.retry import RETRYABLE_STATUSES, parse_retry_after, retry_delay
from batchctl.masking import _bearer_token
from batchctl import jsonfast
from batchctl.server.config import ServerConfig
from batchctl.server.echo import ECHO_MODEL, EchoExecutor
from batchctl.server.limits import Dropped, UpstreamLimits, Waits
from batchctl.server.outcome import Outcome, error_body, quick_id


class Executor(Protocol):
    concurrency: int

    async def execute(self, endpoint: str, body: dict[str, Any], custom_id: str) -> Outcome: ...

    async def models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


def make_executor(config: ServerConfig) -> Executor:
    """The upstream executor when the config names one, else the built-in echo model."""
    if config.upstream:
        return UpstreamExecutor(config)
    return EchoExecutor(config)


# -- which executor a batch belongs to ------------------------------------------------------------
# Recorded with each batch (`batches.executor`): a batch is run only by a server with the same executor,
# never finished by another one (an echo server would answer an upstream's batch with fake `echo:` lines).
ECHO_IDENTITY = "echo"
# A batch of an older release (no executor recorded) that sent requests to some upstream: which one is unknown.
SOME_UPSTREAM = "upstream"


def executor_identity(config: ServerConfig) -> str:
    """Which executor `config` runs, as recorded with a batch: `echo`, or `upstream URL` (its password masked,
    never a key) and ` channel N` with --upstream-channel. The echo settings (latency, failure rate) and the
    upstream's limits (rpm, concurrency, ...) are not part of it: they change how, not who, answers."""
    if not config.upstream:
        return ECHO_IDENTITY
    from batchctl.urls import display_url

    identity = f"{SOME_UPSTREAM} {display_url(config.upstream.strip().rstrip('/'))}"
    return identity + (f" channel {config.upstream_channel}" if config.upstream_channel else "")


def serve_for(identity: str) -> str:
    """The `batchctl serve` command that runs batches of `identity` (`executor_identity`)."""
    if identity == ECHO_IDENTITY:
        return "batchctl serve"
    if identity == SOME_UPSTREAM:
        return "batchctl serve --upstream URL (the one it was created with)"
    url, _, channel = identity.removeprefix(SOME_UPSTREAM + " ").partition(" channel ")
    return f"batchctl serve --upstream {url}" + (f" --upstream-channel {channel}" if channel else "")


def describe_executor(identity: str) -> str:
    """`identity` (`executor_identity`) as a person reads it."""
    if identity == ECHO_IDENTITY:
        return "the built-in echo model"
    if identity == SOME_UPSTREAM:
        return "an --upstream (the older release that created it did not record which)"
    return identity.replace(f"{SOME_UPSTREAM} ", "--upstream ", 1).replace(" channel ", " --upstream-channel ")



# -- upstream ----------------------------------------------------------------------------------

class UpstreamExecutor:
    """Forwards each body to `{upstream}{endpoint minus /v1}`, with bounded concurrency, rpm/tpm caps and retries.

    Requests whose model is `echo` are still answered by the built-in echo model, so `/v1/models`
    can list it beside the upstream's models.

    The client is aiohttp, not httpx: against a fast local upstream httpx's connection pool capped the
    server at ~330 requests/s at concurrency 64 (throughput fell as concurrency rose), where aiohttp
    keeps up with the upstream (docs/performance.md). The CLI keeps httpx.
    """

    def __init__(self, config: ServerConfig) -> None:
        import aiohttp  # noqa: F401  -- at startup: its import (SSL contexts included) takes ~0.2 s

        self.config = config
        self.concurrency = max(1, config.concurrency)
        self.remote = True  # requests cost something elsewhere: the runner records each one's start
        self.base = config.upstream.rstrip("/")  # type: ignore[union-attr]
        # `--upstream-channel N` pins a New-API channel: the key goes out as `Bearer KEY-N` on every call.
        token = _bearer_token(config.upstream_key, config.upstream_channel)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.echo = EchoExecutor(config)
        self._session: Any = None  # made on first use, inside the running event loop
        self._urls: dict[str, Any] = {}
        # Shared by every batch: the upstream sees at most `concurrency` requests at once in total,
        # and --rpm, --tpm and its Retry-After pauses hold for all of them together.
        self.slots = asyncio.Semaphore(self.concurrency)
        self.limits = UpstreamLimits(config.rpm, config.tpm)
        self._sleep = asyncio.sleep  # the backoff between retries; injectable

    @property
    def waits(self) -> Waits:
        """The requests waiting to be sent, not in an HTTP call: a cancel ends those at once (BatchRunner.cancel)."""
        return self.limits.waits

    def session(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={**self.headers, "Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self.config.timeout, connect=10.0),
                connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency),
                cookie_jar=aiohttp.DummyCookieJar(),  # an API answers no cookies worth keeping: skip the jar's work
            )
        return self._session

    def url_for(self, endpoint: str) -> str:
        path = endpoint[3:] if endpoint.startswith("/v1/") else endpoint
        return self.base + path

    async def execute(self, endpoint: str, body: dict[str, Any], custom_id: str) -> Outcome:
        import aiohttp

        if body.get("model") == ECHO_MODEL:
            return await self.echo.execute(endpoint, body, custom_id)
        url = self._urls.get(endpoint)
        if url is None:
            from yarl import URL  # aiohttp's URL type: parsed once per endpoint, not on every request

            url = self._urls[endpoint] = URL(self.url_for(endpoint))
        session = self.session()
        data = jsonfast.dumps_bytes(body)  # once, for every attempt
        attempt = 0
        sent: Outcome | None = None  # the last failed attempt the upstream may have worked on (not a 429)
        try:
            while True:
                attempt += 1
                headers = None
                slots = self.slots
                if slots.locked():  # waiting for a free slot (other batches', or ones held through a pause)
                    await self.waits(slots.acquire())  # a cancel of the batch ends the wait: `Dropped`
                else:
                    await slots.acquire()
                try:
                    if self.limits.active:
                        await self.limits.wait(body)  # `Dropped` too, should a cancel come meanwhile
                    try:
                        async with session.post(url, data=data) as response:
                            raw = await response.read()
                    except asyncio.TimeoutError as exc:
                        failure = Outcome(error_code="upstream_timeout", error_message=f"Upstream timed out: {exc!r}")
                    except (aiohttp.ClientError, OSError) as exc:
                        failure = Outcome(error_code="upstream_unreachable",
                                          error_message=f"Upstream request failed: {exc!r}")
                    else:
                        outcome = self._outcome(response.status, response.headers, raw, response.reason)
                        if response.status not in RETRYABLE_STATUSES:
                            return outcome
                        failure, headers = outcome, response.headers
                finally:
                    slots.release()
                if attempt > self.config.max_retries:
                    return failure
                if failure.status_code != 429:  # a 429 was refused unworked: dropped, it leaves nothing
                    sent = failure
                self.waits.check()  # cancelled during that call: no retry
                asked = upstream_retry_after(headers)
                if asked is not None:
                    self.limits.pause(asked)  # every worker waits it out, this request included (in limits.wait)
                else:
                    # The client's backoff (batchctl.api.retry), retries counted from 0.
                    await self.waits(self._sleep(retry_delay(attempt - 1, None, random=random.random)))
        except Dropped:
            if sent is None:
                raise
            # Sent, answered 5xx or not at all, maybe worked on (and billed) upstream: cancelled before its
            # retry, it keeps that last answer as its line instead of vanishing.
            return sent

    def paused_until(self) -> float | None:
        """When (epoch seconds) the upstream's Retry-After pause ends; None when there is none."""
        left = self.limits.pause_left()
        return time.time() + left if left > 0 else None

    @staticmethod
    def _outcome(status: int, headers: Any, raw: bytes, reason: str | None) -> Outcome:
        request_id = headers.get("x-request-id") or quick_id("req_")
        try:
            body = jsonfast.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            return Outcome(status, body, request_id, body_text=_one_line(raw))
        text = raw.decode("utf-8", "replace")[:2000]
        if 200 <= status < 300:
            return Outcome(502, error_body(f"Upstream answered non-JSON: {text!r}", "server_error", "bad_upstream_response"), request_id)
        body = error_body(text or reason or str(status), "server_error" if status >= 500 else "invalid_request_error")
        return Outcome(status, body, request_id)

    async def models(self) -> list[str]:
        import aiohttp

        try:
            async with self.session().get(self.base + "/models", timeout=aiohttp.ClientTimeout(total=3.0)) as response:
                data = json.loads(await response.read()).get("data", [])
            return [ECHO_MODEL] + [m["id"] for m in data if isinstance(m, dict) and "id" in m]
        except Exception:
            return [ECHO_MODEL]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


MAX_UPSTREAM_RETRY_AFTER = 3600.0  # a batch can wait longer than an interactive client (60 s) would


def upstream_retry_after(headers: Any, *, now: Callable[[], float] = time.time) -> float | None:
    """The pause an upstream asked for with `Retry-After` (seconds or an HTTP date) or `retry-after-ms`.

    None when it asked for none (or nonsense): then the usual backoff applies. Up to an hour is honoured,
    not the client's 60 s: a batch has time, and an upstream that says when to come back knows best.
    """
    if headers is None:
        return None
    asked = parse_retry_after(headers, now=now)
    if asked is None or asked != asked:  # NaN
        return None
    return min(max(asked, 0.0), MAX_UPSTREAM_RETRY_AFTER)


def _one_line(raw: bytes) -> str | None:
    """A JSON body that parsed, as text fit to splice into a result line; None to have it written anew.

    Line breaks in valid JSON can only be whitespace between tokens (inside strings they are escaped),
    so they become spaces. A byte-order mark, or any encoding but UTF-8, is left to the writer.
    """
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff"):
        return None
    if "\n" in text or "\r" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return text

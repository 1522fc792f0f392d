"""How fast `serve --upstream` may start requests: `--rpm`, `--tpm` and the upstream's own `Retry-After`.

`RateLimiter` spaces starts evenly by a cost (1 a request for rpm, the estimated tokens for tpm): no bursts,
so an upstream limiter that counts per second sees the same rate as one that counts per minute.
`UpstreamLimits` holds both pacers and a shared pause: when the upstream answers 429 with a
`Retry-After`, no request of any batch starts before that moment (the one that was refused retries
then too), instead of every worker finding the limit for itself. `Waits` knows which requests are only
waiting (for a slot, a pause, a pacer start, a backoff), so that a cancel ends them at once.

Clock and sleep are injectable, so tests check the spacing without waiting for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

CHARS_PER_TOKEN = 4  # the echo model's estimate (and OpenAI's rule of thumb for English)


def estimate_request_tokens(body: dict[str, Any]) -> int:
    """Tokens a request may use against a tokens-per-minute limit: its text, plus the output it asks room for.

    Like OpenAI's rate limiter, which counts `max_tokens` (or `max_completion_tokens`) towards the limit
    before the request runs. The text is the body's JSON, four characters a token: cheap, no tokenizer.
    """
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    limit = body.get("max_completion_tokens", body.get("max_tokens", body.get("max_output_tokens")))
    output = limit if isinstance(limit, int) and limit > 0 else 0
    return max(1, len(text) // CHARS_PER_TOKEN) + output


async def sleep_full(delay: float, *, clock: Clock, sleep: Sleep) -> None:
    """Sleep `delay` seconds by `clock`, in full: uvloop (the server's loop) rounds a sleep to whole
    milliseconds on a clock it read earlier, so its `sleep(delay)` can return ~0.2-1 ms early, and a
    request would start before its --rpm/--tpm slot or the upstream's Retry-After ends."""
    deadline = clock() + delay
    await sleep(delay)
    while (left := deadline - clock()) > 0:
        await sleep(left)


class Dropped(Exception):
    """A request ended while it only waited to be sent, because its batch was cancelled (`Waits.drop`)."""


class Waits:
    """The tasks now waiting to send a request -- for a free connection slot, the upstream's Retry-After pause,
    an --rpm/--tpm start or the backoff before a retry -- as opposed to those in an HTTP call.

    A cancel drops its batch's workers (`drop`): one that waits ends at once with `Dropped`, one in an HTTP
    call finishes it and gets `Dropped` as soon as it would wait again (before any retry). A dropped request
    is never sent (again). Only waits that really wait come here: nothing is added to a request that goes
    straight out.
    """

    def __init__(self) -> None:
        self.waiting: set[asyncio.Task[Any]] = set()
        self.dropped: set[asyncio.Task[Any]] = set()

    async def __call__(self, awaitable: Awaitable[Any]) -> Any:
        """`await awaitable`, unless the current task is dropped (then, or meanwhile: `Dropped`)."""
        task = asyncio.current_task()
        try:
            self.check(task)
        except Dropped:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never awaited: no "was never awaited" warning
            raise
        self.waiting.add(task)  # type: ignore[arg-type]
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task not in self.dropped:
                raise  # the server stopping, not a cancel of the batch
            task.uncancel()  # type: ignore[union-attr]
            raise Dropped() from None
        finally:
            self.waiting.discard(task)  # type: ignore[arg-type]

    def check(self, task: asyncio.Task[Any] | None = None) -> None:
        """Raise `Dropped` if the current task (or `task`) was dropped."""
        if (task or asyncio.current_task()) in self.dropped:
            raise Dropped()

    def drop(self, tasks: Any) -> None:
        """End these tasks' waits now, and any wait they would start (their batch was cancelled)."""
        for task in tasks:
            self.dropped.add(task)
            if task in self.waiting:
                task.cancel()  # raised in the wait it is suspended in (`__call__`), as `Dropped`

    def forget(self, tasks: Any) -> None:
        self.dropped.difference_update(tasks)


class RateLimiter:
    """Starts at most `rpm` units of cost in any minute, evenly spaced (requests for --rpm, tokens for --tpm)."""

    def __init__(self, rpm: int | None, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.per_minute = rpm
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    @property
    def interval(self) -> float:
        """Seconds between two starts of cost 1; 0 without a cap."""
        return 60.0 / self.per_minute if self.per_minute else 0.0

    def reserve(self, cost: float = 1.0, *, not_before: float = 0.0) -> float:
        """Book the next start of `cost` units; returns how long to wait for it (no await: atomic in asyncio)."""
        if not self.per_minute:
            return max(0.0, not_before - self._clock())
        now = self._clock()
        start = max(now, self._next, not_before)
        # A request dearer than a whole minute's budget still runs, alone, and pushes the next one back.
        self._next = start + min(cost, self.per_minute) * 60.0 / self.per_minute
        return start - now

    async def wait(self, cost: float = 1.0) -> None:
        delay = self.reserve(cost)
        if delay > 0:
            await sleep_full(delay, clock=self._clock, sleep=self._sleep)


class UpstreamLimits:
    """`--rpm`, `--tpm` and the upstream's `Retry-After`, checked before every request to the upstream."""

    def __init__(
        self, rpm: int | None, tpm: int | None, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.requests = RateLimiter(rpm, clock=clock, sleep=sleep)
        self.tokens = RateLimiter(tpm, clock=clock, sleep=sleep)
        self.paused_until = 0.0
        self.waits = Waits()
        self._clock = clock
        self._sleep = sleep

    @property
    def active(self) -> bool:
        """Whether any limit applies (when none does, `wait` is skipped)."""
        return bool(self.requests.per_minute or self.tokens.per_minute or self.paused_until)

    def pause(self, seconds: float) -> None:
        """The upstream asked for a pause (429 + Retry-After): no request starts before it is over."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def pause_left(self) -> float:
        """Seconds until the upstream's pause ends; 0 when there is none."""
        return max(0.0, self.paused_until - self._clock()) if self.paused_until else 0.0

    async def wait(self, body: dict[str, Any]) -> None:
        """Returns when a request with this body may start; `Dropped` when its batch is cancelled meanwhile."""
        while True:
            not_before = self.paused_until
            delay = self.requests.reserve(1, not_before=not_before)
            if self.tokens.per_minute:
                # Both bookings end at the later of the two starts, so neither limit is overrun.
                delay = max(delay, self.tokens.reserve(estimate_request_tokens(body), not_before=self._clock() + delay))
            if delay > 0:
                await self.waits(sleep_full(delay, clock=self._clock, sleep=self._sleep))
            if self.paused_until <= not_before:  # no new pause was asked for while we waited
                return

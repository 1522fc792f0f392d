"""Watching batches until they end: when to poll next, what counts as a change, rate and ETA, exit codes.

The deciding functions are pure (they take numbers and batches, return numbers); `poll_until_terminal`
is the one loop that does I/O, through a `fetch` callable and an injectable clock and sleep, so the
CLI's live dashboard, its line-per-change mode and tests all drive the same logic.

Polling policy (documented in `batchctl status --help`):

- Every `interval` seconds: the flag, else the profile's `poll_interval`, else the provider's default
  (OpenAI 10 s, DashScope 60 s as its docs ask, 1 s for the embedded `local` server on loopback).
- While nothing changes the delay grows x1.5 per poll, up to 4x the interval -- but for intervals
  that would back off past 60 s, only up to max(60 s, 2x the interval) -- and drops back to the
  interval as soon as something changes.
- A 429 waits at least the server's Retry-After (and at least the current delay doubled); other
  transient failures (connection lost, 5xx) back off the same way. Failures are tolerated for a time
  budget (`--give-up-after`, 10 minutes), then the watch stops (`WatchGaveUp`, exit 1) with the resume
  command; an answer that is not a batch (HTML, malformed JSON) stops it at once.
- A batch in a status this tool does not know, unchanged for 30 minutes, stops the watch (exit 6).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchctl.errors import StuckInUnknownStatus, WatchGaveUp

if TYPE_CHECKING:
    from batchctl.api.models import Batch

BACKOFF_FACTOR = 1.5
BACKOFF_MAX_MULTIPLE = 4.0
BACKOFF_SOFT_CAP = 60.0
# How long a watch keeps polling through transient failures (connection lost, 5xx, 429) before it stops
# with the command to resume (`--give-up-after`), and how long a batch may sit in a status this tool
# does not know before the watch says so and stops (exit 6).
GIVE_UP_AFTER_S = 600.0
UNKNOWN_STATUS_LIMIT_S = 1800.0
RATE_WINDOW_S = 120.0  # rate is measured over the last two minutes of samples

# The timestamp field of each phase, in the order a batch goes through them.
PHASE_TIMESTAMPS = (
    ("created", "created_at"),
    ("in progress", "in_progress_at"),
    ("finalizing", "finalizing_at"),
    ("completed", "completed_at"),
    ("failed", "failed_at"),
    ("expired", "expired_at"),
    ("cancelling", "cancelling_at"),
    ("cancelled", "cancelled_at"),
)
_END_TIMESTAMPS = ("completed_at", "failed_at", "expired_at", "cancelled_at")


# -- poll timing ------------------------------------------------------------------------------------


def default_interval(provider: str | None, profile_interval: float | None = None) -> float:
    """Seconds between polls when no --interval is given: the profile's, else the provider's."""
    if profile_interval:
        return float(profile_interval)
    from batchctl.providers import get_provider

    try:
        return get_provider(provider).default_poll_interval
    except ValueError:
        return 10.0


def counts_are_live(provider: str | None) -> bool:
    """Whether `request_counts` move while a batch runs (DashScope and New-API: only at the end)."""
    from batchctl.providers import get_provider

    try:
        return get_provider(provider).live_counts
    except ValueError:
        return True


@dataclass(frozen=True)
class PollSchedule:
    """How long to wait between polls: `interval`, backing off while nothing changes."""

    interval: float
    factor: float = BACKOFF_FACTOR

    @property
    def max_delay(self) -> float:
        backed_off = self.interval * BACKOFF_MAX_MULTIPLE
        if backed_off <= BACKOFF_SOFT_CAP:
            return backed_off
        return max(BACKOFF_SOFT_CAP, self.interval * 2)

    def after_poll(self, delay: float, *, changed: bool) -> float:
        """The next delay after a successful poll: reset on change, else grow up to `max_delay`."""
        if changed:
            return self.interval
        return min(max(delay, self.interval) * self.factor, self.max_delay)

    def after_failure(self, delay: float, *, retry_after: float | None = None) -> float:
        """The next delay after a 429 or a transient failure: never sooner than the server asked."""
        backed_off = min(max(delay, self.interval) * 2, max(self.max_delay, self.interval))
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            return max(backed_off, retry_after)
        return backed_off


# -- change, progress, rate -------------------------------------------------------------------------


def fingerprint(batch: Batch) -> tuple[Any, ...]:
    """What a change is: status, counts or result files -- not the passing of time."""
    counts = batch.request_counts
    return (
        batch.status,
        counts.total,
        counts.completed,
        counts.failed,
        batch.progress,
        batch.output_file_id,
        batch.error_file_id,
    )


def has_changed(previous: Batch | None, current: Batch) -> bool:
    return previous is None or fingerprint(previous) != fingerprint(current)


@dataclass(frozen=True)
class Progress:
    """Counts of one batch as people read them; `fraction` is None when it would be a lie."""

    total: int
    ok: int
    failed: int
    live: bool  # False: the provider reports counts only when the batch finishes
    percent: float | None = None  # a provider's own percentage, when it reports no counts (together)

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def fraction(self) -> float | None:
        if self.percent is not None:
            return self.percent / 100
        if not self.live or self.total <= 0:
            return None
        return min(self.done / self.total, 1.0)


def progress_of(batch: Batch, *, live_counts: bool = True) -> Progress:
    counts = batch.request_counts
    if counts.total <= 0 and batch.progress is not None:  # a percentage instead of counts: shown as "42%"
        return Progress(total=0, ok=0, failed=0, live=True, percent=batch.progress)
    live = live_counts or batch.is_terminal
    return Progress(total=counts.total, ok=counts.completed, failed=counts.failed, live=live)


def elapsed_seconds(batch: Batch, now: float) -> float | None:
    """Seconds since the batch was created, up to when it ended (wall clock, unix seconds)."""
    if batch.created_at is None:
        return None
    end = next((getattr(batch, name) for name in _END_TIMESTAMPS if getattr(batch, name, None)), None)
    if end is None and batch.is_terminal:
        end = now
    return max(0.0, float((end if end is not None else now) - batch.created_at))


def format_duration(seconds: float | None) -> str:
    """`0:00:12`, `1:02:03`, `2d 3:04:05`; `-` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    total = int(round(max(0.0, seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {clock}" if days else clock


def format_timestamp(ts: int | None, *, seconds: bool = True) -> str:
    """Local time, `2025-01-31 14:02:07` (or without seconds); `-` when unknown."""
    from datetime import datetime

    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):  # a provider's odd number (1e30, -1e12): shown as sent
        return str(ts)


@dataclass
class RateTracker:
    """Samples of (monotonic time, requests done) for one batch; rate and ETA from the recent ones."""

    window: float = RATE_WINDOW_S
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, t: float, done: int) -> None:
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()  # counts went backwards (a provider reset them): start over
        self.samples.append((t, done))
        while len(self.samples) > 2 and t - self.samples[0][0] > self.window:
            self.samples.popleft()

    def rate(self) -> float | None:
        """Requests per second over the window, None until two samples apart in time show progress."""
        return rate_from_samples(list(self.samples))


def rate_from_samples(samples: Sequence[tuple[float, int]]) -> float | None:
    if len(samples) < 2:
        return None
    (t0, d0), (t1, d1) = samples[0], samples[-1]
    if t1 <= t0 or d1 <= d0:
        return None
    return (d1 - d0) / (t1 - t0)


def rate_from_timestamps(batch: Batch, now: float) -> float | None:
    """A one-shot estimate for `status` without --watch: requests done since `in_progress_at`."""
    started = batch.in_progress_at
    done = batch.request_counts.completed + batch.request_counts.failed
    if started is None or done <= 0 or now <= started:
        return None
    return done / (now - started)


def eta_seconds(remaining: int, rate: float | None) -> float | None:
    if rate is None or rate <= 0 or remaining < 0:
        return None
    return remaining / rate


# -- the loop ---------------------------------------------------------------------------------------


def retry_after_of(exc: BaseException) -> float | None:
    """The wait a 429 asked for, if the API error carries it (`retry_after`, or response headers)."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, (int, float)):
        return float(value)
    headers = getattr(exc, "headers", None)
    if headers is not None:
        from batchctl.api.retry import parse_retry_after

        return parse_retry_after(headers)
    return None


def classify_failure(exc: BaseException) -> str | None:
    """"rate_limited", "transient" (worth polling again later) or None (give up: re-raise)."""
    from batchctl.api import errors as api

    if isinstance(exc, api.RateLimitError):
        return "rate_limited"
    if isinstance(exc, api.NotImplementedByServerError):
        return None
    if isinstance(exc, (api.APIConnectionError, api.InternalServerError)):
        return "transient"
    return None


def is_known_status(status: str) -> bool:
    from batchctl.api.models import BATCH_STATUSES

    return status in BATCH_STATUSES


Fetch = Callable[[str], "Batch"]
# Runs `fetch` over a cycle's ids and returns, in order, each Batch or the exception it raised.
FetchAll = Callable[[Fetch, Sequence[str]], "list[Batch | Exception]"]


def fetch_in_turn(fetch: Fetch, batch_ids: Sequence[str]) -> list[Batch | Exception]:
    """One GET after another, stopping at the first failure (the rest of the cycle waits for the retry)."""
    results: list[Batch | Exception] = []
    for batch_id in batch_ids:
        try:
            results.append(fetch(batch_id))
        except Exception as exc:
            results.append(exc)
            break
    return results


OnUpdate = Callable[[int, "Batch", bool], None]
OnWait = Callable[[float, "BaseException | None"], None]


def poll_until_terminal(
    batch_ids: Sequence[str],
    fetch: Fetch,
    on_update: OnUpdate,
    *,
    schedule: PollSchedule,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: OnWait | None = None,
    fetch_all: FetchAll = fetch_in_turn,
    classify: Callable[[BaseException], str | None] = classify_failure,
    clock: Callable[[], float] = time.time,
    give_up_after: float = GIVE_UP_AFTER_S,
    unknown_status_limit: float = UNKNOWN_STATUS_LIMIT_S,
) -> list[Batch]:
    """Poll every batch that is not terminal yet until all are; return the final batches in order.

    `fetch_all` runs one cycle's fetches (in turn by default; the CLI fetches many batches at once).
    `on_update(index, batch, changed)` is called after every successful fetch (`changed`: status,
    counts or files moved since the last one). `on_wait(delay, failure)` is told each pause and why.
    The first poll happens at once; a fetch failure classified as neither rate limit nor transient
    propagates, as does KeyboardInterrupt (the caller decides what Ctrl+C means). Transient failures
    go on for `give_up_after` seconds of `clock` (then `WatchGaveUp`); a status unknown to this tool
    that stays put for `unknown_status_limit` seconds raises `StuckInUnknownStatus`.
    """
    latest: list[Batch | None] = [None] * len(batch_ids)
    delay = schedule.interval
    failing_since: float | None = None
    unknown_since: dict[int, tuple[str, float]] = {}
    wait: tuple[float, BaseException | None] | None = None  # the first poll happens at once
    while wait is None or not all(b is not None and b.is_terminal for b in latest):
        if wait is not None:
            if on_wait:
                on_wait(*wait)
            sleep(wait[0])
        changed_any = False
        failure: BaseException | None = None
        pending = [index for index, batch in enumerate(latest) if batch is None or not batch.is_terminal]
        asked = clock()  # an outage counts from the cycle that met it: the client's own retries are in it
        for index, current in zip(pending, fetch_all(fetch, [batch_ids[i] for i in pending])):
            if isinstance(current, Exception):
                kind = classify(current)
                if kind is None:
                    raise current
                failing_since = asked if failing_since is None else failing_since
                if clock() - failing_since >= give_up_after:
                    raise WatchGaveUp(str(current), failing_since, give_up_after) from current
                failure = current
                retry_after = retry_after_of(current) if kind == "rate_limited" else None
                delay = schedule.after_failure(delay, retry_after=retry_after)
                break  # wait before asking this server anything else
            previous = latest[index]
            changed = has_changed(previous, current)
            changed_any = changed_any or changed
            latest[index] = current
            on_update(index, current, changed)
            _check_unknown(index, current, unknown_since, clock(), unknown_status_limit)
        if failure is None:
            failing_since = None
            delay = pause = schedule.after_poll(delay, changed=changed_any)
        else:  # no pause past the moment to give up (failing_since is set): ask once more then
            pause = min(delay, max(failing_since + give_up_after - clock(), 0.0))  # type: ignore[operator]
        wait = (pause, failure)
    return [b for b in latest if b is not None]


def _check_unknown(index: int, batch: Batch, since: dict[int, tuple[str, float]], now: float, limit: float) -> None:
    """Remember since when a batch sits in one unknown status; raise once that lasted `limit` seconds."""
    if is_known_status(batch.status):
        since.pop(index, None)
        return
    status, started = since.setdefault(index, (batch.status, now))
    if status != batch.status:
        since[index] = (batch.status, now)
    elif now - started >= limit:
        raise StuckInUnknownStatus(batch.id, batch.status, format_duration(now - started))

"""`serve --upstream` limits in-process: --tpm, --rpm with --tpm, the upstream's Retry-After (seconds and
HTTP date) as a pause for every worker, the channel pin, and the option checks. Clocks are injected: no test
waits for a limit."""

from __future__ import annotations

import asyncio
import email.utils

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.server.config import ServerConfig
from batchctl.server.executors import UpstreamExecutor, upstream_retry_after
from batchctl.server.limits import UpstreamLimits, estimate_request_tokens

CHAT = "/v1/chat/completions"


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def body(chars: int, max_tokens: int | None = None) -> dict:
    b: dict = {"model": "m", "messages": [{"role": "user", "content": "x" * chars}]}
    if max_tokens is not None:
        b["max_tokens"] = max_tokens
    return b


def test_estimate_counts_the_text_and_the_output_room():
    small = estimate_request_tokens(body(0))
    assert estimate_request_tokens(body(400)) == small + 100
    assert estimate_request_tokens(body(400, max_tokens=50)) == small + 100 + len(',"max_tokens":50') // 4 + 50
    assert estimate_request_tokens({}) == 1


def test_tpm_spaces_starts_by_their_estimated_tokens():
    t = FakeTime()
    limits = UpstreamLimits(None, 600, clock=t.clock, sleep=t.sleep)  # 10 tokens a second
    starts = []

    async def go() -> None:
        for chars in (400, 4000, 400):
            await limits.wait(body(chars))
            starts.append(t.now - 1000.0)

    asyncio.run(go())
    first, second = estimate_request_tokens(body(400)), estimate_request_tokens(body(4000))
    assert second > 600  # dearer than a whole minute's budget: it still runs, and takes the whole minute
    assert starts == pytest.approx([0.0, first / 10, first / 10 + 60])


def test_rpm_and_tpm_together_the_stricter_one_wins():
    t = FakeTime()
    limits = UpstreamLimits(60, 6000, clock=t.clock, sleep=t.sleep)  # 1 request/s; 100 tokens/s
    starts = []

    async def go() -> None:
        for _ in range(3):
            await limits.wait(body(40))  # ~20 tokens: rpm is the stricter
            starts.append(t.now - 1000.0)
        await limits.wait(body(2000))  # ~510 tokens: 5.1 s of the tpm budget
        await limits.wait(body(40))
        starts.append(t.now - 1000.0)

    asyncio.run(go())
    assert starts[:3] == pytest.approx([0.0, 1.0, 2.0])
    assert starts[3] == pytest.approx(3.0 + estimate_request_tokens(body(2000)) / 100)


def test_a_pause_holds_every_start_until_it_is_over():
    t = FakeTime()
    limits = UpstreamLimits(None, None, clock=t.clock, sleep=t.sleep)
    assert not limits.active
    limits.pause(2.5)
    assert limits.active

    async def go() -> list[float]:
        started = []

        async def one() -> None:
            await limits.wait(body(1))
            started.append(t.now)

        await asyncio.gather(one(), one(), one())
        return started

    assert asyncio.run(go()) == [1002.5, 1002.5, 1002.5]


def test_retry_after_in_seconds_http_date_and_ms():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert upstream_retry_after({"retry-after": "7"}, now=lambda: now) == 7
    assert upstream_retry_after({"retry-after": date}, now=lambda: now) == pytest.approx(30)
    assert upstream_retry_after({"retry-after-ms": "250"}, now=lambda: now) == 0.25
    assert upstream_retry_after({"retry-after": "600"}, now=lambda: now) == 600  # a batch waits longer than a CLI
    assert upstream_retry_after({"retry-after": "86400"}, now=lambda: now) == 3600
    assert upstream_retry_after({"retry-after": email.utils.formatdate(now - 5, usegmt=True)}, now=lambda: now) == 0
    assert upstream_retry_after({"retry-after": "soon"}) is None
    assert upstream_retry_after({}) is None and upstream_retry_after(None) is None


def test_429_with_an_http_date_pauses_the_executor_then_retries_with_the_channel_pin():
    """A real aiohttp upstream answers 429 `Retry-After: <date 3 s ahead>` once: the executor waits it out on
    its limits (injected clock) rather than the 0.5 s backoff, then the retry succeeds; both calls pinned."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    calls = []

    async def handler(request):
        calls.append(request.headers.get("authorization"))
        if len(calls) == 1:
            later = email.utils.formatdate(__import__("time").time() + 3, usegmt=True)
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers={"retry-after": later})
        return web.json_response({"object": "chat.completion", "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    async def go():
        upstream = web.Application()
        upstream.router.add_post(CHAT, handler)
        async with TestServer(upstream, host="127.0.0.1") as server:
            config = ServerConfig(upstream=str(server.make_url("/v1")), upstream_key="sk-gw", upstream_channel="7")
            ex = UpstreamExecutor(config)
            t = FakeTime()
            ex.limits = UpstreamLimits(None, None, clock=t.clock, sleep=t.sleep)
            try:
                return await ex.execute(CHAT, {"model": "m", "messages": []}, "a"), t
            finally:
                await ex.aclose()

    outcome, t = asyncio.run(go())
    assert outcome.ok and len(calls) == 2
    assert calls == ["Bearer sk-gw-7", "Bearer sk-gw-7"]
    assert len(t.slept) == 1 and 1.0 < t.slept[0] <= 3.0  # the date's whole seconds, not the 0.5 s backoff


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream-channel", "2"], "--upstream-channel pins a channel of --upstream"),
        (["--upstream", "http://127.0.0.1:9/v1", "--upstream-channel", "2"], "needs the gateway's key"),
        (["--upstream", "http://127.0.0.1:9/v1", "--upstream-key", "k", "--upstream-channel", "two"], "digits"),
    ],
)
@pytest.mark.parametrize("background", [[], ["--background"]])
def test_bad_channel_options_are_one_error_line(args, message, background, monkeypatch):
    monkeypatch.delenv("BATCHCTL_UPSTREAM_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", *args, *background])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr and "Traceback" not in result.output


def _loops() -> list:
    loops = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
    except ImportError:  # Windows: the server runs on asyncio's loop
        return loops
    return [*loops, pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.parametrize("new_loop", _loops())
def test_no_start_comes_before_its_booked_time_on_the_servers_real_loop(new_loop):
    """On the real clock and the loop `serve` runs on: no request starts before the moment its --rpm
    slot (or a Retry-After pause) ends. uvloop rounds a sleep to whole milliseconds on a clock it read
    earlier, so its `asyncio.sleep(d)` can return ~0.2-1 ms before `d` has passed."""
    import time

    limits = UpstreamLimits(12_000, None)  # a start every 5 ms
    interval = 60 / 12_000

    async def go() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        starts, pauses = [], []
        for _ in range(30):
            await limits.wait(body(1))
            starts.append((time.monotonic(), limits.requests._next - interval))  # (started, its slot)
            busy = time.monotonic() + 0.0017  # a worker's own work before the next wait
            while time.monotonic() < busy:
                pass
        for seconds in (0.0033, 0.0071, 0.0123):
            limits.pause(seconds)
            until = limits.paused_until
            await limits.wait(body(1))
            pauses.append((time.monotonic(), until))
        return starts, pauses

    loop = new_loop()
    try:
        starts, pauses = loop.run_until_complete(go())
    finally:
        loop.close()
    early = [round((slot - started) * 1000, 3) for started, slot in starts if started < slot]
    assert early == [], f"starts before their slot, by ms: {early}"
    assert all(started >= until for started, until in pauses), pauses

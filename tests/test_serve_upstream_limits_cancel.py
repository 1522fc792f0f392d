"""`serve --upstream` in-process: a cancel ends the requests that only wait to be sent (`limits.Waits`).

A dropped task ends its wait for the upstream's Retry-After pause, a free slot or the backoff at once with
`Dropped`, and never sends again; a server stop stays a plain cancellation. No test waits for a pause:
the sleeps are injected and never end by themselves.
"""

from __future__ import annotations

import asyncio

import pytest

from batchctl.server.config import ServerConfig
from batchctl.server.executors import UpstreamExecutor
from batchctl.server.limits import Dropped, UpstreamLimits

CHAT = "/v1/chat/completions"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class Forever:
    """A sleep that only ends when cancelled, on a clock that does not move: a pause that would last."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def clock(self) -> float:
        return 1000.0

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.get_running_loop().create_future()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_dropped_task_ends_its_pause_at_once_and_a_stop_stays_a_cancellation():
    t = Forever()
    limits = UpstreamLimits(60, None, clock=t.clock, sleep=t.sleep)
    limits.pause(3000)

    async def go() -> None:
        dropped = asyncio.create_task(limits.wait(BODY))
        stopped = asyncio.create_task(limits.wait(BODY))
        await settle()
        assert limits.waits.waiting == {dropped, stopped} and t.slept == [3000.0, 3001.0]  # (--rpm 60: a second apart)
        limits.waits.drop([dropped])
        with pytest.raises(Dropped):
            await asyncio.wait_for(dropped, 1.0)
        assert not dropped.cancelled() and dropped.cancelling() == 0  # ended by `Dropped`, not cancelled
        assert not stopped.done()  # another batch's request waits on
        stopped.cancel()  # the server stopping
        with pytest.raises(asyncio.CancelledError):
            await stopped
        assert limits.waits.waiting == set()
        # Dropped before it waits (it was in an HTTP call at the cancel): it never starts waiting.
        later = asyncio.create_task(limits.wait(BODY))
        limits.waits.drop([later])
        with pytest.raises(Dropped):
            await asyncio.wait_for(later, 1.0)
        assert len(t.slept) == 2
        limits.waits.forget([dropped, later])
        assert limits.waits.dropped == set()

    asyncio.run(go())


def test_a_request_waiting_for_a_slot_is_dropped_and_the_slot_stays_free():
    ex = UpstreamExecutor(ServerConfig(upstream="http://127.0.0.1:9/v1", concurrency=1))

    async def go() -> None:
        await ex.slots.acquire()  # the only slot: held, as by a request waiting out a pause
        waiting = asyncio.create_task(ex.execute(CHAT, BODY, "a"))
        await settle()
        assert ex.waits.waiting == {waiting}
        ex.waits.drop([waiting])
        with pytest.raises(Dropped):
            await asyncio.wait_for(waiting, 1.0)
        ex.slots.release()
        assert not ex.slots.locked()  # the dropped request took no slot with it
        await ex.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("headers", [{"retry-after": "0"}, {}], ids=["retry-after-0", "backoff"])
def test_a_request_cancelled_during_its_http_call_is_not_sent_again(headers):
    """The call in flight at the cancel finishes; its 429 is not retried (neither at once after a
    `Retry-After: 0`, nor after the backoff)."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    calls = []
    ex_box: list[UpstreamExecutor] = []
    task_box: list[asyncio.Task] = []

    async def handler(request):
        calls.append(1)
        ex_box[0].waits.drop(task_box)  # the batch is cancelled while this call is in flight
        return web.json_response({"error": {"message": "rate limited"}}, status=429, headers=headers)

    async def go() -> None:
        upstream = web.Application()
        upstream.router.add_post(CHAT, handler)
        async with TestServer(upstream, host="127.0.0.1") as server:
            ex = UpstreamExecutor(ServerConfig(upstream=str(server.make_url("/v1")), max_retries=3))
            ex_box.append(ex)
            t = Forever()
            ex._sleep = t.sleep
            task = asyncio.create_task(ex.execute(CHAT, BODY, "a"))
            task_box.append(task)
            try:
                with pytest.raises(Dropped):
                    await asyncio.wait_for(task, 5.0)
            finally:
                await ex.aclose()
            assert t.slept == []  # no backoff either

    asyncio.run(go())
    assert len(calls) == 1

"""`serve --upstream` in-process: the aiohttp executor against real aiohttp servers on 127.0.0.1 (retries,
Retry-After, failures as outcomes, timeouts), and the group commits of in-flight marks and results."""

from __future__ import annotations

import asyncio

from batchctl.server.config import ServerConfig
from batchctl.server.executors import UpstreamExecutor
from server_fixture import free_port

CHAT = "/v1/chat/completions"


def run(coro):
    return asyncio.run(coro)


async def execute_upstream(handler, body: dict, *, url: str | None = None, **config):
    """One request through an UpstreamExecutor whose upstream is `handler`, a real aiohttp server on 127.0.0.1."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        cfg = ServerConfig(upstream=url or str(server.make_url("/v1")), upstream_key="k", **config)
        ex = UpstreamExecutor(cfg)
        try:
            return await ex.execute(CHAT, body, "a")
        finally:
            await ex.aclose()


def test_upstream_retries_429_then_succeeds():
    from aiohttp import web

    calls = []

    async def handler(request):
        calls.append((str(request.url), request.headers.get("authorization"), await request.json()))
        if len(calls) < 3:
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"retry-after-ms": "10"})
        return web.json_response({"object": "chat.completion", "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
                                 headers={"x-request-id": "req_up"})

    out = run(execute_upstream(handler, {"model": "m", "messages": []}))
    assert out.ok and out.request_id == "req_up" and out.usage() == (3, 4) and len(calls) == 3
    assert calls[0][0].endswith("/v1/chat/completions") and calls[0][0].startswith("http://127.0.0.1:")
    assert calls[0][1] == "Bearer k"
    assert calls[0][2] == {"model": "m", "messages": []}


def test_upstream_unparseable_retry_after_still_retries(monkeypatch):
    """`Retry-After: soon` is not a number nor a date: back off as usual instead of failing the request."""
    from aiohttp import web

    slept = []
    real_sleep = asyncio.sleep

    async def no_sleep(seconds, *args):
        if seconds:
            slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("batchctl.server.executors.asyncio.sleep", no_sleep)
    calls = []

    async def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return web.json_response({"error": {"message": "busy"}}, status=503, headers={"retry-after": "soon"})
        return web.json_response({"object": "chat.completion"})

    out = run(execute_upstream(handler, {"model": "m", "messages": []}))
    assert out.ok and len(calls) == 2
    assert slept and 0.375 <= slept[0] <= 0.5  # the first backoff step, jittered


def test_upstream_failures_become_outcomes_never_exceptions():
    from aiohttp import web

    async def always_500(request):
        return web.Response(status=503, headers={"retry-after": "0"}, text="overloaded")

    async def bad_request(request):
        return web.json_response({"error": {"message": "bad", "type": "invalid_request_error"}}, status=400)

    async def not_json(request):
        return web.Response(text="<html>")

    async def slow(request):
        await asyncio.sleep(2)
        return web.json_response({})

    out = run(execute_upstream(always_500, {"model": "m"}, max_retries=2))
    assert out.status_code == 503 and out.body["error"]["message"] == "overloaded"
    out = run(execute_upstream(bad_request, {"model": "m"}, max_retries=2))
    assert out.status_code == 400 and out.body["error"]["message"] == "bad"
    refused = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    out = run(execute_upstream(bad_request, {"model": "m"}, url=refused, max_retries=0))
    assert out.status_code is None and out.error_code == "upstream_unreachable"
    out = run(execute_upstream(not_json, {"model": "m"}, max_retries=2))
    assert out.status_code == 502 and out.body["error"]["code"] == "bad_upstream_response"
    out = run(execute_upstream(slow, {"model": "m"}, timeout=0.2, max_retries=0))
    assert out.status_code is None and out.error_code == "upstream_timeout"
    # The echo model stays offline even with an upstream.
    assert run(go_echo()).body["choices"][0]["message"]["content"] == "echo: hi"


async def go_echo():
    ex = UpstreamExecutor(ServerConfig(upstream=f"http://127.0.0.1:{free_port()}/v1"))
    try:
        return await ex.execute(CHAT, {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}, "a")
    finally:
        await ex.aclose()


def test_group_commits_share_one_transaction_and_keep_marks_before_results(tmp_path):
    """Workers ready together share a commit; a result clears its mark, at the latest with the next start."""
    from batchctl.server.commits import GroupCommitter
    from batchctl.server.store import ResultRow, Store

    store = Store(tmp_path)
    batch = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-x", completion_window="24h",
                               window_seconds=86400, metadata=None)["id"]  # fmt: skip
    groups = []
    record = store.record_group
    store.record_group = lambda batch_id, starts, rows: (groups.append((list(starts), [r.line_no for r in rows])),
                                                          record(batch_id, starts, rows))  # fmt: skip
    committer = GroupCommitter(store, batch)

    async def worker(line_no: int) -> None:
        await committer.start(line_no)
        committer.finish(ResultRow(line_no, f"r{line_no}", True, {"custom_id": f"r{line_no}"}))
        await committer.start(line_no + 10)
        committer.finish(ResultRow(line_no + 10, f"r{line_no + 10}", True, {}))
        await committer.drain()

    async def four() -> None:
        await asyncio.gather(*(worker(n) for n in range(4)))

    run(four())
    assert groups == [([0, 1, 2, 3], []), ([10, 11, 12, 13], [0, 1, 2, 3]), ([], [10, 11, 12, 13])]
    assert store.get_batch(batch)["started_upto"] == 13
    assert store.done_lines(batch) == {0, 1, 2, 3, 10, 11, 12, 13}
    store.close()

"""`serve --upstream` in-process, review of `batches.started_upto`: what a crash counts as in flight when
several batches share the upstream's `--concurrency`, and that a batch that stops on an internal error
leaves no worker of its own sending requests."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from batchctl.server.config import ServerConfig
from batchctl.server.executors import UpstreamExecutor
from batchctl.server.runner import BatchRunner, _unfinished_upto
from batchctl.server.store import Store

CHAT = "/v1/chat/completions"


def _lines(n: int, tag: str) -> str:
    return "".join(
        json.dumps({"custom_id": f"{tag}{i}", "method": "POST", "url": CHAT,
                    "body": {"model": "m", "messages": [{"role": "user", "content": f"{tag}{i}"}]}}) + "\n"
        for i in range(n)
    )  # fmt: skip


def _batch(store: Store, name: str, n: int) -> str:
    path = store.files_dir / f"file-{name}"
    path.write_text(_lines(n, name))
    store.add_file(f"file-{name}", path=path, filename=f"{name}.jsonl", purpose="batch")
    batch = store.create_batch(endpoint=CHAT, input_file_id=f"file-{name}", completion_window="24h",
                               window_seconds=86400, metadata=None)["id"]  # fmt: skip
    store.transition(batch, "in_progress", total=n)
    return batch


async def _upstream(answer_after: float | None, slow: str | None = None):
    """An aiohttp chat upstream counting its calls; it answers after `answer_after` s, or never (None); the
    prompt `slow` after 0.3 s."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    calls: list[str] = []

    async def chat(request):
        body = await request.json()
        prompt = body["messages"][0]["content"]
        calls.append(prompt)
        if answer_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(0.3 if prompt == slow else answer_after)
        return web.json_response({"id": "c", "object": "chat.completion", "choices": []})

    app = web.Application()
    app.router.add_post(CHAT, chat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, calls


def test_a_crash_counts_every_request_sent_and_at_most_concurrency_a_batch(tmp_path):
    """Two batches share one upstream at --concurrency 2: at most 2 requests are ever sent at once. Each batch
    marks a start before its request waits for a shared slot, so the counts after a kill -9 are an upper bound:
    never fewer than were sent (nothing the upstream may have seen twice goes uncounted), at most --concurrency
    a batch (docs/reliability.md)."""
    concurrency = 2

    async def go() -> tuple[int, int]:
        server, calls = await _upstream(None)  # the upstream never answers: requests stay in flight
        store = Store(tmp_path / "state")
        batches = [_batch(store, "a", 6), _batch(store, "b", 6)]
        executor = UpstreamExecutor(ServerConfig(upstream=str(server.make_url("/v1")), concurrency=concurrency))
        runner = BatchRunner(store, executor)
        for batch in batches:
            runner.start(batch)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(calls) >= concurrency:
                break
        await asyncio.sleep(0.3)  # every worker has marked what it will send
        crashed = tmp_path / "crashed"
        (crashed / "files").mkdir(parents=True)
        with sqlite3.connect(crashed / "server.db") as copy:  # the database as a kill -9 now would leave it
            store.db.backup(copy)
        sent = len(calls)
        await runner.shutdown()
        await executor.aclose()
        await server.close()
        store.close()

        after = Store(crashed)
        counted = 0
        for batch in batches:
            row = after.get_batch(batch)
            file = {"path": str(tmp_path / "state" / "files" / f"file-{row['input_file_id'][5:]}")}
            done = after.done_lines(batch)
            counted += after.take_interrupted(batch, lambda upto: _unfinished_upto(file, done, upto))
        after.close()
        return sent, counted

    sent, counted = asyncio.run(go())
    assert sent == concurrency
    assert sent <= counted <= 2 * concurrency, f"{counted} requests counted as in flight, {sent} were ever sent"


def test_a_batch_failing_on_an_internal_error_leaves_no_worker_sending(tmp_path):
    """A commit that fails (a full disk) fails the batch; the workers that were not waiting for that commit
    must stop too, not go on sending the rest of the file upstream for a batch that is already `failed`."""

    async def go() -> tuple[str, int, int]:
        server, calls = await _upstream(0.05, slow="a0")  # line 1 is still in flight when line 6's start fails
        store = Store(tmp_path / "state")
        batch = _batch(store, "a", 60)
        record = store.record_group

        def full_disk_once(batch_id, starts, rows):
            starts = list(starts)
            if 6 in starts and not getattr(full_disk_once, "done", False):
                full_disk_once.done = True  # type: ignore[attr-defined]
                raise OSError(28, "No space left on device")
            return record(batch_id, starts, rows)

        store.record_group = full_disk_once  # type: ignore[method-assign]
        executor = UpstreamExecutor(ServerConfig(upstream=str(server.make_url("/v1")), concurrency=4))
        runner = BatchRunner(store, executor)
        await asyncio.wait_for(runner._run(batch), 10)
        status = store.get_batch(batch)["status"]
        at_failure = len(calls)
        await asyncio.sleep(0.5)  # ten answers' time: an orphaned worker would send more meanwhile
        later = len(calls)
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            task.cancel()
        await executor.aclose()
        await server.close()
        store.close()
        return status, at_failure, later

    status, at_failure, later = asyncio.run(go())
    assert status == "failed"
    assert later == at_failure, f"{later - at_failure} requests sent after the batch failed"


@pytest.mark.parametrize("stopped", ["cancelling", "expired"])
def test_a_restart_into_a_cancel_or_past_the_window_counts_nothing_it_does_not_send_again(tmp_path, stopped):
    """A crash left lines 1-3 started without a result. Resumed as `cancelling`, or past its completion window,
    the batch sends none of them again: the upstream cannot see them twice, so none is counted as possibly
    duplicated."""
    from batchctl.server.store import POSSIBLY_DUPLICATED

    async def go() -> dict:
        store = Store(tmp_path / "state")
        batch = _batch(store, "a", 6)
        store.record_group(batch, [1, 2, 3], [])  # then a kill -9
        if stopped == "cancelling":
            store.transition(batch, "cancelling")
        else:
            store.update_batch(batch, window_seconds=0.0)
        runner = BatchRunner(store, UpstreamExecutor(ServerConfig(upstream="http://127.0.0.1:9/v1", concurrency=2)))
        await asyncio.wait_for(runner._run(batch), 10)
        await runner.executor.aclose()
        row = store.get_batch(batch)
        store.close()
        return row

    row = asyncio.run(go())
    assert row["status"] == ("cancelled" if stopped == "cancelling" else "expired")
    assert POSSIBLY_DUPLICATED not in json.loads(row["metadata"] or "{}")


def test_inflight_rows_of_an_older_release_are_not_counted_twice_with_started_upto(tmp_path):
    """started_upto from this release, then an older one ran the batch (it knows no started_upto) and crashed
    with line 2 marked in its `inflight` table: line 2 is both, and counted once."""
    store = Store(tmp_path / "state")
    batch = _batch(store, "a", 6)
    store.record_group(batch, [1, 2, 3], [])
    with store.db:
        store.db.execute("INSERT INTO inflight (batch_id, line_no, started) VALUES (?, 2, 0)", (batch,))
    file = {"path": str(store.files_dir / "file-a")}
    done = store.done_lines(batch)
    assert store.take_interrupted(batch, lambda upto: _unfinished_upto(file, done, upto)) == 3  # lines 1, 2, 3
    store.close()


def test_echo_lines_of_an_upstream_batch_are_not_counted_as_possibly_duplicated(tmp_path):
    """`serve --upstream` answers a request whose model is `echo` itself: a crash mid-way re-answers it
    locally, the upstream never sees it at all, so it is not counted; the upstream request beside it is."""
    store = Store(tmp_path / "state")
    batch = _batch(store, "a", 4)
    path = store.files_dir / "file-a"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines[:3]:
        line["body"]["model"] = "echo"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    store.record_group(batch, [1, 2, 3, 4], [])  # four workers, then a kill -9
    file = {"path": str(path)}
    done = store.done_lines(batch)
    assert store.take_interrupted(batch, lambda upto: _unfinished_upto(file, done, upto)) == 1  # line 4 only
    store.close()

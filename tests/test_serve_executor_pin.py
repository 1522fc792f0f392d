"""A batch is run only by the executor it was created for: after `serve --upstream` stops mid-batch, a plain
(echo) server on the same data dir -- the autostart's, or `serve --background` -- leaves the batch alone,
saying why, instead of finishing it with fake `echo:` answers; the upstream server finishes it later."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from batchctl.server.store import Store
from test_reliability_upstream import Upstream

pytestmark = pytest.mark.e2e
REQUESTS = 150
ENDPOINT = "/v1/chat/completions"


def _submit(api: str, count: int = REQUESTS) -> str:
    lines = [json.dumps({"custom_id": f"r{i}", "method": "POST", "url": ENDPOINT, "body":
             {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}}) for i in range(count)]  # fmt: skip
    file_id = httpx.post(f"{api}/files", files={"file": ("in.jsonl", "\n".join(lines).encode())},
                         data={"purpose": "batch"}).json()["id"]  # fmt: skip
    return httpx.post(f"{api}/batches", json={"input_file_id": file_id, "endpoint": ENDPOINT,
                      "completion_window": "24h"}).json()["id"]  # fmt: skip


def _crash_mid_batch(start_server, upstream: Upstream):
    """An upstream server (ServerHandle) killed (SIGKILL) with about a third of its batch sent."""
    server = start_server(extra_args=["--upstream", f"http://127.0.0.1:{upstream.server_port}/v1", "--concurrency", "4"])
    _submit(server.base_url)
    deadline = time.monotonic() + 20
    while sum(upstream.seen.values()) < REQUESTS // 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.kill()
    return server


def _batch(server, batch_id: str) -> dict:
    return httpx.get(f"{server.base_url}/batches/{batch_id}").json()


def _wait_status(server, batch_id: str, status: str) -> dict:
    deadline = time.monotonic() + 20
    batch = _batch(server, batch_id)
    while batch["status"] != status:
        assert time.monotonic() < deadline, batch
        time.sleep(0.05)
        batch = _batch(server, batch_id)
    return batch


def _answers(server, file_id: str | None) -> list[str]:
    if file_id is None:
        return []
    text = httpx.get(f"{server.base_url}/files/{file_id}/content").text
    return [json.loads(line)["response"]["body"]["choices"][0]["message"]["content"] for line in text.splitlines()]


@pytest.fixture
def upstream():
    stand_in = Upstream()
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    yield stand_in
    stand_in.shutdown()
    stand_in.server_close()


def test_an_echo_server_leaves_an_upstream_batch_waiting_and_the_upstream_finishes_it(start_server, upstream):
    server = _crash_mid_batch(start_server, upstream)
    upstream_args = list(server.args)
    # The batch's id, from the database the killed server left (the API is down).
    store = Store(server.data_dir)
    batch_id = store.active_batch_ids()[0]
    store.close()

    server.args = []  # plain `python -m batchctl.server`: the echo model, as the autostart starts it
    server.restart()
    time.sleep(1.0)  # the echo model would have finished the rest in well under this
    batch = _batch(server, batch_id)
    assert batch["status"] == "in_progress", batch
    assert batch["request_counts"]["completed"] < REQUESTS
    error = batch["errors"]["data"][0]
    assert error["code"] == "waiting_for_executor"
    assert f"--upstream http://127.0.0.1:{upstream.server_port}/v1" in error["message"]
    waiting = httpx.get(server.root + "/health").json()["waiting_batches"]
    assert [item["id"] for item in waiting] == [batch_id]
    assert waiting[0]["serve"] == f"batchctl serve --upstream http://127.0.0.1:{upstream.server_port}/v1"
    assert f"{batch_id} waits for another executor" in server.log()
    assert "may see them twice" not in server.log(since=server._log_start)  # nothing was sent again

    server.stop()
    server.args = upstream_args
    server.restart()
    batch = _wait_status(server, batch_id, "completed")
    assert batch["errors"] is None  # the note went with the wait
    assert batch["request_counts"] == {"total": REQUESTS, "completed": REQUESTS, "failed": 0}
    answers = _answers(server, batch["output_file_id"])
    assert sorted(answers) == sorted(f"q{i}" for i in range(REQUESTS))  # the upstream's, none lost, no `echo:`
    assert set(upstream.seen) == {f"q{i}" for i in range(REQUESTS)}
    assert "waiting_batches" not in httpx.get(server.root + "/health").json()


def test_a_waiting_batch_can_be_cancelled_by_the_echo_server_without_running_it(start_server, upstream):
    server = _crash_mid_batch(start_server, upstream)
    store = Store(server.data_dir)
    batch_id = store.active_batch_ids()[0]
    before = store.get_batch(batch_id)["completed"]
    store.close()
    server.args = []
    server.restart()
    seen = sum(upstream.seen.values())
    response = httpx.post(f"{server.base_url}/batches/{batch_id}/cancel")
    assert response.status_code == 200, response.text
    batch = _wait_status(server, batch_id, "cancelled")
    assert batch["errors"] is None
    assert batch["request_counts"]["completed"] == before  # nothing more ran
    answers = _answers(server, batch["output_file_id"])
    assert not [a for a in answers if a.startswith("echo")], answers
    assert sum(upstream.seen.values()) == seen
    assert "waiting_batches" not in httpx.get(server.root + "/health").json()


def test_a_waiting_batch_whose_window_ends_while_the_echo_server_runs_ends_expired(start_server, upstream):
    """docs/serve.md: one past its completion window ends `expired` on any server -- also when the window
    ends while the other server runs (it was checked only at start, so the batch stayed in_progress)."""
    import sqlite3

    server = _crash_mid_batch(start_server, upstream)
    store = Store(server.data_dir)
    batch_id = store.active_batch_ids()[0]
    store.close()
    db = sqlite3.connect(server.data_dir / "server.db")
    with db:  # its window ends 2 s from now
        db.execute("UPDATE batches SET window_seconds = ? - created_ts + 2 WHERE id = ?", (time.time(), batch_id))
    db.close()
    server.args = []
    server.restart()
    assert _batch(server, batch_id)["errors"]["data"][0]["code"] == "waiting_for_executor"
    seen = sum(upstream.seen.values())
    batch = _wait_status(server, batch_id, "expired")
    assert batch["errors"] is None
    assert batch["request_counts"]["completed"] + batch["request_counts"]["failed"] == REQUESTS
    assert not [a for a in _answers(server, batch["output_file_id"]) if a.startswith("echo")]
    assert sum(upstream.seen.values()) == seen  # nothing sent
    assert "waiting_batches" not in httpx.get(server.root + "/health").json()


def test_the_autostart_warns_of_a_batch_waiting_for_its_upstream(start_server, upstream, tmp_path):
    from batchctl.server.autostart import ensure_local_server, stop_background_server
    from batchctl.server.config import ServerConfig

    server = _crash_mid_batch(start_server, upstream)
    notes: list[str] = []
    warnings: list[str] = []
    config = ServerConfig(data_dir=server.data_dir)
    try:
        assert ensure_local_server(server.base_url, tmp_path, notes.append, config=config, warn=warnings.append)
        assert len(warnings) == 1, (notes, warnings)
        assert warnings[0].startswith("batch_") and "waits" in warnings[0]
        assert f"batchctl serve --upstream http://127.0.0.1:{upstream.server_port}/v1" in warnings[0]
    finally:
        stop_background_server(tmp_path, server.data_dir)


def test_a_batch_of_an_older_release_is_pinned_by_what_it_did(tmp_path):
    """No executor recorded: one that sent requests upstream waits for an upstream on an echo server; one that
    sent none is taken by the server that resumes it, and recorded."""
    from batchctl.server.echo import EchoExecutor
    from batchctl.server.config import ServerConfig
    from batchctl.server.runner import BatchRunner

    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": ENDPOINT, "body": {"model": "m", "messages":
                    [{"role": "user", "content": "hi"}]}}) + "\n")  # fmt: skip
    store = Store(tmp_path / "state")
    store.add_file("file-1", path=path, filename="in.jsonl", purpose="batch")
    sent = store.create_batch(endpoint=ENDPOINT, input_file_id="file-1", completion_window="24h",
                              window_seconds=86400, metadata=None)  # fmt: skip
    unsent = store.create_batch(endpoint=ENDPOINT, input_file_id="file-1", completion_window="24h",
                                window_seconds=86400, metadata=None)  # fmt: skip
    for batch in (sent, unsent):
        store.transition(batch["id"], "in_progress", total=1)
    store.update_batch(sent["id"], started_upto=0)

    async def resume(identity: str) -> BatchRunner:
        runner = BatchRunner(store, EchoExecutor(ServerConfig()), identity=identity)
        await runner.resume_all()
        await asyncio.gather(*runner.tasks.values())
        return runner

    runner = asyncio.run(resume("echo"))
    assert list(runner.waiting) == [sent["id"]]
    assert store.get_batch(sent["id"])["status"] == "in_progress"
    assert store.get_batch(unsent["id"])["status"] == "completed"
    assert store.get_batch(unsent["id"])["executor"] == "echo"

    runner = asyncio.run(resume("upstream http://127.0.0.1:1/v1"))  # any upstream takes it (which, nobody knows)
    assert runner.waiting == {}
    batch = store.get_batch(sent["id"])
    assert batch["executor"] == "upstream http://127.0.0.1:1/v1" and batch["errors"] is None
    store.close()


def test_the_recorded_executor_names_the_upstream_and_channel_never_a_secret():
    from batchctl.server.config import ServerConfig
    from batchctl.server.executors import executor_identity, serve_for

    assert executor_identity(ServerConfig(latency=0.5, failure_rate=0.1)) == "echo"
    with_password = executor_identity(ServerConfig(upstream="http://bob:hunter2@gw:3000/v1/"))
    assert with_password == "upstream http://bob:****@gw:3000/v1"
    pinned = executor_identity(ServerConfig(upstream="https://gw/v1", upstream_key="sk-secret-1", upstream_channel="2"))
    assert pinned == "upstream https://gw/v1 channel 2" and "sk-" not in pinned
    assert serve_for(pinned) == "batchctl serve --upstream https://gw/v1 --upstream-channel 2"
    # rpm, concurrency and the key are how, not who: the same record
    assert executor_identity(ServerConfig(upstream="https://gw/v1", upstream_key="sk-other", upstream_channel="2",
                                          rpm=60, concurrency=2)) == pinned  # fmt: skip

"""kill -9 of `serve --upstream` mid-batch: only the requests really in flight are sent again, and counted."""

from __future__ import annotations

import collections
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from batchctl.server.store import POSSIBLY_DUPLICATED

pytestmark = pytest.mark.e2e
CONCURRENCY = 4
REQUESTS = 150


class Upstream(ThreadingHTTPServer):
    """A chat-completions upstream that counts every request by its prompt and answers after 20 ms."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the killed server hung up on its requests in flight


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        prompt = body["messages"][0]["content"]
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.seen[prompt] += 1  # type: ignore[attr-defined]
        time.sleep(0.02)
        answer = json.dumps({"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message":
                            {"role": "assistant", "content": prompt}, "finish_reason": "stop"}]}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_a_crash_re_sends_at_most_the_requests_in_flight_and_says_how_many(start_server, tmp_path):
    upstream = Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        server = start_server(extra_args=["--upstream", f"http://127.0.0.1:{upstream.server_port}/v1",
                                          "--concurrency", str(CONCURRENCY)])  # fmt: skip
        lines = [json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body":
                 {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}}) for i in range(REQUESTS)]  # fmt: skip
        api = server.base_url
        file_id = httpx.post(f"{api}/files", files={"file": ("in.jsonl", "\n".join(lines).encode())},
                             data={"purpose": "batch"}).json()["id"]  # fmt: skip
        batch_id = httpx.post(f"{api}/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                              "completion_window": "24h"}).json()["id"]  # fmt: skip
        deadline = time.monotonic() + 20
        while sum(upstream.seen.values()) < REQUESTS // 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        server.kill()  # SIGKILL mid-batch, requests in flight
        server.restart()
        batch = httpx.get(f"{api}/batches/{batch_id}").json()
        while batch["status"] != "completed":
            assert time.monotonic() < deadline, batch
            time.sleep(0.05)
            batch = httpx.get(f"{api}/batches/{batch_id}").json()
    finally:
        upstream.shutdown()
        upstream.server_close()

    assert batch["request_counts"] == {"total": REQUESTS, "completed": REQUESTS, "failed": 0}
    assert set(upstream.seen) == {f"q{i}" for i in range(REQUESTS)}
    twice = sum(n - 1 for n in upstream.seen.values())
    reported = int((batch["metadata"] or {}).get(POSSIBLY_DUPLICATED, 0))
    assert twice <= reported <= CONCURRENCY, (twice, reported)
    assert "may see them twice" in server.log() or reported == 0
    output = httpx.get(f"{api}/files/{batch['output_file_id']}/content").text.splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in output) == sorted(f"r{i}" for i in range(REQUESTS))

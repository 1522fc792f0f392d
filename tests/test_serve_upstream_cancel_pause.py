"""A cancel during the upstream's Retry-After pause (`serve --upstream`): immediate, not an hour later.

Real processes over real HTTP on 127.0.0.1: the server in front of a stand-in upstream
(tests/upstream_stubs.py) that answers 429 + `Retry-After: 3000`. The requests that only wait to be sent
(the pause, a free slot) end at once and are left undone, as a cancel leaves the lines it never started;
a request in an HTTP call still finishes. While the pause lasts, the batch says so in its `errors`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from batch_factory import write_requests
from upstream_stubs import CHAT_PATH, ChatUpstream

pytestmark = pytest.mark.e2e
CANCEL_WITHIN = 5.0  # seconds; without the fix the batch stays `cancelling` for the whole pause (50 min)


def pausing(prompt: str, attempt: int) -> tuple[int, dict[str, str]]:
    return 429, {"retry-after": "3000"}


def create(http: httpx.Client, path) -> dict:
    with open(path, "rb") as f:
        file_id = http.post("/files", files={"file": (path.name, f)}, data={"purpose": "batch"}).json()["id"]
    return http.post("/batches", json={"input_file_id": file_id, "endpoint": CHAT_PATH,
                                       "completion_window": "24h"}).json()  # fmt: skip


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def refused(upstream: ChatUpstream, count: int = 1) -> None:
    """Returns once the upstream has refused `count` calls and the server has had time to read the answers."""
    wait_for(lambda: sum(c.status == 429 for c in upstream.calls) >= count, what=f"{count} refused call(s)")
    time.sleep(0.3)


def cancel_and_time(http: httpx.Client, batch_id: str) -> tuple[dict, float]:
    """Cancel; the batch once it is `cancelled` (or what it was when CANCEL_WITHIN ran out), and how long it took."""
    start = time.monotonic()
    assert http.post(f"/batches/{batch_id}/cancel").json()["status"] in ("cancelling", "cancelled")
    batch = http.get(f"/batches/{batch_id}").json()
    while batch["status"] != "cancelled" and time.monotonic() - start < CANCEL_WITHIN:
        time.sleep(0.02)
        batch = http.get(f"/batches/{batch_id}").json()
    return batch, time.monotonic() - start


def test_cancel_during_a_retry_after_pause_is_immediate_and_sends_nothing_more(start_server, tmp_path):
    """Every request got 429 + Retry-After: 3000 and waits out the pause: a cancel ends the batch within a
    poll, the upstream sees no request after the cancel, and no line is written (as for the lines a cancel
    never started)."""
    n = 6
    with ChatUpstream("ra", fail=pausing) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url, "--concurrency", "2"])
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            batch_id = create(http, write_requests(tmp_path / "in.jsonl", n, model="m"))["id"]
            refused(upstream)  # (the other worker's first request, sent before the pause began, is answered too)
            calls_at_cancel = len(upstream.calls)
            batch, took = cancel_and_time(http, batch_id)
            assert batch["status"] == "cancelled", f"still {batch['status']} {took:.1f} s after the cancel"
            time.sleep(0.3)  # a request sent after the cancel would have arrived by now
            assert len(upstream.calls) == calls_at_cancel
            assert {c.status for c in upstream.calls} == {429}
            # Like the lines never started: no result written, none counted; the pause notice is gone.
            assert batch["output_file_id"] is None and batch["error_file_id"] is None
            assert batch["request_counts"] == {"total": n, "completed": 0, "failed": 0}
            assert batch["errors"] is None
    assert "Traceback" not in server.log()


def test_a_batch_waiting_for_a_slot_during_the_pause_cancels_at_once(start_server, tmp_path):
    """With one slot, held through the pause by the first batch's refused request, a second batch's request
    waits for the slot: cancelling the second batch ends that wait too, and then the first one."""
    with ChatUpstream("ra", fail=pausing) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url, "--concurrency", "1"])
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            first = create(http, write_requests(tmp_path / "a.jsonl", 3, model="m"))["id"]
            refused(upstream)
            second = create(http, write_requests(tmp_path / "b.jsonl", 3, model="m"))["id"]
            wait_for(lambda: http.get(f"/batches/{second}").json()["status"] == "in_progress", what="the 2nd batch")
            time.sleep(0.3)  # its worker waits for the slot
            for batch_id in (second, first):
                batch, took = cancel_and_time(http, batch_id)
                assert batch["status"] == "cancelled", f"still {batch['status']} {took:.1f} s after the cancel"
                assert batch["request_counts"]["completed"] + batch["request_counts"]["failed"] == 0
            time.sleep(0.3)
            assert len(upstream.calls) == 1  # the first batch's first request; nothing after it


def test_a_request_in_flight_at_the_cancel_still_finishes(start_server, tmp_path):
    """One request is in its HTTP call (a slow answer) when the cancel comes, the other waits out a pause:
    the waiting one is dropped at once, the one in flight finishes and is the batch's only line."""
    answering = threading.Event()

    def rule(prompt: str, attempt: int) -> tuple[int, dict[str, str]] | None:
        if prompt == "question 1":
            answering.set()
            time.sleep(1.5)
            return None  # 200
        return 429, {"retry-after": "3000"}

    with ChatUpstream("mixed", fail=rule) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url, "--concurrency", "2"])
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            batch_id = create(http, write_requests(tmp_path / "in.jsonl", 5, model="m"))["id"]
            wait_for(answering.is_set, what="one request in flight")
            refused(upstream)  # and the other one waits out the pause
            assert http.post(f"/batches/{batch_id}/cancel").json()["status"] == "cancelling"
            wait_for(lambda: http.get(f"/batches/{batch_id}").json()["status"] == "cancelled", CANCEL_WITHIN,
                     "cancelled")  # fmt: skip
            batch = http.get(f"/batches/{batch_id}").json()
            assert batch["request_counts"] == {"total": 5, "completed": 1, "failed": 0}
            lines = http.get(f"/files/{batch['output_file_id']}/content").text.splitlines()
            assert len(lines) == 1 and '"custom_id":"req-1"' in lines[0]
            assert batch["error_file_id"] is None
            assert sorted(c.prompt for c in upstream.calls) == ["question 1", "question 2"]


def test_a_request_cancelled_before_its_retry_keeps_the_answer_it_got(start_server, tmp_path):
    """A request answered 500 (the upstream may have worked on it, and billed it) waits in the backoff
    before its retry when the cancel comes: it is not retried, and its 500 stays its line instead of the
    request vanishing as one never sent would. One batch of one request, the upstream failing every call."""

    def failing(prompt: str, attempt: int) -> tuple[int, dict[str, str]]:
        return 500, {}

    with ChatUpstream("fails", fail=failing) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url, "--concurrency", "1"])
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            batch_id = create(http, write_requests(tmp_path / "in.jsonl", 1, model="m"))["id"]
            wait_for(lambda: len(upstream.calls) >= 1, what="the first call")
            batch, took = cancel_and_time(http, batch_id)  # in the 0.4-0.5 s backoff (or the call itself)
            assert batch["status"] == "cancelled", f"still {batch['status']} {took:.1f} s after the cancel"
            time.sleep(0.6)  # a retry would have reached the upstream by now
            assert len(upstream.calls) == 1
            assert batch["request_counts"] == {"total": 1, "completed": 0, "failed": 1}
            text = "".join(http.get(f"/files/{batch[key]}/content").text
                           for key in ("output_file_id", "error_file_id") if batch[key])  # fmt: skip
            assert '"custom_id":"req-1"' in text and "500" in text, text


def cli(server, tmp_path, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """`batchctl ARGS` in its own process (so that a hang ends with the timeout, not the test run)."""
    env = {**os.environ, "BATCHCTL_BASE_URL": server.base_url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "batchctl", *args], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=timeout)  # fmt: skip


def test_a_paused_batch_says_so_in_its_errors_the_cli_status_and_health(start_server, tmp_path):
    """While the pause lasts, a batch in progress carries an `upstream_paused` entry in its `errors` (which
    `batchctl status` shows) saying until when, and /health has `upstream_paused_until`."""
    with ChatUpstream("ra", fail=pausing) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url])
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            batch_id = create(http, write_requests(tmp_path / "in.jsonl", 3, model="m"))["id"]
            refused(upstream)
            shown = http.get(f"/batches/{batch_id}").json()
            assert shown["status"] == "in_progress"
            assert [e["code"] for e in (shown["errors"] or {"data": []})["data"]] == ["upstream_paused"], shown
            message = shown["errors"]["data"][0]["message"]
            assert "Retry-After" in message and " UTC (" in message and "s from now" in message
            assert [b["errors"] for b in http.get("/batches").json()["data"]] == [shown["errors"]]
            health = http.get(server.base_url.removesuffix("/v1") + "/health").json()
            assert time.time() + 2900 < health["upstream_paused_until"] < time.time() + 3100

            status = cli(server, tmp_path, "status", batch_id)
            assert status.returncode == 0, status.stderr
            assert "upstream_paused" in status.stdout and "Retry-After" in status.stdout, status.stdout


def test_cli_cancel_wait_returns_at_once(start_server, tmp_path):
    """The reported case: `batchctl cancel B --yes --wait` during the pause returns with the batch cancelled,
    instead of hanging for the pause."""
    with ChatUpstream("ra", fail=pausing) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url])
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            batch_id = create(http, write_requests(tmp_path / "in.jsonl", 3, model="m"))["id"]
            refused(upstream)
        try:
            cancelled = cli(server, tmp_path, "cancel", batch_id, "--yes", "--wait", "--interval", "0.2",
                            timeout=CANCEL_WITHIN + 5)  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail("`cancel --wait` still waiting: the cancel waits out the upstream's pause")
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"{batch_id}  cancelled" in cancelled.stdout, cancelled.stdout

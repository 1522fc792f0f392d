"""Every state a batch can reach on the local server, with real latency, plus crash recovery (kill -9)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from batchctl.server.echo import echo_should_fail
from test_server_api import chat_lines, create_batch, upload, wait_batch, write_jsonl

pytestmark = pytest.mark.e2e


def results(http: httpx.Client, batch: dict) -> tuple[list[dict], list[dict]]:
    def lines(file_id: str | None) -> list[dict]:
        if file_id is None:
            return []
        return [json.loads(x) for x in http.get(f"/files/{file_id}/content").text.splitlines()]

    return lines(batch["output_file_id"]), lines(batch["error_file_id"])


def test_counts_rise_while_running(start_server, tmp_path):
    server = start_server(latency=0.05, extra_args=["--concurrency", "4"])
    with httpx.Client(base_url=server.base_url) as http:
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", chat_lines(60)))
        batch = create_batch(http, file["id"])
        assert batch["status"] == "validating" and batch["request_counts"]["total"] == 0
        seen = []
        while batch["status"] != "completed":
            batch = http.get(f"/batches/{batch['id']}").json()
            if batch["status"] == "in_progress":
                assert batch["request_counts"]["total"] == 60 and batch["in_progress_at"]
                seen.append(batch["request_counts"]["completed"])
            time.sleep(0.05)
        assert seen == sorted(seen)
        assert any(0 < n < 60 for n in seen), seen  # progress was visible mid-batch
        assert batch["request_counts"] == {"total": 60, "completed": 60, "failed": 0}
        assert batch["error_file_id"] is None


def test_cancel_keeps_results_done(start_server, tmp_path):
    server = start_server(latency=0.2)
    with httpx.Client(base_url=server.base_url) as http:
        rows = chat_lines(100)
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", rows))
        batch = create_batch(http, file["id"])
        wait_batch(http, batch["id"], ("in_progress",))
        while http.get(f"/batches/{batch['id']}").json()["request_counts"]["completed"] < 10:
            time.sleep(0.05)
        cancelling = http.post(f"/batches/{batch['id']}/cancel").json()
        assert cancelling["status"] == "cancelling" and cancelling["cancelling_at"]
        again = http.post(f"/batches/{batch['id']}/cancel")
        assert again.status_code == 200 and again.json()["status"] in ("cancelling", "cancelled")  # idempotent
        done = wait_batch(http, batch["id"], ("cancelled",))
        assert done["cancelled_at"] >= done["cancelling_at"] and done["completed_at"] is None
        output, errors = results(http, done)
        counts = done["request_counts"]
        assert counts["total"] == 100 and 10 <= counts["completed"] < 100 and counts["failed"] == 0
        assert len(output) == counts["completed"] and errors == []
        assert len({o["custom_id"] for o in output}) == len(output)
        conflict = http.post(f"/batches/{batch['id']}/cancel")
        assert conflict.status_code == 200  # cancelling a cancelled batch is a no-op


def test_expired_keeps_finished_and_reports_the_rest(start_server, tmp_path):
    server = start_server(latency=0.3)
    with httpx.Client(base_url=server.base_url) as http:
        rows = chat_lines(100)
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", rows))
        batch = create_batch(http, file["id"], completion_window="2s")
        assert batch["expires_at"] == batch["created_at"] + 2
        done = wait_batch(http, batch["id"], ("expired", "completed"), timeout=10)
        assert done["status"] == "expired" and done["expired_at"] and done["completed_at"] is None
        output, errors = results(http, done)
        assert 0 < len(output) < 100
        assert all(e["error"]["code"] == "batch_expired" and e["response"] is None for e in errors)
        assert sorted(x["custom_id"] for x in output + errors) == sorted(r["custom_id"] for r in rows)
        assert done["request_counts"] == {"total": 100, "completed": len(output), "failed": len(errors)}
        assert http.post(f"/batches/{batch['id']}/cancel").status_code == 409


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_restart_mid_batch_loses_and_duplicates_nothing(start_server, tmp_path, how):
    server = start_server(latency=0.05, failure_rate=0.1)
    rows = chat_lines(400)
    with httpx.Client(base_url=server.base_url) as http:
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", rows))
        batch = create_batch(http, file["id"])
        while (seen := http.get(f"/batches/{batch['id']}").json()["request_counts"])["completed"] < 60:
            time.sleep(0.02)
    assert seen["completed"] + seen["failed"] < 400, "finished before the crash; raise the latency"
    server.kill() if how == "kill" else server.stop()
    server.start()
    with httpx.Client(base_url=server.base_url) as http:
        resumed = http.get(f"/batches/{batch['id']}").json()
        assert resumed["request_counts"]["completed"] >= seen["completed"]  # committed counts survive
        done = wait_batch(http, batch["id"], ("completed",), timeout=20)
        output, errors = results(http, done)
    ids = [x["custom_id"] for x in output + errors]
    assert sorted(ids) == sorted(r["custom_id"] for r in rows), "a request was lost or duplicated"
    expected_failed = {r["custom_id"] for r in rows if echo_should_fail(r["custom_id"], 0.1)}
    assert {e["custom_id"] for e in errors} == expected_failed
    assert done["request_counts"] == {"total": 400, "completed": 400 - len(expected_failed), "failed": len(expected_failed)}
    assert done["in_progress_at"] == batch["created_at"] or done["in_progress_at"] >= batch["created_at"]


def test_pending_batches_survive_restart_in_every_state(start_server, tmp_path):
    """A batch queued right before a crash (still validating) is validated and run after the restart."""
    server = start_server(latency=0.2)
    with httpx.Client(base_url=server.base_url) as http:
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", chat_lines(20)))
        ids = [create_batch(http, file["id"])["id"] for _ in range(3)]
        cancel_me = ids[2]
        http.post(f"/batches/{cancel_me}/cancel")
    server.kill()
    server.start()
    with httpx.Client(base_url=server.base_url) as http:
        for batch_id in ids:
            done = wait_batch(http, batch_id, ("completed", "cancelled"))
            assert done["status"] == ("cancelled" if batch_id == cancel_me else "completed")
            output, _ = results(http, done)
            assert len(output) == done["request_counts"]["completed"]

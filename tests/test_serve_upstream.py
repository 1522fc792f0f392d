"""`batchctl serve --upstream` end to end: a Batch API in front of servers that have none.

Real processes over real HTTP on 127.0.0.1: the CLI -> `python -m batchctl.server --upstream` -> a
stand-in upstream (tests/upstream_stubs.py) that serves only /v1/chat/completions.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from upstream_stubs import CHAT_PATH, ChatUpstream, Router

pytestmark = pytest.mark.e2e
runner = CliRunner()
FINAL = ("completed", "failed", "expired", "cancelled")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_batch(base_url: str, path: Path, timeout: float = 30.0) -> tuple[dict, list[dict], list[dict]]:
    """Upload, create, wait; returns the final batch and its output and error lines."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        with open(path, "rb") as f:
            file_id = http.post("/files", files={"file": (path.name, f)}, data={"purpose": "batch"}).json()["id"]
        batch = http.post("/batches", json={"input_file_id": file_id, "endpoint": CHAT_PATH,
                                            "completion_window": "24h"}).json()  # fmt: skip
        deadline = time.monotonic() + timeout
        while batch["status"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.05)
            batch = http.get(f"/batches/{batch['id']}").json()
        assert batch["status"] == "completed", batch

        def lines(file_id: str | None) -> list[dict]:
            if not file_id:
                return []
            text = http.get(f"/files/{file_id}/content").text
            return [json.loads(line) for line in text.splitlines() if line]

        return batch, lines(batch["output_file_id"]), lines(batch["error_file_id"])


def test_gateway_with_only_chat_completions_gains_batches_with_the_channel_pin_on_every_call(
    start_server, in_tmp, monkeypatch
):
    """A New-API-style gateway (no /v1/files, no /v1/batches) behind `serve --upstream … --upstream-channel 2`:
    the CLI's `submit --wait` and `download` work, and every forwarded call carries `Bearer <key>-2`."""
    n = 30
    with ChatUpstream("gateway") as gateway:
        server = start_server(extra_args=["--upstream", gateway.base_url, "--upstream-key", "sk-gw-secret",
                                          "--upstream-channel", "2", "--concurrency", "4"])  # fmt: skip
        monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
        source = write_requests(in_tmp / "chat.jsonl", n, model="gpt-4o-mini")
        submitted = runner.invoke(app, ["--json", "submit", str(source), "--wait", "--interval", "0.1",
                                        "-o", "results.jsonl"])  # fmt: skip
        assert submitted.exit_code == 0, submitted.output
        batch_id = json.loads(submitted.stdout)["id"]
        downloaded = runner.invoke(app, ["download", batch_id, "-o", "again.jsonl"])
        assert downloaded.exit_code == 0, downloaded.output

        calls = list(gateway.calls)
    for name in ("results.jsonl", "again.jsonl"):
        lines = read_jsonl(in_tmp / name)
        assert sorted(r["custom_id"] for r in lines) == sorted(f"req-{i}" for i in range(1, n + 1))
        for r in lines:
            number = r["custom_id"].split("-")[1]
            assert r["response"]["status_code"] == 200
            assert r["response"]["body"]["choices"][0]["message"]["content"] == f"reply: question {number}"
    # The gateway saw exactly the chat calls, each once, each pinned to channel 2.
    assert len(calls) == n and {c.path for c in calls} == {CHAT_PATH}
    assert {c.authorization for c in calls} == {"Bearer sk-gw-secret-2"}
    assert "sk-gw-secret" not in submitted.output + downloaded.output + server.log()


def test_flaky_upstream_still_answers_or_records_every_request_exactly_once(start_server, tmp_path):
    """~30 % of first attempts fail with 429/500/503 (some requests always fail): output + error files hold
    every custom_id exactly once, and no request the upstream answered was sent again."""
    n = 120

    def bucket(prompt: str) -> int:
        return int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 100

    def fail(prompt: str, attempt: int) -> tuple[int, dict[str, str]] | None:
        b = bucket(prompt)
        if b < 5:
            return 500, {}  # always: ends in the error file once retries run out
        if b < 30 and attempt == 1:
            return [(429, {"retry-after-ms": "20"}), (500, {}), (503, {"retry-after": "0"})][b % 3]
        return None

    with ChatUpstream("flaky", fail=fail) as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url, "--concurrency", "8",
                                          "--max-retries", "1"])  # fmt: skip
        batch, output, errors = run_batch(server.base_url, write_requests(tmp_path / "in.jsonl", n, model="m"))
        answered = upstream.prompts
    ids = [r["custom_id"] for r in output + errors]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(1, n + 1)) and len(set(ids)) == n
    always = {f"req-{i}" for i in range(1, n + 1) if bucket(f"question {i}") < 5}
    flaky = {f"req-{i}" for i in range(1, n + 1) if 5 <= bucket(f"question {i}") < 30}
    assert always and len(flaky) >= 15  # the rule really fails a share of the requests
    assert {r["custom_id"] for r in errors} == always
    assert all(r["response"]["status_code"] == 500 for r in errors)
    assert all(r["response"]["status_code"] == 200 for r in output)
    assert batch["request_counts"] == {"total": n, "completed": n - len(always), "failed": len(always)}
    assert set(answered.values()) == {1} and len(answered) == n - len(always)


def test_cluster_router_in_front_of_two_replicas_spreads_the_batch(start_server, tmp_path):
    """`--upstream` at a cluster's router: the batch completes and both replicas got traffic."""
    n = 40
    with ChatUpstream("replica-a") as a, ChatUpstream("replica-b") as b, Router([a.base_url, b.base_url]) as router:
        server = start_server(extra_args=["--upstream", router.base_url, "--upstream-key", "sk-cluster",
                                          "--concurrency", "4"])  # fmt: skip
        batch, output, errors = run_batch(server.base_url, write_requests(tmp_path / "in.jsonl", n, model="m"))
        calls_a, calls_b = list(a.calls), list(b.calls)
    assert batch["request_counts"]["completed"] == n and not errors
    assert len(calls_a) > 0 and len(calls_b) > 0 and len(calls_a) + len(calls_b) == n
    assert {c.authorization for c in calls_a + calls_b} == {"Bearer sk-cluster"}
    assert {r["response"]["body"]["served_by"] for r in output} == {"replica-a", "replica-b"}

"""`batchctl retry` against a real local server: failures, then a server without them, then every id answered;
`--only-codes`; nothing to retry; `submit --wait --retry N` (an upstream that rate-limits each request once)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from batchctl.jobs.store import Journal
from batchctl.server.echo import echo_should_fail

pytestmark = pytest.mark.e2e
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def add_profile(server, max_requests: int = 50) -> None:
    result = invoke("profile", "add", "small", "--preset", "local", "--base-url", server.base_url,
                    "--max-requests", str(max_requests), "--poll-interval", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.output


def merged_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def succeeded(result: dict) -> bool:
    return not result.get("error") and (result.get("response") or {}).get("status_code") == 200


def test_retry_after_failures_answers_every_id_and_merges_in_input_order(start_server, in_tmp):
    server = start_server(failure_rate=0.3)
    add_profile(server)
    source = write_requests(in_tmp / "chat.jsonl", 60)  # 2 parts: 50 + 10
    failing = [f"req-{i}" for i in range(1, 61) if echo_should_fail(f"req-{i}", 0.3)]
    assert failing
    first = invoke("submit", str(source), "--wait", "--interval", "0.1", "-o", "first.jsonl")
    assert first.exit_code == 0, first.output
    job_id = first.stdout.splitlines()[0].strip()

    only = invoke("retry", job_id, "--only-codes", "rate_limit_exceeded,429")  # none failed so: nothing to do
    assert only.exit_code == 0, only.output
    assert f"Nothing to retry in {job_id}: {60 - len(failing)} of 60 requests succeeded" in only.stderr
    assert f"injected_failure {len(failing)}" in only.stderr

    server.args = ["--latency", "0", "--failure-rate", "0"]  # the same port and data dir, no failures now
    server.restart()
    retried = invoke("--json", "retry", job_id[:12], "--wait", "--interval", "0.1")
    assert retried.exit_code == 0, retried.output
    data = json.loads(retried.stdout)
    assert data["retried"] == len(failing) and data["retried_codes"] == {"injected_failure": len(failing)}
    assert data["before"]["succeeded"] == 60 - len(failing)
    assert data["after"] == {"requests": 60, "succeeded": 60, "failed": 0, "missing": 0, "codes": {}}
    assert {p["retry_of"] for p in data["parts"]} <= {0, 1} and all(p["batch_id"] for p in data["parts"])

    merged = invoke("download", job_id, "--merge", str(source), "-o", "merged.jsonl")
    assert merged.exit_code == 0, merged.output
    assert "60 requests: 60 succeeded, 0 failed, 0 missing." in merged.stderr
    lines = merged_lines(in_tmp / "merged.jsonl")
    assert [r["custom_id"] for r in lines] == [f"req-{i}" for i in range(1, 61)]
    assert all(succeeded(r) for r in lines)
    plain = invoke("--json", "download", job_id, "-o", "plain.jsonl")  # one answer per id, no stale errors
    assert plain.exit_code == 0, plain.output
    assert len(merged_lines(in_tmp / "plain.jsonl")) == 60 and json.loads(plain.stdout)["failed_requests"] == 0

    status = invoke("--json", "status", job_id)
    parts = json.loads(status.stdout)[0]["parts"]
    assert [p["retry_of"] for p in parts[:2]] == [None, None] and all(p["retry_of"] is not None for p in parts[2:])
    shown = invoke("jobs", "show", job_id)
    assert "retry of" in shown.stdout and "2 + " in invoke("jobs").stdout
    again = invoke("retry", job_id)
    assert again.exit_code == 0 and "Nothing to retry" in again.stderr
    with Journal.open() as journal:
        kept = [p.path for p in journal.parts(job_id) if p.retry_of is not None]
    assert kept and all(path.endswith(".jsonl") and "retry-" in path for path in kept)


class RateLimitingUpstream(BaseHTTPRequestHandler):
    """Chat completions: 400 for a question with "bad" in it, else 429 on the first ask of a question, then 200."""

    seen: set[str] = set()
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body["messages"][-1]["content"]
        with self.lock:
            first = question not in self.seen
            self.seen.add(question)
        if "bad" in question:
            status, answer = 400, {"error": {"message": "bad question", "type": "invalid_request_error", "code": "invalid_value"}}
        elif first:
            status, answer = 429, {"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit_exceeded"}}
        else:
            status, answer = 200, {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                "finish_reason": "stop"}]}  # fmt: skip
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def limited(start_server):
    """A server forwarding to an upstream that rate-limits every question once (no server-side retries)."""
    RateLimitingUpstream.seen = set()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), RateLimitingUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    server = start_server(extra_args=["--upstream", f"http://127.0.0.1:{upstream.server_address[1]}/v1",
                                      "--max-retries", "0"])  # fmt: skip
    add_profile(server)
    yield server
    upstream.shutdown()
    upstream.server_close()


def write_questions(path, questions: list[str]):
    lines = [json.dumps({"custom_id": f"q-{n}", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "gpt-test", "messages": [{"role": "user", "content": q}]}})
             for n, q in enumerate(questions, 1)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def test_submit_wait_retry_ends_with_every_request_succeeded(limited, in_tmp):
    source = write_questions(in_tmp / "q.jsonl", [f"question {n}" for n in range(8)])
    result = invoke("--json", "submit", str(source), "--wait", "--retry", "1", "--interval", "0.1", "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["retries"][0]["retried_codes"] == {"rate_limit_exceeded": 8}
    assert data["retries"][0]["after"]["succeeded"] == 8
    assert data["download"]["failed_requests"] == 0
    lines = merged_lines(in_tmp / "out.jsonl")
    assert sorted(r["custom_id"] for r in lines) == [f"q-{n}" for n in range(1, 9)] and all(succeeded(r) for r in lines)


def test_only_codes_retries_the_chosen_codes_only_and_a_cut_off_retry_resumes(limited, in_tmp, monkeypatch):
    source = write_questions(in_tmp / "q.jsonl", ["question a", "bad b", "question c", "bad d"])
    first = invoke("submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl")
    assert first.exit_code == 3, first.output  # completed, but nothing succeeded
    batch_id = first.stdout.splitlines()[0].strip()
    assert batch_id.startswith("batch_")  # a one-part job's batch id names its job too

    import batchctl.jobs.retry as retry_module
    from batchctl.errors import BatchctlError

    def cut_off(ctx, part):
        raise BatchctlError("cut off before the upload")

    with monkeypatch.context() as patch:  # the retry parts are recorded, then the process "dies"
        patch.setattr(retry_module, "advance_part", cut_off)
        cut = invoke("--json", "retry", batch_id, "--only-codes", "429")
    assert cut.exit_code == 1 and "cut off" in cut.output
    retried = invoke("--json", "retry", batch_id, "--wait", "--interval", "0.1")  # finishes that retry, not a new one
    assert retried.exit_code == 0, retried.output
    data = json.loads(retried.stdout)
    assert data["resumed"] is True and "was cut off" in retried.stderr
    assert [(p["retry_of"], p["requests"]) for p in data["parts"]] == [(0, 2)]  # only the 429s
    assert data["after"]["succeeded"] == 2 and data["after"]["codes"] == {"invalid_value": 2}
    kept = invoke("--json", "retry", batch_id, "--only-codes", "rate_limit_exceeded")
    assert json.loads(kept.stdout)["kept_codes"] == {"invalid_value": 2} and json.loads(kept.stdout)["parts"] == []
    merged = invoke("download", batch_id, "--merge", str(source), "-o", "merged.jsonl")  # the batch id: its job
    assert f"was retried in {data['job_id']}" in merged.stderr
    assert "4 requests: 2 succeeded, 2 failed, 0 missing." in merged.stderr
    assert [succeeded(r) for r in merged_lines(in_tmp / "merged.jsonl")] == [True, False, True, False]


def test_a_batch_from_before_jobs_becomes_a_job_when_its_input_is_known(local_server, in_tmp):
    from batch_factory import create_batch
    from batchctl.jobs.records import BatchRecord

    add_profile(local_server)
    batch_id = create_batch(local_server.base_url, in_tmp, 5)
    source = next(in_tmp.glob("input-*.jsonl"))
    with Journal.open() as journal:
        journal.record_batch(BatchRecord(batch_id=batch_id, profile="small", base_url=local_server.base_url,
                                         provider="local", input_path=str(source)))  # fmt: skip
        journal.record_batch(BatchRecord(batch_id="batch_unknown_input", profile="small",
                                         base_url=local_server.base_url, provider="local"))  # fmt: skip
    assert invoke("status", batch_id, "--watch", "--interval", "0.1").exit_code == 0
    result = invoke("--json", "retry", batch_id)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["before"]["succeeded"] == 5 and data["parts"] == []
    with Journal.open() as journal:
        assert [p.batch_id for p in journal.parts(data["job_id"])] == [batch_id]
        assert journal.lookup_batch(batch_id).job_id == data["job_id"]
    unknown = invoke("retry", "batch_unknown_input")
    assert unknown.exit_code == 1 and "does not know its input file" in unknown.stderr

"""`download JOB` of a job of several parts, end to end against a real local server: --content like a
single batch's (every request, failures included, a real bill), --merge refusing an input that is not the
job's, and a part whose file was deleted on the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from batchctl.jobs.store import Journal
from batchctl.server.echo import echo_should_fail

pytestmark = pytest.mark.e2e
runner = CliRunner()
N = 12
FAILURE_RATE = 0.3
FAILING = sorted(f"req-{i}" for i in range(1, N + 1) if echo_should_fail(f"req-{i}", FAILURE_RATE))


def invoke(*args: str):
    return runner.invoke(app, list(args))


def profile(server) -> None:
    """An active profile `small` at `server` with a 5-request limit: 12 requests are a job of 3 parts."""
    result = invoke("profile", "add", "small", "--preset", "local", "--base-url", server.base_url,
                    "--max-requests", "5", "--poll-interval", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.output


@pytest.fixture
def flaky(start_server):
    assert FAILING and len(FAILING) < N
    server = start_server(latency=0.0, failure_rate=FAILURE_RATE)
    profile(server)
    return server


@pytest.fixture
def healthy(start_server):
    server = start_server(latency=0.0)
    profile(server)
    return server


def submitted_job(source: Path) -> str:
    result = invoke("submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    job_id = result.stdout.splitlines()[0].strip()
    assert job_id.startswith("job_")
    return job_id


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bill_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["bill"]


def test_job_content_has_every_request_failures_included_and_the_plain_bill(flaky, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", N)  # 3 parts: 5 + 5 + 2
    job_id = submitted_job(source)
    plain = bill_of(invoke("--json", "download", job_id, "-o", "plain.jsonl"))
    assert plain["usage"]["input_tokens"] > 0 and plain["usage"]["output_tokens"] > 0
    told = invoke("download", job_id, "-o", "told.jsonl")  # people: one count of the requests, both files read
    assert f"Requests       {N - len(FAILING)} succeeded, {len(FAILING)} failed (result lines)" in told.stdout
    assert f"Failed: {len(FAILING)} of {N} requests" in told.stdout
    with Journal.open() as journal:
        recorded = journal.bill(job_id)
    assert recorded and recorded["input_tokens"] == plain["usage"]["input_tokens"]

    content = invoke("--json", "download", job_id, "--content", "-o", "answers.jsonl")
    bill = bill_of(content)
    rows = read_jsonl(in_tmp / "answers.jsonl")
    assert len(rows) == N  # every request, as a single batch's --content: the failures too, with their error
    assert sorted(r["custom_id"] for r in rows if r["error"]) == FAILING
    assert all(r["content"] is None and r["error"].startswith("HTTP 500") for r in rows if r["custom_id"] in FAILING)
    assert all(r["content"] == f"echo: question {r['custom_id'][4:]}" for r in rows if r["custom_id"] not in FAILING)
    parts = [{f"req-{i}" for i in range(1, 6)}, {f"req-{i}" for i in range(6, 11)}, {"req-11", "req-12"}]
    assert [{r["custom_id"] for r in chunk} for chunk in (rows[:5], rows[5:10], rows[10:])] == parts  # part order
    for key in ("input_tokens", "output_tokens", "total_tokens"):  # the bill of a plain download, not zeros
        assert bill["usage"][key] == plain["usage"][key]
    assert (bill["usage"]["succeeded"], bill["usage"]["failed"]) == (N - len(FAILING), len(FAILING))
    assert (bill["failures"]["lines"], bill["failures"]["failed"]) == (N, len(FAILING))
    with Journal.open() as journal:
        assert journal.bill(job_id) == recorded  # the job's saved bill is not replaced by a worse one
    shown = invoke("jobs", "show", job_id)
    assert f"{plain['usage']['input_tokens']:,} input + " in shown.stdout and "(0 input" not in shown.stdout

    merged = invoke("--json", "download", job_id, "--content", "--merge", str(source), "-o", "merged.jsonl")
    assert bill_of(merged)["usage"]["input_tokens"] == plain["usage"]["input_tokens"]
    ordered = read_jsonl(in_tmp / "merged.jsonl")
    assert [r["custom_id"] for r in ordered] == [f"req-{i}" for i in range(1, N + 1)]  # input order
    assert sorted(r["custom_id"] for r in ordered if r["error"]) == FAILING


def test_retried_job_content_counts_each_request_once(flaky, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", N)
    job_id = submitted_job(source)
    retried = invoke("retry", job_id, "--wait", "--interval", "0.1")  # the same requests fail again
    assert retried.exit_code == 3 and "2 requests retried" in retried.stderr, retried.output  # no retry succeeded

    content = invoke("download", job_id, "--content", "-o", "answers.jsonl")
    rows = read_jsonl(in_tmp / "answers.jsonl")
    assert sorted(r["custom_id"] for r in rows) == sorted(f"req-{i}" for i in range(1, N + 1))
    assert sorted(r["custom_id"] for r in rows if r["error"]) == FAILING
    text = " ".join((content.stdout + content.stderr).split())
    assert f"{N - len(FAILING)} succeeded, {len(FAILING)} failed" in text, text
    assert f"Failed: {len(FAILING)} of {N} requests" in text, text


def test_merge_refuses_an_input_that_is_not_the_jobs(healthy, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", N)
    job_id = submitted_job(source)
    other = write_requests(in_tmp / "other.jsonl", 20)  # another file: none of its ids are the job's results

    refused = invoke("download", job_id, "--merge", str(other), "-o", "merged.jsonl")
    assert refused.exit_code == 1, refused.output
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {other} is not the input of {job_id}: its content differs from the file submitted (SHA-256)"]
    assert f"--merge {source}" in refused.stderr and "Traceback" not in refused.output
    assert not list(in_tmp.glob("merged*"))  # nothing downloaded, nothing saved

    copy = in_tmp / "copy.jsonl"  # the same content under another name is the job's input
    copy.write_bytes(source.read_bytes())
    merged = invoke("download", job_id, "--merge", str(copy), "-o", "merged.jsonl")
    assert merged.exit_code == 0, merged.output
    assert f"{N} requests: {N} succeeded, 0 failed, 0 missing." in merged.stderr

    single = write_requests(in_tmp / "three.jsonl", 3)  # a one-part job: its batch id is refused the same way
    result = invoke("submit", str(single), "--wait", "--interval", "0.1", "-o", "three-out.jsonl")
    assert result.exit_code == 0, result.output
    batch_id = result.stdout.splitlines()[0].strip()
    assert batch_id.startswith("batch_")
    refused = invoke("download", batch_id, "--merge", str(source), "-o", "three-merged.jsonl")
    assert refused.exit_code == 1, refused.output
    assert f"Error: {source} is not the input of job_" in refused.stderr and f"--merge {single}" in refused.stderr
    assert not list(in_tmp.glob("three-merged*"))
    assert invoke("download", batch_id, "--merge", str(single), "-o", "three-merged.jsonl").exit_code == 0


def test_a_parts_file_deleted_on_the_server_is_named_and_nothing_is_saved(healthy, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", N)
    job_id = submitted_job(source)
    [status] = json.loads(invoke("--json", "status", job_id).stdout)
    part = status["parts"][1]
    assert invoke("files", "delete", part["output_file_id"], "--yes").exit_code == 0
    before = sorted(p.name for p in in_tmp.iterdir())

    result = invoke("download", job_id, "-o", "x.jsonl")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: part 2 of {job_id} (batch {part['batch_id']}): its output file {part['output_file_id']} "
                      "is gone from the server (HTTP 404), so its results can no longer be downloaded"]  # fmt: skip
    assert "Check the id" not in result.stderr and f"batchctl submit {source} --new" in result.stderr
    assert sorted(p.name for p in in_tmp.iterdir()) == before  # nothing saved, no scratch left
    retried = invoke("retry", job_id)  # retry reads every part's files too: the same words, nothing retried
    assert retried.exit_code == 1, retried.output
    assert f"Error: part 2 (batch {part['batch_id']}): its output file {part['output_file_id']} is gone" in retried.stderr
    assert "nothing was retried" in retried.stderr

    single = write_requests(in_tmp / "three.jsonl", 3)  # a one-part job, downloaded by its batch id
    submitted = invoke("submit", str(single), "--wait", "--interval", "0.1", "-o", "three-out.jsonl")
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.splitlines()[0].strip()
    [batch] = json.loads(invoke("--json", "status", batch_id).stdout)
    assert invoke("files", "delete", batch["output_file_id"], "--yes").exit_code == 0
    result = invoke("download", batch_id, "-o", "y.jsonl")
    assert result.exit_code == 1, result.output
    assert f"Error: batch {batch_id}: its output file {batch['output_file_id']} is gone from the server" in result.stderr
    assert not list(in_tmp.glob("y*"))

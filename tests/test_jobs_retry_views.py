"""Job views after `retry`, against a real local server: `status JOB`, `jobs`, `jobs show`, `usage JOB` and
`status JOB --watch` count the job's requests once each by their newest outcome (as `download JOB` does),
not the attempts; and what `submit` says after it was cut off (the resume hint, a cut-off upload)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from server_fixture import ThreadedApp, _child_env, free_port
from batchctl.cli.app import app
from batchctl.jobs.store import Journal
from batchctl.server.echo import echo_should_fail

pytestmark = pytest.mark.e2e
runner = CliRunner()
REQUESTS = 20
RATE = 0.3


def invoke(*args: str):
    return runner.invoke(app, list(args))


def add_profile(base_url: str, max_requests: int = 50) -> None:
    result = invoke("profile", "add", "t", "--preset", "local", "--base-url", base_url,
                    "--max-requests", str(max_requests), "--poll-interval", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.output


def only_job_id() -> str:
    with Journal.open() as journal:
        jobs = journal.jobs()
        assert len(jobs) == 1, jobs
        return jobs[0].id


@pytest.fixture
def retried_again(start_server, in_tmp):
    """A 20-request job whose failures were retried and failed again (echo failures are deterministic)."""
    server = start_server(failure_rate=RATE)
    add_profile(server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", REQUESTS)
    failing = sum(echo_should_fail(f"req-{i}", RATE) for i in range(1, REQUESTS + 1))
    assert 0 < failing < REQUESTS
    first = invoke("submit", str(source), "--wait", "--interval", "0.1", "-o", "first.jsonl")
    assert first.exit_code == 0, first.output
    job_id = only_job_id()
    again = invoke("retry", job_id, "--wait", "--interval", "0.1")
    assert again.exit_code == 3, again.output  # the retry batch: every request failed again
    return job_id, REQUESTS - failing, failing, source


def test_status_jobs_and_show_count_each_request_once_after_a_retry(retried_again):
    job_id, ok, failed, _ = retried_again
    status = invoke("status", job_id)
    assert status.exit_code == 0, status.output
    assert f"ok {ok}   failed {failed}" in status.stdout and f"{REQUESTS}/{REQUESTS}" in status.stdout
    assert f"Requests: {ok} of {REQUESTS} succeeded, {failed} failed" in status.stdout

    data = json.loads(invoke("status", job_id, "--json").stdout)[0]
    assert data["aggregate"]["request_counts"] == {"total": REQUESTS, "completed": ok, "failed": failed}
    assert data["aggregate"]["status"] == "completed"
    assert data["requests"] == {"total": REQUESTS, "succeeded": ok, "failed": failed, "pending": 0}
    assert [p["request_counts"]["total"] for p in data["parts"]] == [REQUESTS, failed]  # the parts count attempts

    jobs = invoke("jobs")
    assert f"{ok}/{REQUESTS} ({failed} failed)" in jobs.stdout, jobs.stdout
    listed = json.loads(invoke("jobs", "--json").stdout)[0]
    assert listed["requests"] == {"total": REQUESTS, "succeeded": ok, "failed": failed, "pending": 0}
    shown = invoke("jobs", "show", job_id)
    assert f"Requests: {ok} of {REQUESTS} succeeded, {failed} failed" in shown.stdout, shown.stdout

    watched = invoke("status", job_id, "--watch", "--interval", "0.1")  # 15 of 20 succeeded: not a failure
    assert watched.exit_code == 0, watched.output
    assert f"{job_id}  completed  {ok}/{REQUESTS} ({failed} failed)" in watched.stdout


def test_usage_of_a_retried_job_counts_its_requests_and_names_the_job_to_retry(retried_again):
    job_id, ok, failed, source = retried_again
    usage = invoke("usage", job_id)
    assert usage.exit_code == 0, usage.output
    text = usage.stdout + usage.stderr
    assert f"Failed: {failed} of {REQUESTS} requests" in text
    assert f"{ok} succeeded, {failed} failed" in text
    assert "no request succeeded" not in text and "Problem" not in text
    assert f"retryable: batchctl retry {job_id}" in text and "batch_" not in text.split("Next:")[1]

    data = json.loads(invoke("usage", job_id, "--json").stdout)
    assert data["problem"] is None
    assert (data["failures"]["succeeded"], data["failures"]["failed"], data["failures"]["no_success"]) == (ok, failed, False)
    assert data["failures"]["next_step"].endswith(f"batchctl retry {job_id}")
    assert len(data["batches"]) == 2 and {b["job_id"] for b in data["batches"]} == {job_id}

    # The same numbers as the download of the job.
    download = invoke("download", job_id, "--merge", str(source), "-o", "merged.jsonl")
    assert f"{REQUESTS} requests: {ok} succeeded, {failed} failed" in download.stderr, download.output


def test_download_of_a_retried_job_merged_to_stdout_keeps_its_bill(retried_again):
    job_id, ok, failed, source = retried_again
    piped = invoke("download", job_id, "--merge", str(source), "-o", "-")  # the bill read back a file named `-`
    assert piped.exit_code == 0, piped.output
    assert len(piped.stdout.splitlines()) == REQUESTS and "no such file" not in piped.stderr
    with Journal.open() as journal:
        assert journal.bill(job_id)["output_tokens"] > 0


def test_a_retry_part_not_ended_yet_leaves_its_requests_pending(retried_again):
    job_id, ok, failed, _ = retried_again
    result = invoke("retry", job_id)  # no --wait: the new part was last seen validating
    assert result.exit_code == 0, result.output
    listed = json.loads(invoke("jobs", "--json").stdout)[0]  # the journal only, no network
    assert listed["requests"] == {"total": REQUESTS, "succeeded": ok, "failed": 0, "pending": failed}
    assert f"{ok}/{REQUESTS}" in invoke("jobs").stdout


# -- submit cut off -------------------------------------------------------------------------------------


def test_a_submit_that_never_reached_the_server_does_not_call_its_upload_cut_off(in_tmp):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    source = write_requests(in_tmp / "chat.jsonl", 5)
    first = invoke("--base-url", url, "submit", str(source))
    assert first.exit_code == 1 and "Connection refused" in first.stderr, first.output
    again = invoke("--base-url", url, "submit", str(source))
    assert again.exit_code == 1
    assert "did not finish submitting: resuming it" in again.stderr
    assert "cut off" not in again.stderr, again.stderr


class HeldUpload(ThreadedApp):
    """A proxy to `upstream` that holds the first POST /v1/files (body read, no answer) until released;
    `refuse_create`: answers POST /v1/batches with 400 (not forwarded)."""

    def __init__(self, upstream: str, refuse_create: bool = False) -> None:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.holding = threading.Event()
        self.release = threading.Event()
        self.refuse_create = refuse_create

        async def forward(request):
            body = await request.body()
            if request.method == "POST" and request.url.path == "/v1/batches" and self.refuse_create:
                return Response('{"error": {"message": "no quota"}}', 400, media_type="application/json")
            if request.method == "POST" and request.url.path == "/v1/files" and not self.holding.is_set():
                self.holding.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.05)
                return Response('{"error": {"message": "gone"}}', 503, media_type="application/json")
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.request(request.method, self.upstream + request.url.path,
                                              params=request.query_params, content=body, headers=headers)  # fmt: skip
            keep = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
            return Response(answer.content, answer.status_code, headers=keep)

        self.app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # a held upload answers, so the server can stop
        super().__exit__(*exc)


def test_an_interrupted_submit_new_names_the_command_that_resumes_that_job(local_server, in_tmp):
    with HeldUpload(local_server.base_url) as proxy:
        add_profile(proxy.base_url)
        source = write_requests(in_tmp / "chat.jsonl", 5)
        proxy.holding.set()  # the first submit goes through
        earlier = invoke("submit", str(source))
        assert earlier.exit_code == 0, earlier.output
        proxy.holding.clear()
        child = subprocess.Popen([sys.executable, "-m", "batchctl", "submit", str(source), "--new"], cwd=in_tmp,
                                 env=_child_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proxy.holding.wait(30), "the upload never arrived"
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        proxy.release.set()
        with Journal.open() as journal:
            interrupted = next(j for j in journal.jobs() if j.state == "submitting")
        text = " ".join(stderr.split())
        assert child.returncode == 130 and f"interrupted while submitting {interrupted.id}" in text, stderr
        assert f"Run the same submit without --new: it resumes {interrupted.id}" in text

        resumed = invoke("submit", str(source))  # what the hint says
        assert resumed.exit_code == 0, resumed.output
        assert f"{interrupted.id} (started" in resumed.stderr and "resuming it" in resumed.stderr
    with Journal.open() as journal:
        jobs = journal.jobs()
        assert len(jobs) == 2 and journal.get_job(interrupted.id).state == "active"
        assert journal.parts(interrupted.id)[0].batch_id


def test_a_refused_create_under_new_names_the_submit_without_new(local_server, in_tmp):
    with HeldUpload(local_server.base_url, refuse_create=True) as proxy:
        proxy.holding.set()  # uploads go through
        add_profile(proxy.base_url)
        source = write_requests(in_tmp / "chat.jsonl", 5)
        refused = invoke("submit", str(source), "--new")
        assert refused.exit_code == 1, refused.output
        text = " ".join(refused.stderr.split())
        assert "the server refused to create the batch" in text
        assert "Fix the cause, then run the same submit without --new: it reuses the uploaded file" in text
        proxy.refuse_create = False
        again = invoke("submit", str(source))
        assert again.exit_code == 0 and "resuming it" in again.stderr, again.output
    with Journal.open() as journal:
        assert len(journal.jobs()) == 1


def test_retry_wait_help_does_not_promise_a_download():
    result = invoke("retry", "--help")
    text = " ".join(result.stdout.split())
    assert "download its results" not in text and "nothing is downloaded" in text

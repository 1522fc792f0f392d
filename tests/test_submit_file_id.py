"""`submit --input-file-id` keeps the promise `submit FILE` keeps: a create is never sent twice.

Through the real CLI against `batchctl serve --faults` on 127.0.0.1: a create answered 500 after the
batch was made is reconciled and adopted; a kill -9 between sending the create and recording its answer
is reconciled by the next run; the same command again attaches to the batch it made; `--new` makes another.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from server_fixture import _child_env
from batchctl.cli.app import app
from batchctl.jobs.store import Journal

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
runner = CliRunner()
CHAT = "/v1/chat/completions"
CREATED_THEN_500 = {"method": "POST", "path": "/v1/batches", "times": 1, "status": 500, "after": True}


@pytest.fixture
def serve(start_server, tmp_path, monkeypatch):
    """`serve(rules)`: a server with those fault rules; the CLI (in process and in children) points at it."""

    def start(rules: list[dict]):
        path = tmp_path / "faults.json"
        path.write_text(json.dumps({"rules": rules}))
        server = start_server(extra_args=["--faults", str(path)])
        monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
        return server

    return start


def upload(server, tmp_path: Path) -> str:
    source = write_requests(tmp_path / "chat.jsonl", 3)
    files = {"file": ("chat.jsonl", source.read_bytes())}
    answer = httpx.post(server.base_url + "/files", data={"purpose": "batch"}, files=files)
    return answer.json()["id"]


def batches_from(server, file_id: str) -> list[dict]:
    data = httpx.get(server.base_url + "/batches", params={"limit": 100}).json()["data"]
    return [b for b in data if b["input_file_id"] == file_id]


def submit(file_id: str, *extra: str):
    return runner.invoke(app, ["submit", "--input-file-id", file_id, "--endpoint", CHAT, *extra])


def test_a_create_answered_500_after_the_batch_was_made_is_adopted_and_a_rerun_attaches(serve, tmp_path, in_tmp):
    server = serve([CREATED_THEN_500])
    file_id = upload(server, tmp_path)
    first = submit(file_id)
    # The answer was ambiguous: the server is asked, and the batch the create made (by its tags) adopted.
    assert first.exit_code == 0, first.output
    assert "creating the batch failed (HTTP 500" in first.stderr and "adopting it" in first.stderr
    assert "run the same command again" not in first.stderr
    [made] = batches_from(server, file_id)
    assert first.stdout.splitlines()[0] == made["id"]

    again = submit(file_id)  # what a user does after any error: the same command
    assert again.exit_code == 0, again.output
    assert "attaching" in again.stderr and "--new" in again.stderr
    assert again.stdout.splitlines()[0] == made["id"]
    assert len(batches_from(server, file_id)) == 1  # paid once


def test_a_create_refused_with_500_before_it_happened_says_run_again_and_the_rerun_makes_one(serve, tmp_path, in_tmp):
    server = serve([{**CREATED_THEN_500, "after": False}])
    file_id = upload(server, tmp_path)
    first = submit(file_id)
    assert first.exit_code == 1
    assert "the server lists no batch tagged for it: it was not created" in first.stderr
    assert "Run the same submit again" in first.stderr and "checks the server first" in first.stderr
    assert batches_from(server, file_id) == []

    again = submit(file_id)  # as the hint says: the earlier create is checked for, then made once
    assert again.exit_code == 0, again.output
    assert "lists no batch tagged for it" in again.stderr
    assert [b["id"] for b in batches_from(server, file_id)] == [again.stdout.splitlines()[0]]


def test_kill_9_after_the_create_was_sent_then_rerun_gives_one_batch(serve, tmp_path, in_tmp):
    server = serve([])
    file_id = upload(server, tmp_path)
    command = [sys.executable, "-m", "batchctl", "submit", "--input-file-id", file_id, "--endpoint", CHAT]
    killed = subprocess.run(command, cwd=in_tmp, capture_output=True, text=True, timeout=60,
                            env={**_child_env(None), "BATCHCTL_TEST_KILL_AFTER": "create-sent"})  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    [made] = batches_from(server, file_id)  # the create reached the server; its answer was never recorded

    again = submit(file_id)
    assert again.exit_code == 0, again.output
    assert "resuming" in again.stderr and f"found {made['id']}" in again.stderr and "adopting it" in again.stderr
    assert again.stdout.splitlines()[0] == made["id"]
    assert len(batches_from(server, file_id)) == 1
    with Journal.open() as journal:
        [job] = journal.jobs()
        [part] = journal.parts(job.id)
        assert (part.batch_id, part.file_id, part.step, job.state) == (made["id"], file_id, "created", "active")
        assert journal.lookup_batch(made["id"]).job_id == job.id


def test_a_plain_rerun_attaches_and_new_creates_another(serve, tmp_path, in_tmp):
    server = serve([])
    file_id = upload(server, tmp_path)
    first = submit(file_id, "--json")
    assert first.exit_code == 0, first.output
    created = json.loads(first.stdout)
    assert created["object"] == "batch" and "job_id" not in created  # the --json shape is the Batch, as before

    again = runner.invoke(app, ["--debug", "submit", "--input-file-id", file_id, "--endpoint", CHAT, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["id"] == created["id"]
    assert "POST" not in again.stderr and "attaching" in again.stderr  # no create sent
    other = submit(file_id, "--metadata", "run=2")  # other options: another submission
    assert other.exit_code == 0 and other.stdout.splitlines()[0] != created["id"]
    assert len(batches_from(server, file_id)) == 2

    new = submit(file_id, "--new")
    assert new.exit_code == 0, new.output
    assert new.stdout.splitlines()[0] not in (created["id"], other.stdout.splitlines()[0])
    assert len(batches_from(server, file_id)) == 3
    after_new = submit(file_id)  # the same command now stands for the newest
    assert after_new.stdout.splitlines()[0] == new.stdout.splitlines()[0]
    assert len(batches_from(server, file_id)) == 3


def test_a_refused_create_says_run_again_and_the_rerun_creates_one(serve, tmp_path, in_tmp):
    server = serve([{"method": "POST", "path": "/v1/batches", "times": 1, "status": 400}])
    file_id = upload(server, tmp_path)
    refused = submit(file_id)
    assert refused.exit_code == 1
    error, hint = refused.stderr.strip().splitlines()[-2:]
    assert error.startswith(f"Error: creating the batch from {file_id} failed: HTTP 400")
    assert hint == "Fix the cause, then run the same command again."  # true: a 400 made no batch
    again = submit(file_id)
    assert again.exit_code == 0, again.output
    assert "attaching" not in again.stderr and "resuming" not in again.stderr
    assert [b["id"] for b in batches_from(server, file_id)] == [again.stdout.splitlines()[0]]


def test_retry_of_such_a_job_says_it_needs_a_local_input(serve, tmp_path, in_tmp):
    server = serve([])
    file_id = upload(server, tmp_path)
    assert submit(file_id, "--wait", "--interval", "0.1", "-o", "out.jsonl").exit_code == 0
    with Journal.open() as journal:
        [job] = journal.jobs()
    result = runner.invoke(app, ["retry", job.id])
    assert result.exit_code == 1
    assert f"{job.id} was created from the uploaded file {file_id}" in result.stderr
    assert "is gone" not in result.stderr


def test_without_a_batch_list_the_error_says_what_cannot_be_known_and_a_rerun_creates_nothing(serve, tmp_path, in_tmp):
    server = serve([CREATED_THEN_500, {"method": "GET", "path": "/v1/batches", "times": 2, "status": 404}])
    file_id = upload(server, tmp_path)
    first = submit(file_id)
    assert first.exit_code == 1
    assert "cannot list batches (HTTP 404), so batchctl cannot know whether that batch exists" in first.stderr
    assert f"batchctl submit --input-file-id {file_id} --endpoint {CHAT} --new" in first.stderr
    again = submit(file_id)  # it still cannot know: it says so again instead of guessing with a second create
    assert again.exit_code == 1 and "cannot know whether that batch exists" in again.stderr
    assert len(batches_from(server, file_id)) == 1  # (the list answers again): the first create's batch only

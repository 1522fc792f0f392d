"""`batchctl submit` end to end against a real local server: validate, upload, create, --wait, download, --cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from server_fixture import sigint_by_default
from batchctl import journal
from batchctl.cli.app import app
from batchctl.server.echo import echo_should_fail

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def server(start_server, monkeypatch):
    handle = start_server(latency=0.01)
    monkeypatch.setenv("BATCHCTL_BASE_URL", handle.base_url)
    return handle



def remote_files(server) -> list[dict]:
    """The files uploaded to the server (not the output/error files it made)."""
    return [f for f in httpx.get(server.base_url + "/files").json()["data"] if f["purpose"] == "batch"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def results_files(directory: Path) -> tuple[Path, Path]:
    outputs = [p for p in directory.glob("results_*.jsonl") if not p.name.endswith(".errors.jsonl")]
    assert len(outputs) == 1, list(directory.iterdir())
    output = outputs[0]
    return output, output.with_name(output.name.replace(".jsonl", ".errors.jsonl"))


def test_valid_file_with_wait_produces_the_results_file(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 25)
    result = runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1"])
    assert result.exit_code == 0, result.output

    output, errors = results_files(in_tmp)
    assert output.name.startswith("results_echo_")  # results_<model>_<YYYYMMDD-HHMMSS>.jsonl
    lines = read_jsonl(output)
    ids = [r["custom_id"] for r in lines]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(1, 26)) and len(set(ids)) == 25  # each once
    for r in lines:
        n = r["custom_id"].split("-")[1]
        assert r["response"]["body"]["choices"][0]["message"]["content"] == f"echo: question {n}"
    assert not errors.exists()
    assert not list(in_tmp.glob("*.part"))
    assert "batchctl download" not in result.stderr  # already downloaded: no advice to do it again
    batch_id = result.stdout.splitlines()[0].strip()
    assert batch_id.startswith("batch_")
    assert f"Output: {output.name} (25 lines)" in result.stderr

    entry = journal.lookup(batch_id)
    assert entry is not None and entry.input_path == str(source.resolve())
    assert entry.base_url == server.base_url and entry.endpoint == "/v1/chat/completions" and entry.model == "echo"
    assert entry.output_path == str(output.resolve())


def test_submit_without_wait_prints_the_id_and_the_watch_command(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 3)
    result = runner.invoke(app, ["submit", str(source), "--metadata", "project=eval", "--metadata", "run=1"])
    assert result.exit_code == 0, result.output
    batch_id = result.stdout.strip()
    assert batch_id.startswith("batch_")
    assert f"batchctl status --watch {batch_id}" in result.stderr
    assert result.stderr.count("input tokens") == 1, result.stderr  # one count of the file's tokens: the estimate's
    batch = httpx.get(f"{server.base_url}/batches/{batch_id}").json()
    tags = {k: batch["metadata"].pop(k) for k in ("batchctl_job", "batchctl_part", "batchctl_token")}
    assert batch["metadata"] == {"project": "eval", "run": "1"}  # the user's, beside the job's tags
    assert tags["batchctl_job"].startswith("job_") and tags["batchctl_part"] == "0"
    assert batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"
    assert journal.lookup(batch_id).input_file_id == batch["input_file_id"]


def test_invalid_file_is_never_uploaded_and_errors_are_listed(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 5, broken_line=3)
    with source.open("a") as f:
        f.write(json.dumps({"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions",
                            "body": {"model": "echo", "messages": [{"role": "user", "content": "again"}]}}) + "\n")
    result = runner.invoke(app, ["submit", str(source), "--wait"])
    assert result.exit_code == 1
    assert "line 3: not valid JSON" in result.stderr
    assert 'line 6: custom_id "req-1" already used on line 1' in result.stderr
    assert "nothing was uploaded" in result.stderr
    assert remote_files(server) == []
    assert result.stdout == ""


def test_model_rewrite_leaves_the_input_file_alone(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 6, model="not-this-one")
    before = source.read_bytes()
    result = runner.invoke(app, ["submit", str(source), "--model", "qwen-plus", "--wait", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    assert source.read_bytes() == before
    output, _ = results_files(in_tmp)
    assert output.name.startswith("results_qwen-plus_")
    assert {r["response"]["body"]["model"] for r in read_jsonl(output)} == {"qwen-plus"}
    # The upload kept the user's file name; the temporary copy is gone.
    assert [f["filename"] for f in remote_files(server)] == ["chat.jsonl"]


def test_blank_lines_are_left_out_of_the_upload(server, in_tmp):
    source = in_tmp / "gaps.jsonl"
    write_requests(source, 3)
    source.write_text(source.read_text().replace("\n", "\n\n"))
    result = runner.invoke(app, ["submit", str(source)])
    assert result.exit_code == 0, result.output
    assert "blank line" in result.stderr
    [uploaded] = remote_files(server)
    content = httpx.get(f"{server.base_url}/files/{uploaded['id']}/content").content
    assert content.count(b"\n") == 3 and b"\n\n" not in content


def test_json_prints_only_the_batch_object(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 4)
    plain = runner.invoke(app, ["submit", str(source), "--json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["status"] in {"validating", "in_progress", "finalizing", "completed"}

    waited = runner.invoke(app, ["--json", "submit", str(source), "--wait", "--interval", "0.1", "-o", "r.jsonl"])
    assert waited.exit_code == 0, waited.output
    final = json.loads(waited.stdout)  # one object, nothing else on stdout
    assert final["status"] == "completed" and final["request_counts"]["completed"] == 4
    assert len(read_jsonl(in_tmp / "r.jsonl")) == 4
    saved = {f["kind"]: f for f in final["download"]["files"]}  # what was written, as download --json says
    assert saved["output"]["path"].endswith("r.jsonl") and saved["output"]["lines"] == 4
    assert final["download"]["failed_requests"] == 0


def test_cleanup_deletes_the_input_only_after_full_success(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 5)
    # --poll-interval: the seed client's name for --interval
    result = runner.invoke(app, ["submit", str(source), "--wait", "--poll-interval", "0.1", "--cleanup", "-o", "ok.jsonl"])
    assert result.exit_code == 0, result.output
    assert not source.exists()
    assert (in_tmp / "ok.jsonl").exists()


def test_cleanup_keeps_the_input_when_requests_failed(start_server, monkeypatch, in_tmp):
    server = start_server(latency=0.01, failure_rate=0.3)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 20)
    failing = [f"req-{i}" for i in range(1, 21) if echo_should_fail(f"req-{i}", 0.3)]
    assert failing  # the echo model's failures are deterministic
    result = runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1", "--cleanup", "-o", "out.jsonl"])
    assert result.exit_code == 0, result.output  # the batch completed; some of its requests failed
    assert source.exists()
    assert f"{len(failing)} requests failed" in result.stderr
    errors = read_jsonl(in_tmp / "out.errors.jsonl")
    assert sorted(r["custom_id"] for r in errors) == sorted(failing)
    assert len(read_jsonl(in_tmp / "out.jsonl")) == 20 - len(failing)


def test_wait_exit_code_follows_the_final_state(start_server, monkeypatch, in_tmp):
    server = start_server(latency=0.5)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 40)
    result = runner.invoke(
        app, ["submit", str(source), "--completion-window", "1s", "--wait", "--interval", "0.2", "--cleanup"]
    )
    assert result.exit_code == 4, result.output  # expired
    assert source.exists()  # not a success: kept
    assert "expired" in result.stderr


def test_existing_output_is_refused_before_uploading(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 2)
    (in_tmp / "taken.jsonl").write_text("mine")
    result = runner.invoke(app, ["submit", str(source), "--wait", "-o", "taken.jsonl"])
    assert result.exit_code == 1
    assert "taken.jsonl already exists" in result.stderr and "--force" in result.stderr
    assert remote_files(server) == []
    assert (in_tmp / "taken.jsonl").read_text() == "mine"


def test_bad_completion_window_and_metadata_are_refused_before_uploading(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 2)
    window = runner.invoke(app, ["submit", str(source), "--completion-window", "soon"])
    assert window.exit_code == 1 and 'completion window "soon"' in window.stderr
    meta = runner.invoke(app, ["submit", str(source), "--metadata", "oops"])
    assert meta.exit_code == 1 and "key=value" in meta.stderr
    assert remote_files(server) == []


def test_metadata_the_server_refuses_is_an_error_not_a_batch_created_without_it(server, in_tmp):
    """A 400 `Invalid 'metadata': …` (a value over 512 characters) refuses this metadata, not the field: the
    create went again without any metadata (the user's and the job's tags), and made the batch."""
    source = write_requests(in_tmp / "chat.jsonl", 2)
    result = runner.invoke(app, ["submit", str(source), "--metadata", "note=" + "x" * 600])
    assert result.exit_code == 1, result.output
    assert "refused to create the batch" in result.stderr and "metadata" in result.stderr
    assert "creating the batch without it" not in result.stderr
    assert httpx.get(server.base_url + "/batches").json()["data"] == []


def test_input_file_id_creates_a_batch_without_uploading_again(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 2)
    uploaded = httpx.post(server.base_url + "/files", data={"purpose": "batch"},
                          files={"file": ("chat.jsonl", source.read_bytes())}).json()
    result = runner.invoke(app, ["submit", "--input-file-id", uploaded["id"], "--endpoint", "/v1/chat/completions"])
    assert result.exit_code == 0, result.output
    batch = httpx.get(f"{server.base_url}/batches/{result.stdout.strip()}").json()
    assert batch["input_file_id"] == uploaded["id"]
    assert len(remote_files(server)) == 1


def test_a_create_from_a_file_id_that_is_not_there_says_to_check_the_id(server, in_tmp):
    # The file was the user's, not uploaded by this run: no "uploaded as", no "run the same command".
    result = runner.invoke(app, ["submit", "--input-file-id", "file-does-not-exist", "--endpoint", "/v1/chat/completions"])
    assert result.exit_code == 1
    error, hint = result.stderr.strip().splitlines()[-2:]
    assert error.startswith("Error: creating the batch from file-does-not-exist failed: HTTP 404")
    assert hint == "Check the file id: batchctl files list shows the files on the server."
    assert "Traceback" not in result.output


def test_usage_errors(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 1)
    assert runner.invoke(app, ["submit"]).exit_code == 2
    assert runner.invoke(app, ["submit", str(source), "--cleanup"]).exit_code == 2  # needs --wait
    assert runner.invoke(app, ["submit", "--input-file-id", "f", "--model", "m"]).exit_code == 2
    assert runner.invoke(app, ["submit", str(source), "-o", "r.jsonl"]).exit_code == 2  # results need --wait


def test_debug_after_the_command_logs_http_exchanges_like_the_seed(start_server, monkeypatch, in_tmp):
    server = start_server(api_key="sk-secret-key-1234")
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    monkeypatch.setenv("BATCHCTL_API_KEY", "sk-secret-key-1234")
    source = write_requests(in_tmp / "chat.jsonl", 2)
    result = runner.invoke(app, ["submit", str(source), "--debug"])
    assert result.exit_code == 0, result.output
    assert "HTTP POST " in result.stderr and "/batches" in result.stderr
    assert "sk-secret-key-1234" not in result.output
    quiet = runner.invoke(app, ["submit", str(source)])
    assert "HTTP POST " not in quiet.stderr


def test_wait_keeps_stdout_for_the_batch_id(server, in_tmp):
    """`ID=$(batchctl submit f --wait)` gets the id alone: progress and the final panel are talk."""
    source = write_requests(in_tmp / "chat.jsonl", 5)
    result = runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith("batch_")
    batch_id = result.stdout.strip()
    assert f"{batch_id}  completed  5/5" in result.stderr


def test_ctrl_c_during_wait_says_how_to_resume_the_download(start_server, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    server = start_server(latency=0.05, extra_args=["--concurrency", "1"])  # ~2 s for 40 requests
    source = write_requests(tmp_path / "chat.jsonl", 40)
    env = {**os.environ, "BATCHCTL_BASE_URL": server.base_url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path, preexec_fn=sigint_by_default,
    )  # fmt: skip
    batch_id = proc.stdout.readline().strip()  # printed once the batch exists
    assert batch_id.startswith("batch_"), batch_id + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert f"Resume with: batchctl download {batch_id} --wait -o out.jsonl" in stderr
    assert not (tmp_path / "out.jsonl").exists()
    # The advice works: it waits for the batch and writes every result.
    resumed = subprocess.run(
        [sys.executable, "-m", "batchctl", "download", batch_id, "--wait", "--interval", "0.1", "-o", "out.jsonl"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 40


def test_a_completed_batch_with_nothing_succeeded_is_a_failure(start_server, monkeypatch, in_tmp):
    server = start_server(failure_rate=1.0)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 3)
    waited = runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl"])
    assert waited.exit_code == 3, waited.output
    assert "completed, but 0 of 3 requests succeeded" in waited.stderr
    batch_id = waited.stdout.strip()
    shown = runner.invoke(app, ["status", batch_id])
    assert shown.exit_code == 0 and "completed — 0 of 3 succeeded" in shown.stdout
    assert runner.invoke(app, ["status", batch_id, "--watch", "--interval", "0.1"]).exit_code == 3
    again = runner.invoke(app, ["download", batch_id, "-o", "again.jsonl"])
    assert again.exit_code == 3 and (in_tmp / "again.errors.jsonl").exists()


def test_the_estimate_is_shown_and_max_cost_refuses_before_uploading(server, in_tmp):
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "max_tokens": 1000, "messages": [{"role": "user", "content": "say hi " * 50}]}}
        for i in range(20)
    ]  # fmt: skip
    source = in_tmp / "priced.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = json.loads(runner.invoke(app, ["validate", str(source), "--json"]).stdout)
    estimate = report["estimate"]
    assert estimate["requests"] == 20 and estimate["output_tokens_max"] == 20_000 and estimate["currency"] == "USD"
    refused = runner.invoke(app, ["submit", str(source), "--max-cost", "0.0001"])
    assert refused.exit_code == 1, refused.output
    error = next(line for line in refused.stderr.splitlines() if line.startswith("Error: "))
    assert "nothing was uploaded" in error and "--max-cost" in refused.stderr
    assert remote_files(server) == []
    allowed = runner.invoke(app, ["submit", str(source), "--max-cost", "100"])
    assert allowed.exit_code == 0, allowed.output
    assert "Estimate: 20 requests" in allowed.stderr
    assert len(remote_files(server)) == 1


def test_download_bills_and_status_explains_failures(start_server, monkeypatch, in_tmp):
    server = start_server(failure_rate=0.5)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 10)
    batch_id = runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl"]).stdout.strip()
    downloaded = json.loads(runner.invoke(app, ["--json", "download", batch_id, "-o", "again.jsonl"]).stdout)
    bill = downloaded["bill"]
    assert bill["usage"]["succeeded"] + bill["failures"]["failed"] == 10 and bill["failures"]["failed"] > 0
    shown = runner.invoke(app, ["status", batch_id])
    assert f"Failed: {bill['failures']['failed']} of 10 requests" in shown.stdout
    assert json.loads(runner.invoke(app, ["status", batch_id, "--json"]).stdout)[0]["failures"]["failed"] == bill["failures"]["failed"]


@pytest.mark.parametrize("model", ["bad\udcffname", "", "tab\tname"])
def test_a_model_that_cannot_be_written_is_refused_before_uploading(server, in_tmp, model):
    source = write_requests(in_tmp / "chat.jsonl", 2)
    result = runner.invoke(app, ["submit", str(source), "--model", model])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.output
    assert remote_files(server) == []


def test_submit_wait_records_the_bill_for_jobs(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 3)
    assert runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl"]).exit_code == 0
    [job] = json.loads(runner.invoke(app, ["jobs", "--json"]).stdout)
    assert job["bill"] is not None and job["bill"]["output_tokens"] > 0


@pytest.mark.parametrize(("uploaded", "words"), [(True, "the input was uploaded as file-1, but creating the batch failed: HTTP 500"),
                                                 (False, "creating the batch from file-1 failed: HTTP 500")])  # fmt: skip
def test_a_failed_create_names_the_file_and_what_to_run(uploaded, words):
    import httpx

    from batchctl.api import BatchClient
    from batchctl.submission import BatchCreateError, create_batch

    answer = httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}})
    client = BatchClient("http://x/v1", "sk-test", max_retries=0, transport=httpx.MockTransport(lambda request: answer))
    with pytest.raises(BatchCreateError) as info:
        create_batch(client, input_file_id="file-1", endpoint="/v1/chat/completions", uploaded=uploaded)
    assert info.value.message.startswith(words)
    again = "batchctl submit --input-file-id file-1 --endpoint /v1/chat/completions"
    assert (again in info.value.hint) is uploaded  # only an upload of this run is worth creating from again
    # A 500 may come after the batch was made: the hint sends the user to the server's list, not to a re-send.
    assert "check `batchctl list`" in info.value.hint and "run the same command again" not in info.value.hint

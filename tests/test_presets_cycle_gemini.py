"""Gemini's OpenAI-compatible layer against its stand-in over real HTTP: what works (status, list, cancel
of `batches/…` ids, create from a file uploaded with Google's own API) and the clear refusal, before any
request, of what it does not serve (file upload and download).
"""

from __future__ import annotations

import json

import pytest
from gateway_stub import ADMIN_KEY, provider_stub  # noqa: F401
from typer.testing import CliRunner

from batchctl.cli.app import app

LINES = [
    {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": f"say r{i}"}]}}
    for i in range(2)
]  # fmt: skip
pytestmark = pytest.mark.parametrize("provider_stub", ["gemini"], indirect=True)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def gemini(provider_stub, in_tmp):
    added = run("profile", "add", "gem", "--preset", "gemini", "--base-url", provider_stub.base_url, "--api-key", ADMIN_KEY)
    assert added.exit_code == 0, added.output
    return provider_stub


def one_error_line(result) -> str:
    """The refusal: exit 1, exactly one `Error:` line, no traceback; returns stderr."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.stderr
    return result.stderr


def test_status_list_cancel_and_create_with_slash_ids(gemini, tmp_path):
    done = gemini.seed_batch(LINES, status="completed")
    running = gemini.seed_batch(LINES, status="in_progress")
    gemini.batches[running]["_hold"] = True
    assert done.startswith("batches/") and running.startswith("batches/")

    status = run("status", done)
    assert status.exit_code == 0 and done in status.stdout and "completed" in status.stdout, status.output
    listed = run("list")
    assert listed.exit_code == 0 and done in listed.stdout and running in listed.stdout, listed.output
    cancelled = run("cancel", running, "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert gemini.batches[running]["status"] == "cancelled"
    [as_json] = json.loads(run("status", running, "--json").stdout)
    assert (as_json["id"], as_json["status"]) == (running, "cancelled")

    # A file uploaded with Google's Files API (its id has a slash too) makes a batch through this layer.
    input_file = gemini.batches[done]["input_file_id"]
    created = run("submit", "--input-file-id", input_file, "--endpoint", "/v1/chat/completions")
    assert created.exit_code == 0, created.output
    new_id = created.stdout.splitlines()[0].split()[0]
    assert new_id.startswith("batches/") and new_id in gemini.batches
    assert run("status", new_id).exit_code == 0

    # Every id went out as one encoded path segment, never as two path components.
    raw = {r.raw_path for r in gemini.batch_calls()}
    encoded = done.replace("/", "%2F")
    assert f"/v1beta/openai/batches/{encoded}" in raw
    assert f"/v1beta/openai/batches/{running.replace('/', '%2F')}/cancel" in raw
    assert not any(path.startswith("/v1beta/openai/batches/batches/") for path in raw), raw


def test_upload_is_refused_before_any_request(gemini, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    for args in (("submit", str(source)), ("submit", str(source), "--wait"), ("submit", "--input-file-id", "files/x", "--wait")):
        stderr = one_error_line(run(*args))
        assert "gemini's OpenAI-compatible API does not serve files" in stderr
        assert "--input-file-id" in stderr and "Files API" in stderr  # what to do instead
    assert gemini.requests == []
    assert json.loads(run("jobs", "--json").stdout) == []  # nothing half-started to resume


def test_download_is_refused_before_any_request(gemini, in_tmp):
    done = gemini.seed_batch(LINES, status="completed")
    stderr = one_error_line(run("download", done))
    assert "does not serve files" in stderr and "downloading the results of batches/" in stderr
    assert "client.files.download" in " ".join(stderr.split())
    assert gemini.requests == []
    assert list(in_tmp.iterdir()) == []  # no `batches/` directory, no partial file

"""`batchctl cancel` against a real local server: confirmation, --yes, --wait, finished batches."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from batch_factory import create_batch, retrieve
from batchctl.cli.app import app

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def server(start_server, monkeypatch):
    # 40 requests x 0.05 s one at a time: ~2 s, long enough to cancel mid-run.
    handle = start_server(latency=0.05, extra_args=["--concurrency", "1"])
    monkeypatch.setenv("BATCHCTL_BASE_URL", handle.base_url)
    return handle


def running(server, tmp_path) -> str:
    batch_id = create_batch(server.base_url, tmp_path, 40)
    deadline = time.monotonic() + 10
    while retrieve(server.base_url, batch_id).status == "validating" and time.monotonic() < deadline:
        time.sleep(0.02)
    return batch_id


def test_without_yes_off_a_terminal_refuses_and_cancels_nothing(server, tmp_path):
    batch_id = running(server, tmp_path)
    result = runner.invoke(app, ["cancel", batch_id])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: refusing to cancel without confirmation: this is not a terminal")
    assert f"batchctl cancel {batch_id} --yes" in result.stderr
    assert retrieve(server.base_url, batch_id).status == "in_progress"


def test_on_a_terminal_it_asks(server, tmp_path, monkeypatch):
    monkeypatch.setattr("batchctl.cli.output.is_interactive", lambda stream=None: True)
    batch_id = running(server, tmp_path)
    declined = runner.invoke(app, ["cancel", batch_id], input="n\n")
    assert declined.exit_code == 1
    assert f"Cancel {batch_id}?" in declined.stderr
    assert "Nothing cancelled." in declined.stderr
    assert retrieve(server.base_url, batch_id).status == "in_progress"

    accepted = runner.invoke(app, ["cancel", batch_id], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert retrieve(server.base_url, batch_id).status in ("cancelling", "cancelled")


def test_yes_cancels_each(server, tmp_path):
    ids = [running(server, tmp_path) for _ in range(2)]
    result = runner.invoke(app, ["cancel", *ids, "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert [b["id"] for b in json.loads(result.stdout)] == ids
    for batch_id in ids:
        assert retrieve(server.base_url, batch_id).status in ("cancelling", "cancelled")


def test_wait_watches_until_cancelled(server, tmp_path):
    batch_id = running(server, tmp_path)
    result = runner.invoke(app, ["cancel", batch_id, "--yes", "--wait", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    assert f"{batch_id}  cancelled  " in result.stdout
    final = retrieve(server.base_url, batch_id)
    assert final.status == "cancelled"
    assert final.request_counts.completed < 40  # it really stopped early


def test_wait_json_is_ndjson_ending_cancelled(server, tmp_path):
    batch_id = running(server, tmp_path)
    result = runner.invoke(app, ["cancel", batch_id, "--yes", "--wait", "--json", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert objects[-1]["status"] == "cancelled"


def test_cancelling_a_finished_batch_is_a_clear_message(start_server, monkeypatch, tmp_path):
    server = start_server()
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    batch_id = create_batch(server.base_url, tmp_path, 2)
    assert runner.invoke(app, ["status", batch_id, "--watch", "--interval", "0.1"]).exit_code == 0
    result = runner.invoke(app, ["cancel", batch_id, "--yes"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {batch_id} has already finished (completed); there is nothing to cancel"
    )
    assert "Traceback" not in result.output


def test_unknown_id_is_reported_and_the_others_still_cancelled(server, tmp_path):
    batch_id = running(server, tmp_path)
    result = runner.invoke(app, ["cancel", "batch_nope", batch_id, "--yes"])
    assert result.exit_code == 1
    assert "Error: batch_nope: no such batch" in result.stderr
    assert retrieve(server.base_url, batch_id).status in ("cancelling", "cancelled")

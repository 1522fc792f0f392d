"""`batchctl list` against a real local server: table, JSON, pages, --all, --status."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batch_factory import create_batch
from gateway_stub import ADMIN_KEY, gateway  # noqa: F401
from batchctl.cli.app import app
from batchctl.listing import ListQuery, server_params
from batchctl.providers import get_provider

pytestmark = pytest.mark.e2e
runner = CliRunner()


def test_empty_list_is_an_empty_json_array(server):
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "[]\n"
    people = runner.invoke(app, ["list"])
    assert people.exit_code == 0
    assert people.stdout == ""
    assert "No batches." in people.stderr


def test_all_follows_every_page(server, tmp_path):
    ids = [create_batch(server.base_url, tmp_path, 2, metadata={"description": f"job {i}"}) for i in range(5)]
    result = runner.invoke(app, ["list", "--all", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert [b["id"] for b in json.loads(result.stdout)] == ids[::-1]  # newest first, 3 pages of 2, 2, 1


def test_one_page_then_the_next(server, tmp_path):
    ids = [create_batch(server.base_url, tmp_path, 2) for _ in range(3)][::-1]
    first = runner.invoke(app, ["list", "--limit", "2", "--json"])
    assert first.exit_code == 0, first.output
    assert [b["id"] for b in json.loads(first.stdout)] == ids[:2]
    assert f"More batches: batchctl list --after {ids[1]}" in first.stderr
    second = runner.invoke(app, ["list", "--limit", "2", "--after", ids[1], "--json"])
    assert [b["id"] for b in json.loads(second.stdout)] == ids[2:]
    assert "More batches" not in second.stderr


def test_table_for_people(server, tmp_path):
    batch_id = create_batch(server.base_url, tmp_path, 2, metadata={"description": "nightly eval"})
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]  # piped: plain lines, the header first
    for column in ("id", "status", "created", "endpoint", "done", "model / description"):
        assert column in header
    row = next(line for line in result.stdout.splitlines() if batch_id in line)
    assert "chat/completions" in row  # the endpoint without its /v1/ prefix
    assert "echo" in row  # the model, once the server has validated the file
    assert "ago" in row or "just now" in row


def test_status_filter(server, tmp_path):
    good = create_batch(server.base_url, tmp_path, 2)
    bad = create_batch(server.base_url, tmp_path, 2, broken_line=1)
    runner.invoke(app, ["status", good, bad, "--watch", "--interval", "0.1"])
    failed = runner.invoke(app, ["list", "--status", "failed", "--json"])
    assert [b["id"] for b in json.loads(failed.stdout)] == [bad]
    nothing = runner.invoke(app, ["list", "--status", "expired"])
    assert "No batches in status expired." in nothing.stderr


def test_server_params_follow_the_providers_list_filters():
    assert server_params(get_provider("openai"), ListQuery(status="failed"), {}) == {}
    assert server_params(get_provider("dashscope"), ListQuery(status="failed"), {}) == {"status": "failed"}
    assert server_params(get_provider("dashscope"), ListQuery(ds_name="nightly"), {}) == {"ds_name": "nightly"}
    assert server_params(get_provider("openai"), ListQuery(ds_name="nightly"), {}) == {}


def test_all_copes_with_pages_shorter_than_asked(gateway):
    """A provider may answer fewer items than `limit` with has_more true: --all still gets every one."""
    gateway.max_page_size = 2
    for n in range(5):
        gateway.batches[f"batch_{n:04d}"] = {
            "id": f"batch_{n:04d}", "object": "batch", "endpoint": "/v1/chat/completions", "status": "completed",
            "input_file_id": "file-x", "completion_window": "24h", "created_at": 1_700_000_000 + n,
            "request_counts": {"total": 1, "completed": 1, "failed": 0},
        }  # fmt: skip
    added = runner.invoke(
        app, ["profile", "add", "gw", "--provider", "newapi", "--base-url", gateway.base_url,
              "--api-key", ADMIN_KEY, "--channel", "7"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    result = runner.invoke(app, ["list", "--all", "--limit", "10", "--json"])
    assert result.exit_code == 0, result.output
    assert [b["id"] for b in json.loads(result.stdout)] == [f"batch_{n:04d}" for n in range(4, -1, -1)]
    pages = [r for r in gateway.requests if r.method == "GET" and r.path == "/v1/batches"]
    assert len(pages) == 3  # 2 + 2 + 1


def test_piped_table_is_not_cut_to_the_terminal_width(server, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    batch_id = create_batch(server.base_url, tmp_path, 2, metadata={"description": "a long description of the job"})
    result = runner.invoke(app, ["list"])
    row = next(line for line in result.stdout.splitlines() if batch_id in line)
    assert "chat/completions" in row and "echo" in row and "…" not in row


def test_unknown_status_is_a_usage_error():
    result = runner.invoke(app, ["list", "--status", "bogus"])
    assert result.exit_code == 2
    assert "'bogus' is not a batch status" in result.stderr and "in_progress" in result.stderr

"""Provider specifics through the CLI: DashScope windows, limits, metadata and list filters; the OpenAI env
fallback; `--delete-remote`; `batchctl files`."""

from __future__ import annotations

import json

import pytest
from gateway_stub import ADMIN_KEY, ADMIN_TOKEN, gateway  # noqa: F401
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.providers import MB, format_list_time, get_provider


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def line(custom_id: str, **body) -> str:
    body = {"model": "qwen-plus", "messages": [{"role": "user", "content": custom_id}], **body}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


@pytest.fixture
def input_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(line("ok-1") + "\n" + line("bad-1", fail=True) + "\n")
    return path


def newapi_profile(gw, *extra: str) -> None:
    args = ["profile", "add", "gw", "--preset", "newapi", "--base-url", gw.base_url, "--api-key", ADMIN_KEY,
            "--channel", "7", "--access-token", ADMIN_TOKEN, "--user-id", "1", "--force", *extra]
    assert run(*args).exit_code == 0


def batch_id_of(output: str) -> str:
    return next(ln for ln in output.splitlines() if ln.startswith("batch_"))


# -- DashScope: windows and limits ------------------------------------------------------------------------


def test_dashscope_table():
    spec = get_provider("dashscope")
    assert (spec.max_requests, spec.max_file_bytes, spec.max_line_bytes) == (50_000, 500 * MB, 6 * MB)
    assert spec.default_poll_interval == 60.0 and spec.live_counts is False
    assert "/v1/chat/ds-test" in spec.endpoints
    assert set(spec.list_filters) == {"ds_name", "status", "create_after", "create_before"}


@pytest.mark.parametrize(
    ("window", "accepted"),
    [("24h", True), ("336h", True), ("14d", True), ("72h", True), ("1d", True), ("23h", False), ("337h", False),
     ("15d", False), ("30m", False), ("24", False)],
)
def test_dashscope_completion_window(window, accepted):
    assert (get_provider("dashscope").check_completion_window(window) is None) is accepted
    assert (get_provider("openai").check_completion_window(window) is None) is (window == "24h")


@pytest.mark.parametrize("window", ["12h", "15d", "400h"])
def test_submit_refuses_a_dashscope_window_before_anything_is_sent(gateway, input_file, window):
    newapi_profile(gateway)
    result = run("submit", str(input_file), "--completion-window", window)
    assert result.exit_code == 1
    assert f'completion window "{window}" is not accepted by newapi' in result.stderr
    assert "24h to 336h" in result.stderr
    assert gateway.requests == []


def test_submit_accepts_14d_and_sends_it(gateway, input_file):
    newapi_profile(gateway)
    result = run("submit", str(input_file), "--completion-window", "14d")
    assert result.exit_code == 0, result.output
    assert [b["completion_window"] for b in gateway.batches.values()] == ["14d"]


def test_submit_respects_a_profile_request_limit(gateway, tmp_path):
    # Seed 000's client says 10,000 requests per file; a profile can lower the table's 50,000 like this.
    newapi_profile(gateway, "--max-requests", "2")
    path = tmp_path / "three.jsonl"
    path.write_text("".join(line(f"r{i}") + "\n" for i in range(3)))
    result = run("submit", str(path), "--no-split")  # without it, the file is a job of 2 batches
    assert result.exit_code == 1
    assert "3 requests, 1 over" in result.stderr and "nothing was uploaded" in result.stderr
    assert gateway.requests == []


def test_validate_refuses_a_line_over_6_mb_for_dashscope(tmp_path):
    assert run("profile", "add", "ds", "--preset", "dashscope", "--api-key", "sk-x").exit_code == 0
    path = tmp_path / "big.jsonl"
    path.write_text(line("big", padding="x" * (6 * MB)) + "\n")
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert "6 MB" in result.output


# -- DashScope: metadata and list filters ------------------------------------------------------------------


def test_metadata_ds_name_reaches_the_server(gateway, input_file):
    newapi_profile(gateway)
    result = run("submit", str(input_file), "--metadata", "ds_name=nightly", "--metadata", "ds_description=evals")
    assert result.exit_code == 0, result.output
    [metadata] = [b["metadata"] for b in gateway.batches.values()]
    user = {k: v for k, v in metadata.items() if not k.startswith("batchctl_")}  # beside the job's tags
    assert user == {"ds_name": "nightly", "ds_description": "evals"}


def test_list_passes_dashscope_filters_through(gateway, input_file):
    newapi_profile(gateway)
    assert run("submit", str(input_file), "--metadata", "ds_name=nightly").exit_code == 0
    assert run("submit", str(input_file), "--metadata", "ds_name=other").exit_code == 0
    result = run("list", "--json", "--ds-name", "nightly", "--status", "validating",
                 "--create-after", "2020-01-01", "--create-before", "20991231235959")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [b["metadata"]["ds_name"] for b in listed] == ["nightly"]
    query = [r.query for r in gateway.requests if r.method == "GET" and r.path == "/v1/batches"][-1]
    assert query == {"ds_name": "nightly", "status": "validating", "create_after": "20200101000000",
                     "create_before": "20991231235959"}
    excluded = run("list", "--json", "--create-after", "20990101000000")
    assert json.loads(excluded.stdout) == []


def test_list_time_format():
    assert format_list_time("2025-01-31 08:05") == "20250131080500"
    assert format_list_time("20250131080500") == "20250131080500"
    result = run("list", "--create-after", "last tuesday")
    assert result.exit_code == 2 and "yyyyMMddHHmmss" in result.output


# -- OpenAI env fallback ---------------------------------------------------------------------------------


def test_openai_env_is_a_last_fallback_only_for_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-env-1234")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.example.com/v1")
    default = json.loads(run("profile", "show", "--json").stdout)
    assert default["name"] == "local" and default["base_url"] == "http://127.0.0.1:8765/v1" and default["api_key"] is None
    chosen = json.loads(run("--profile", "openai", "profile", "show", "--json").stdout)
    assert chosen["base_url"] == "https://proxy.example.com/v1"
    assert chosen["api_key"] == "sk-…1234" and "sk-openai-env-1234" not in json.dumps(chosen)
    assert chosen["sources"]["api_key"] == "env OPENAI_API_KEY"
    # A key given by a flag wins over the environment.
    flagged = json.loads(run("--profile", "openai", "--api-key", "sk-flag-9999", "profile", "show", "--json").stdout)
    assert flagged["api_key"] == "sk-…9999"


# -- --delete-remote and `files` --------------------------------------------------------------------------


def test_submit_wait_delete_remote_removes_input_output_and_errors(gateway, input_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    newapi_profile(gateway)
    result = run("submit", str(input_file), "--wait", "--interval", "0.1", "--delete-remote", "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.jsonl").exists() and (tmp_path / "out.errors.jsonl").exists()
    deletes = [r.path for r in gateway.requests if r.method == "DELETE"]
    assert len(deletes) == 3 and any("file-batch_output" in d for d in deletes) and any("file-batch_error" in d for d in deletes)
    assert gateway.files == {}
    assert "Deleted the remote input file" in result.stderr


def test_submit_delete_remote_needs_wait(gateway, input_file):
    newapi_profile(gateway)
    result = run("submit", str(input_file), "--delete-remote")
    assert result.exit_code == 2 and "--delete-remote needs --wait" in result.output
    assert gateway.requests == []


def test_download_delete_remote_after_a_successful_download(gateway, input_file, tmp_path):
    newapi_profile(gateway)
    batch_id = batch_id_of(run("submit", str(input_file)).stdout)
    assert len(gateway.files) == 1
    failed = run("download", batch_id, "-o", str(tmp_path / "o.jsonl"), "--delete-remote")
    assert failed.exit_code == 6  # not finished: nothing downloaded, nothing deleted
    assert not [r for r in gateway.requests if r.method == "DELETE"]
    result = run("download", batch_id, "--wait", "--interval", "0.1", "-o", str(tmp_path / "o.jsonl"), "--delete-remote")
    assert result.exit_code == 0, result.output
    assert gateway.files == {}
    assert (tmp_path / "o.jsonl").read_text().count('"custom_id": "ok-1"') == 1


def test_files_list_and_delete(gateway, input_file):
    newapi_profile(gateway)
    assert run("submit", str(input_file)).exit_code == 0
    listed = run("files", "list", "--json", "--purpose", "batch")
    assert listed.exit_code == 0, listed.output
    ids = [f["id"] for f in json.loads(listed.stdout)]
    assert len(ids) == 1 and ids[0].startswith("file-batch-")
    table = run("files", "list")
    assert ids[0] in table.stdout
    refused = run("files", "delete", ids[0])
    assert refused.exit_code == 1 and "--yes" in refused.stderr and len(gateway.files) == 1
    deleted = run("files", "delete", ids[0], "file-nope", "--yes", "--json")
    assert deleted.exit_code == 1  # one of the two was not found
    assert [d["deleted"] for d in json.loads(deleted.stdout)] == [True, False]
    assert gateway.files == {}
    assert all(r.authorization == f"Bearer {ADMIN_KEY}-7" for r in gateway.batch_calls())
    assert json.loads(run("files", "list", "--json").stdout) == []

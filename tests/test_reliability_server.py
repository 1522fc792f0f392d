"""The local server's reliability and safety: streamed upload limits, private state, auth, leftovers."""

from __future__ import annotations

import json
import os
import stat
import time

import httpx
import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.server.config import ServerConfig
from batchctl.server.store import Store

LINE = {"method": "POST", "url": "/v1/chat/completions", "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}


def jsonl(n: int) -> bytes:
    return b"".join(json.dumps({"custom_id": f"r{i}", **LINE}).encode() + b"\n" for i in range(n))


def upload(server, content: bytes) -> httpx.Response:
    return httpx.post(
        server.base_url + "/files", headers=server.headers, files={"file": ("in.jsonl", content)},
        data={"purpose": "batch"}, timeout=30,
    )  # fmt: skip


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """One server for the read-mostly tests: limits of 64 KB a file and 1 KB a line."""
    from server_fixture import ServerHandle, free_port

    data = tmp_path_factory.mktemp("limited") / "data"
    handle = ServerHandle(port=free_port(), data_dir=data, args=["--max-file-mb", "0.0625", "--max-line-mb",
                                                                   "0.0009765625"], api_key="sk-test-key")
    handle.start()
    yield handle
    handle.kill()


def test_a_file_over_the_limit_is_answered_413_in_openai_shape_and_leaves_nothing(limited):
    answer = upload(limited, jsonl(1000))  # ~150 KB
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "file_too_large" and error["param"] == "file" and error["type"] == "invalid_request_error"
    assert "0.0625 MB" in error["message"]
    assert not list((limited.data_dir / "files").glob("*"))


def test_a_line_over_the_limit_is_answered_400_naming_the_line(limited):
    content = jsonl(3) + b'{"custom_id": "' + b"x" * 5000 + b'"}\n'
    answer = upload(limited, content)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "line_too_large"
    assert error["message"].startswith("Line 4 of the file is longer than this server's limit")
    assert not list((limited.data_dir / "files").glob("*"))


def test_a_file_within_the_limits_is_accepted_and_kept_private(limited):
    answer = upload(limited, jsonl(10))
    assert answer.status_code == 200, answer.text
    body = limited.data_dir / "files" / answer.json()["id"]
    assert stat.S_IMODE(os.stat(body).st_mode) == 0o600


def test_a_non_ascii_bearer_token_is_a_401_not_a_500(limited):
    headers = [(b"authorization", "Bearer clé-ü".encode())]
    answer = httpx.get(limited.base_url + "/batches", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(limited.base_url + "/batches", headers=limited.headers).status_code == 200


def test_state_is_private_dir_0700_database_prompts_and_results_0600(start_server):
    server = start_server()
    file_id = upload(server, jsonl(3)).json()["id"]
    batch = httpx.post(server.base_url + "/batches", json={"input_file_id": file_id, "endpoint":
                       "/v1/chat/completions", "completion_window": "24h"}).json()  # fmt: skip
    deadline = time.monotonic() + 10
    while batch["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
        batch = httpx.get(f"{server.base_url}/batches/{batch['id']}").json()
    assert batch["status"] == "completed"
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(server.data_dir) == 0o700
    assert mode(server.data_dir / "files") == 0o700
    assert mode(server.data_dir / "server.db") == 0o600
    for name in (file_id, batch["output_file_id"]):
        assert mode(server.data_dir / "files" / name) == 0o600


def test_an_older_data_dir_is_tightened_and_upload_leftovers_are_swept(tmp_path):
    files = tmp_path / "files"
    files.mkdir(parents=True, mode=0o755)
    (files / "file-abc.upload").write_bytes(b"half an upload")
    (files / "file-def.part").write_bytes(b"half a result")
    (files / "file-kept").write_bytes(b"{}\n")
    os.chmod(files / "file-kept", 0o644)
    Store(tmp_path).close()
    assert sorted(p.name for p in files.iterdir()) == ["file-kept"]
    assert stat.S_IMODE(os.stat(files / "file-kept").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(files).st_mode) == 0o700


def test_a_non_loopback_bind_without_a_key_is_refused_unless_allowed():
    assert "--api-key" in ServerConfig(host="0.0.0.0").problem()
    assert ServerConfig(host="0.0.0.0", api_key="k").problem() is None
    assert ServerConfig(host="0.0.0.0", allow_no_auth=True).problem() is None
    assert ServerConfig().problem() is None
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "Error: --host 0.0.0.0 exposes the server to the network" in result.output


def test_argv_round_trips_the_new_options(tmp_path):
    (tmp_path / "f.json").write_text("[]")
    config = ServerConfig(max_file_mb=1.5, max_line_mb=0.5, allow_no_auth=True, faults=tmp_path / "f.json")
    assert ServerConfig.from_argv(config.to_argv()) == config
    assert ServerConfig.from_argv([]).allow_no_auth is False


def test_submit_of_a_file_over_the_servers_limit_says_how_to_give_the_profile_that_limit(limited, tmp_path, monkeypatch):
    """A 413 said only `HTTP 413: …`; the profile's limits decide how submit splits, so the hint says how to set them."""
    monkeypatch.setenv("BATCHCTL_BASE_URL", limited.base_url)
    monkeypatch.setenv("BATCHCTL_API_KEY", "sk-test-key")
    source = tmp_path / "big.jsonl"
    source.write_bytes(jsonl(1000))  # ~150 KB: over the server's 64 KB, within the profile's limits
    result = CliRunner().invoke(app, ["submit", str(source)])
    assert result.exit_code == 1, result.output
    assert "Error: the server refused the request as too large (HTTP 413)" in result.stderr
    assert "--max-file-mb MB" in result.stderr
    # Followed as it was, `profile add … --force` dropped the profile's key and provider (it replaces the profile).
    assert "replaces the whole profile" in " ".join(result.stderr.split())


def test_a_profile_given_the_servers_sub_megabyte_limit_splits_the_file_to_fit(limited, tmp_path):
    """The 413 hint says to give the profile the server's limits; `--max-file-mb` took whole megabytes
    only (at least 1), so a 64 KB limit could not be given. 0.0625 MB now splits a ~150 KB file."""
    runner = CliRunner()
    added = runner.invoke(app, ["profile", "add", "tiny", "--base-url", limited.base_url, "--api-key", "sk-test-key",
                                "--max-file-mb", "0.0625"])  # fmt: skip
    assert added.exit_code == 0, added.output
    source = tmp_path / "big.jsonl"
    source.write_bytes(jsonl(1000))
    result = runner.invoke(app, ["submit", str(source)])
    assert result.exit_code == 0, result.output
    assert "batches of" in result.stderr, result.stderr  # split: "input has 1,000 requests: N batches of ≤ …"

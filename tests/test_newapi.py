"""New-API: channel pinning on every call, the remembered channel, the channel check, 501 and missing routes.

Everything HTTP goes through the gateway stand-in (`tests/gateway_stub.py`) on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest
from gateway_stub import ADMIN_KEY, ADMIN_TOKEN, USER_KEY, USER_TOKEN, gateway  # noqa: F401
from typer.testing import CliRunner

from batchctl import journal, newapi, urls
from batchctl.cli.app import app

PINNED = f"Bearer {ADMIN_KEY}-7"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def line(custom_id: str, model: str = "qwen-plus", **body) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": f"say {custom_id}"}], **body}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


@pytest.fixture
def input_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(line(f"r{i}") for i in range(3)) + "\n")
    return path


def add_profile(name: str, gw, *, key: str = ADMIN_KEY, channel: str | None = "7", token: str | None = ADMIN_TOKEN, user="1", use=True):
    args = ["profile", "add", name, "--preset", "newapi", "--base-url", gw.base_url, "--api-key", key, "--force"]
    if channel:
        args += ["--channel", channel]
    if token:
        args += ["--access-token", token, "--user-id", user]
    args.append("--use" if use else "--no-use")
    result = run(*args)
    assert result.exit_code == 0, result.output


def submitted_id(output: str) -> str:
    ids = [ln for ln in output.splitlines() if ln.startswith("batch_")]
    assert ids, output
    return ids[0].split()[0]


# -- pure helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("http://gw:3000/v1", "http://gw:3000"),
        ("http://gw:3000/v1/", "http://gw:3000"),
        ("https://gw.example.com/relay/v1", "https://gw.example.com/relay"),
        ("http://gw:3000", "http://gw:3000"),
    ],
)
def test_gateway_root_drops_v1(base_url, root):
    assert urls.gateway_root(base_url) == root


def test_parse_channel_models_and_mapping():
    info = newapi.parse_channel(
        {"id": 3, "name": "bl", "type": 17, "status": 1, "base_url": "", "models": " qwen-plus, qwen-max ,,", "model_mapping": '{"gpt-4o": "qwen-max"}'}
    )
    assert info.models == ("qwen-plus", "qwen-max")
    assert info.serves("qwen-max") and info.serves("gpt-4o") and not info.serves("qwen-turbo")
    assert info.upstream_endpoint == "https://dashscope.aliyuncs.com/compatible-mode/v1"  # New-API's default base
    broken = newapi.parse_channel({"id": 3, "type": 17, "status": 1, "models": "a", "model_mapping": "{nope"})
    assert broken.model_mapping == {} and "not valid JSON" in broken.mapping_error


@pytest.mark.parametrize(("status", "enabled"), [(1, True), (2, False), (3, False), (0, False)])
def test_channel_status_convention(status, enabled):
    info = newapi.parse_channel({"id": 1, "type": 17, "status": status, "models": "m"})
    assert info.enabled is enabled
    check = newapi.evaluate_channel(info, "1", "m")
    assert check.ok is enabled
    if not enabled:
        assert check.problem == newapi.PROBLEM_DISABLED


def test_non_dashscope_channel_is_a_warning_not_a_failure():
    info = newapi.parse_channel({"id": 1, "name": "oa", "type": 1, "status": 1, "base_url": "https://api.openai.com", "models": "m"})
    check = newapi.evaluate_channel(info, "1", "m")
    assert check.ok and any("not DashScope" in w for w in check.warnings)


# -- the channel check against the stand-in ---------------------------------------------------------------


def test_check_channel_success_names_channel_and_upstream(gateway):
    check = newapi.check_channel(gateway.base_url, "7", access_token=ADMIN_TOKEN, user_id="1", model="qwen-plus")
    assert check.ok, check.message
    assert check.summary_lines() == [
        "channel: bailian-main (id 7, Alibaba DashScope, enabled)",
        "upstream endpoint: https://dashscope.aliyuncs.com/compatible-mode/v1",
    ]
    request = [r for r in gateway.requests if r.path == "/api/channel/7"][0]
    assert request.authorization == ADMIN_TOKEN  # the bare access token, not "Bearer sk-..."


def test_check_channel_model_from_mapping(gateway):
    assert newapi.check_channel(gateway.base_url, "7", access_token=ADMIN_TOKEN, user_id="1", model="qwen-latest").ok


@pytest.mark.parametrize(
    ("channel", "model", "token", "user", "problem", "words"),
    [
        ("99", "qwen-plus", ADMIN_TOKEN, "1", newapi.PROBLEM_MISSING, "does not exist"),
        ("5", "qwen-plus", ADMIN_TOKEN, "1", newapi.PROBLEM_DISABLED, "disabled by an admin"),
        ("7", "qwen-max", ADMIN_TOKEN, "1", newapi.PROBLEM_MODEL, "does not serve model 'qwen-max'"),
        ("7", "qwen-plus", USER_TOKEN, "2", newapi.PROBLEM_FORBIDDEN, "may not read channels (HTTP 200)"),
        ("7", "qwen-plus", "wrong-token", "1", newapi.PROBLEM_UNAUTHORIZED, "rejected the access token (HTTP 401)"),
        ("7", "qwen-plus", ADMIN_TOKEN, "2", newapi.PROBLEM_UNAUTHORIZED, "rejected the access token"),
        ("7", "qwen-plus", None, None, newapi.PROBLEM_NO_TOKEN, "could not check channel 7"),
        ("abc", "qwen-plus", ADMIN_TOKEN, "1", newapi.PROBLEM_MISSING, "not a number"),
    ],
)
def test_check_channel_failures(gateway, channel, model, token, user, problem, words):
    check = newapi.check_channel(gateway.base_url, channel, access_token=token, user_id=user, model=model)
    assert not check.ok
    assert check.problem == problem
    assert words in check.message
    assert check.hint


def test_check_channel_non_admin_403(gateway):
    gateway.admin_api_forbidden_status = 403
    check = newapi.check_channel(gateway.base_url, "7", access_token=USER_TOKEN, user_id="2", model="qwen-plus")
    assert check.problem == newapi.PROBLEM_FORBIDDEN and "HTTP 403" in check.message
    assert "admin" in check.hint


def test_check_channel_success_false_is_a_failure(gateway):
    # HTTP 200 with {"success": false}: New-API's way of saying "no such record".
    check = newapi.check_channel(gateway.base_url, "42", access_token=ADMIN_TOKEN, user_id="1")
    assert check.problem == newapi.PROBLEM_MISSING and "record not found" in check.message


def test_check_channel_unreachable():
    check = newapi.check_channel("http://127.0.0.1:9/v1", "7", access_token=ADMIN_TOKEN, user_id="1", timeout=2)
    assert check.problem == newapi.PROBLEM_UNREACHABLE and ADMIN_TOKEN not in check.message


# -- the pin on every call ------------------------------------------------------------------------------


def test_channel_suffix_on_every_call_of_a_batch(gateway, input_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    add_profile("gw", gateway)
    submitted = run("submit", str(input_file), "--wait", "--interval", "0.1", "-o", str(tmp_path / "out.jsonl"))
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted_id(submitted.stdout)
    assert run("status", batch_id).exit_code == 0
    assert run("list").exit_code == 0
    second = run("submit", str(input_file), "--new")  # the same input again would attach to the first job
    assert second.exit_code == 0, second.output
    assert run("cancel", submitted_id(second.stdout), "--yes").exit_code == 0
    download = run("download", batch_id, "-o", str(tmp_path / "again.jsonl"))
    assert download.exit_code == 0, download.output

    calls = gateway.batch_calls()
    kinds = {
        (r.method, "content" if r.path.endswith("/content") else "cancel" if r.path.endswith("/cancel") else r.path.count("/"))
        for r in calls
    }
    # upload, create, list (collection: 2 slashes); retrieve (3); content; cancel
    assert {("POST", 2), ("GET", 2), ("GET", 3), ("GET", "content"), ("POST", "cancel")} <= kinds
    assert [r for r in calls if r.authorization != PINNED] == []
    assert (tmp_path / "out.jsonl").read_text().count("custom_id") == 3


def test_remembered_channel_after_profile_switch(gateway, input_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    add_profile("a", gateway, channel="7")
    batch_id = submitted_id(run("submit", str(input_file)).stdout)
    assert journal.lookup(batch_id).channel == "7"
    for other in ("9", None):
        add_profile("b", gateway, channel=other)
        before = len(gateway.requests)
        status = run("status", batch_id)
        assert status.exit_code == 0, status.output
        download = run("download", batch_id, "--wait", "--interval", "0.1", "-o", str(tmp_path / f"out-{other}.jsonl"))
        assert download.exit_code == 0, download.output
        later = [r for r in gateway.requests[before:] if r.path.startswith("/v1/")]
        assert later and all(r.authorization == PINNED for r in later), [(r.path, r.authorization) for r in later]
    # An explicit --channel still wins over the journal.
    before = len(gateway.requests)
    run("--channel", "9", "status", batch_id)
    assert gateway.requests[before].authorization == f"Bearer {ADMIN_KEY}-9"


def test_pin_refused_for_non_admin_key(gateway, input_file):
    add_profile("user", gateway, key=USER_KEY, token=None)
    result = run("submit", str(input_file), "--no-check")
    assert result.exit_code == 1
    assert "Error: permission denied (HTTP 403)" in result.stderr and "admin" in result.stderr
    assert "Traceback" not in result.output


def test_non_numeric_channel_is_a_clear_error(gateway, input_file):
    # Refused here, before the gateway ever sees it (it would answer 400 无效的渠道 Id).
    added = run("profile", "add", "bad", "--base-url", gateway.base_url, "--provider", "newapi", "--api-key", ADMIN_KEY,
                "--channel", "abc")  # fmt: skip
    assert added.exit_code == 1 and "Error: channel 'abc' (--channel) is not a New-API channel id" in added.stderr
    add_profile("bad", gateway, channel=None, token=None)
    sent = len(gateway.requests)
    result = run("--channel", "abc", "submit", str(input_file), "--no-check")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "Error: channel 'abc' (--channel) is not a New-API channel id"
    assert len(gateway.requests) == sent  # nothing was sent


# -- submit's pre-flight check --------------------------------------------------------------------------


def uploads(gw) -> list:
    return [r for r in gw.requests if r.method == "POST" and r.path == "/v1/files"]


def test_preflight_prints_channel_and_upstream(gateway, input_file):
    add_profile("gw", gateway)
    result = run("submit", str(input_file))
    assert result.exit_code == 0, result.output
    assert "exists, is enabled and serves 'qwen-plus'" in result.stderr
    assert "channel: bailian-main (id 7, Alibaba DashScope, enabled)" in result.stderr
    assert "upstream endpoint: https://dashscope.aliyuncs.com/compatible-mode/v1" in result.stderr


@pytest.mark.parametrize(
    ("channel", "model", "words"),
    [("5", None, "disabled by an admin"), ("99", None, "does not exist"), ("7", "qwen-max", "does not serve model 'qwen-max'")],
)
def test_preflight_failure_stops_before_upload(gateway, input_file, channel, model, words):
    add_profile("gw", gateway, channel=channel)
    args = ["submit", str(input_file)] + (["--model", model] if model else [])
    result = run(*args)
    assert result.exit_code == 1
    assert words in result.stderr and "--no-check" in result.stderr
    assert uploads(gateway) == []


def test_no_check_skips_the_channel_check(gateway, input_file):
    add_profile("gw", gateway)
    result = run("submit", str(input_file), "--model", "qwen-max", "--no-check")
    assert result.exit_code == 0, result.output
    assert not [r for r in gateway.requests if r.path.startswith("/api/")]
    assert len(uploads(gateway)) == 1


def test_preflight_without_access_token_says_so_and_carries_on(gateway, input_file):
    add_profile("gw", gateway, token=None)
    result = run("submit", str(input_file))
    assert result.exit_code == 0, result.output
    assert "could not check channel 7" in result.stderr and "carrying on" in result.stderr
    assert "Weaker check: the gateway lists 'qwen-plus'" in result.stderr
    assert len(uploads(gateway)) == 1


# -- routes a gateway does not relay ----------------------------------------------------------------------


def test_501_on_files_is_a_clear_message(gateway, input_file):
    gateway.files_not_implemented = True
    add_profile("gw", gateway)
    result = run("submit", str(input_file))
    assert result.exit_code == 1
    assert "Error: this gateway does not relay /v1/files (HTTP 501 api_not_implemented)" in result.stderr
    assert "Traceback" not in result.output
    listed = run("files", "list")
    assert listed.exit_code == 1 and "does not relay /v1/files" in listed.stderr


def test_missing_batch_list_route_is_a_clear_message(gateway):
    gateway.batch_list_missing = True
    add_profile("gw", gateway)
    result = run("list")
    assert result.exit_code == 1
    assert "Error: this gateway does not serve /v1/batches (HTTP 404)" in result.stderr
    assert "batchctl status BATCH_ID" in result.stderr

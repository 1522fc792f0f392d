"""The fault suite: today's client commands against `batchctl serve --faults` (docs/reliability.md).

What the API layer and the server guarantee under injected faults: retries honour Retry-After, a
create is never blindly re-sent (no duplicate batch or file), a 2xx that is not the object asked for
is an error of its own, no partial result file lands under a final name, keys never reach the
terminal, and giving up prints one `Error:` line with a next step and the right exit code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from batchctl.server.faults import FaultRuleError, load_rules

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
KEY = "sk-fault-suite-0123456789abcdef"


@pytest.fixture
def faulty(start_server, tmp_path, monkeypatch):
    """`faulty(rules)`: a server with those fault rules and the key KEY; the CLI points at it."""

    def start(rules: list[dict], **options):
        path = tmp_path / "faults.json"
        path.write_text(json.dumps({"rules": rules}))
        server = start_server(api_key=KEY, extra_args=["--faults", str(path)], **options)
        monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
        monkeypatch.setenv("BATCHCTL_API_KEY", KEY)
        return server

    return start


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def count(server, what: str) -> int:
    params = {"purpose": "batch"} if what == "files" else {}  # uploads, not the batches' result files
    answer = httpx.get(f"{server.base_url}/{what}", headers=server.headers, params=params)
    return len(answer.json()["data"])


def make_batch(server, content: bytes) -> str:
    """Upload `content` and create a batch on it, straight over HTTP (faults on other routes only)."""
    with httpx.Client(headers=server.headers) as http:
        file_id = http.post(f"{server.base_url}/files", files={"file": ("a.jsonl", content)},
                            data={"purpose": "batch"}).json()["id"]  # fmt: skip
        return http.post(f"{server.base_url}/batches", json={"input_file_id": file_id, "endpoint":
                         "/v1/chat/completions", "completion_window": "24h"}).json()["id"]  # fmt: skip


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_list_waits_as_long_as_retry_after_ms_says_then_succeeds(faulty):
    faulty([{"method": "GET", "path": "/v1/batches", "times": 2, "status": 503, "retry_after_ms": 300}])
    started = time.monotonic()
    result = cli("list")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.6  # two waits of 300 ms, not the client's own backoff


def test_a_create_answered_500_after_it_happened_is_not_re_sent(faulty, tmp_path):
    server = faulty([{"method": "POST", "path": "/v1/batches", "times": 1, "status": 500, "after": True}])
    path = write_requests(tmp_path / "in.jsonl", 3)
    result = cli("submit", str(path))
    # The job reconciles: it finds the batch its create made (by its tags) and adopts it, never creating
    # a second one; the answer tells the truth about what happened.
    assert result.exit_code == 0, result.output
    assert "creating the batch failed (HTTP 500" in result.stderr and "adopting it" in result.stderr
    assert count(server, "batches") == 1  # the server made it once; the client did not make a second
    assert count(server, "files") == 1


def test_an_upload_cut_mid_request_leaves_no_file_and_is_not_re_sent(faulty, tmp_path):
    server = faulty([{"method": "POST", "path": "/v1/files", "reset_after_request_bytes": 2000}])
    path = write_requests(tmp_path / "in.jsonl", 200)
    result = cli("submit", str(path))
    assert result.exit_code == 1, result.output
    assert "Error: " in error_line(result)
    assert count(server, "files") == 0 and count(server, "batches") == 0
    assert not list((server.data_dir / "files").glob("*.upload"))


def test_a_create_answered_429_with_retry_after_is_sent_again_once(faulty, tmp_path):
    server = faulty([{"method": "POST", "path": "/v1/batches", "times": 1, "status": 429, "retry_after": 0.1}])
    result = cli("submit", str(write_requests(tmp_path / "in.jsonl", 3)))
    assert result.exit_code == 0, result.output
    assert count(server, "batches") == 1


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"drop": ["status"]}, "the server answered 200 but not with a batch: `status` is missing"),
        ({"set": {"id": ""}}, "the server answered 200 but not with a batch: `id` is empty or not a string"),
        ({"html": True}, "the server answered 200 but not with a batch: an HTML page (502 Bad Gateway)"),
        ({"truncate": 15}, 'the server answered 200 but not with a batch: Expected JSON, got: {"id":"batch_'),
    ],
)
def test_status_refuses_a_2xx_that_is_not_a_batch(faulty, tmp_path, rule, message):
    server = faulty([{"method": "GET", "path": "/v1/batches/*", **rule}])
    batch_id = make_batch(server, b"{}\n")
    result = cli("status", batch_id)
    assert result.exit_code == 1, result.output
    assert message in error_line(result)
    assert "check it with batchctl doctor" in result.stderr


def test_files_list_refuses_a_list_without_data(faulty):
    faulty([{"method": "GET", "path": "/v1/files", "drop": ["data"]}])
    result = cli("files", "list")
    assert result.exit_code == 1, result.output
    assert "the server answered 200 but not with a list of files: `data` is missing" in error_line(result)


def test_a_key_echoed_by_the_server_never_reaches_the_terminal(faulty, tmp_path):
    other = "sk-proj-someone-elses-key-9876543210"
    echoed = {"status": f"weird {KEY}", "errors": {"object": "list", "data": [
        {"code": "x", "message": f"bad header Authorization: Bearer {KEY} and {other}", "line": 1}]}}  # fmt: skip
    server = faulty([{"method": "GET", "path": "/v1/batches/*", "set": echoed}])
    batch_id = make_batch(server, b"{}\n")
    for args in (("status", batch_id), ("status", "--json", batch_id), ("--debug", "status", batch_id)):
        result = cli(*args)
        assert KEY not in result.output and other not in result.output, args
        assert KEY[:12] not in result.output and other[:12] not in result.output, args
        assert "sk-…cdef" in result.output or "weird" in result.output


def test_a_download_cut_short_leaves_no_result_file(faulty, tmp_path, in_tmp):
    server = faulty([{"method": "GET", "path": "/v1/files/*/content", "reset_after_response_bytes": 40}])
    batch_id = make_batch(server, write_requests(tmp_path / "in.jsonl", 5).read_bytes())
    with httpx.Client(headers=server.headers) as http:
        deadline = time.monotonic() + 10
        while http.get(f"{server.base_url}/batches/{batch_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    result = cli("download", batch_id)
    assert result.exit_code == 1, result.output
    assert error_line(result).startswith("Error: ")
    leftovers = [p for p in Path(in_tmp).rglob("*") if p.is_file()]
    assert leftovers == [], leftovers


def test_validate_needs_no_server_and_faults_change_nothing(faulty, tmp_path):
    faulty([{"path": "*", "abort": True}])
    result = cli("validate", str(write_requests(tmp_path / "in.jsonl", 3)))
    assert result.exit_code == 0, result.output


def test_a_rule_file_with_unknown_keys_is_refused():
    with pytest.raises(FaultRuleError, match="unknown keys"):
        load_rules([{"path": "/v1/batches", "stauts": 500}])
    assert load_rules({"rules": [{"path": "/v1/*", "times": 2}]})[0].times == 2


def test_rules_from_the_environment_abort_delay_and_cut(start_server, tmp_path, monkeypatch):
    rules = tmp_path / "env-faults.json"
    rules.write_text(json.dumps([
        {"method": "GET", "path": "/v1/batches", "abort": True, "times": 1},
        {"method": "GET", "path": "/v1/files", "delay": 0.2, "times": 1},
        {"method": "GET", "path": "/v1/models", "reset_after_response_bytes": 5},
    ]))  # fmt: skip
    monkeypatch.setenv("BATCHCTL_SERVE_FAULTS", str(rules))
    server = start_server()
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        httpx.get(f"{server.base_url}/batches")
    assert httpx.get(f"{server.base_url}/batches").status_code == 200  # only the first one
    started = time.monotonic()
    assert httpx.get(f"{server.base_url}/files").status_code == 200
    assert time.monotonic() - started >= 0.2
    with pytest.raises(httpx.RemoteProtocolError, match="received 5 bytes"):
        httpx.get(f"{server.base_url}/models")


def test_serve_refuses_a_broken_rule_file(tmp_path):
    rules = tmp_path / "bad.json"
    rules.write_text('[{"path": "/v1/batches", "stauts": 500}]')
    result = CliRunner().invoke(app, ["serve", "--faults", str(rules)])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: fault rule 0: unknown keys ['stauts']")


def test_serve_names_a_missing_rule_file_and_what_one_is(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--faults", str(tmp_path / "nosuch.json")])
    assert result.exit_code == 2
    error, hint = result.stderr.splitlines()
    assert error == f"Error: cannot read the fault rules {tmp_path / 'nosuch.json'}: No such file or directory"
    assert hint.startswith('A faults file is JSON: a list of rules, or {"rules": [...]}') and "docs/reliability.md" in hint


def finished_batch(server, tmp_path, n: int = 5) -> str:
    batch_id = make_batch(server, write_requests(tmp_path / "in.jsonl", n).read_bytes())
    with httpx.Client(headers=server.headers) as http:
        deadline = time.monotonic() + 10
        while http.get(f"{server.base_url}/batches/{batch_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return batch_id


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"html": True}, "the server answered 200 but not with the file's content: an HTML page (502 Bad Gateway)"),
        ({"truncate": 40}, "the server sent is not results: line 1 is not JSON"),
    ],
)
def test_a_download_that_is_not_results_is_an_error_and_saves_nothing(faulty, tmp_path, in_tmp, rule, message):
    server = faulty([{"method": "GET", "path": "/v1/files/*/content", **rule}])
    batch_id = finished_batch(server, tmp_path)
    result = cli("download", batch_id, "-o", "out.jsonl")
    assert result.exit_code == 1, result.output
    assert message in error_line(result)
    leftovers = [p for p in Path(in_tmp).rglob("*") if p.is_file()]
    assert leftovers == [], leftovers


def test_a_download_whose_error_file_failed_is_completed_by_the_same_command(faulty, tmp_path, in_tmp):
    content = "/v1/files/*/content"
    server = faulty([{"method": "GET", "path": content, "times": 1, "delay": 0},  # the output: fine
                     {"method": "GET", "path": content, "times": 1, "status": 403}], failure_rate=0.5)  # fmt: skip
    batch_id = finished_batch(server, tmp_path, n=20)
    first = cli("download", batch_id, "-o", "res.jsonl")
    assert first.exit_code == 1, first.output
    assert Path("res.jsonl").exists() and not Path("res.errors.jsonl").exists()
    saved = Path("res.jsonl").read_bytes()

    again = cli("download", batch_id, "-o", "res.jsonl")
    assert again.exit_code == 0, again.output
    assert "already exist" not in again.output
    assert "complete from an earlier run: kept" in again.stderr
    assert Path("res.jsonl").read_bytes() == saved
    lines = len(saved.splitlines()) + len(Path("res.errors.jsonl").read_bytes().splitlines())
    assert lines == 20


def test_a_watch_stops_at_once_on_an_html_poll_without_a_resume_hint(faulty, tmp_path):
    server = faulty([{"method": "GET", "path": "/v1/batches/*", "html": True}])
    batch_id = make_batch(server, b"{}\n")
    result = cli("status", "--watch", batch_id, "--interval", "0.1")
    assert result.exit_code == 1, result.output
    assert "not with a batch: an HTML page" in error_line(result)
    assert "Re-attach" not in result.output and "Resume" not in result.output


def test_a_watch_retries_an_outage_for_its_budget_then_says_how_to_resume(faulty, tmp_path):
    server = faulty([])
    batch_id = make_batch(server, b"{}\n")
    server.stop()  # the server goes away: connection refused from now on
    started = time.monotonic()
    # The budget counts the client's own retries of the first GET (~1.1-1.5 s against a closed port), so
    # it is longer than that: the watch itself then retries once within it before giving up.
    result = cli("status", "--watch", batch_id, "--interval", "0.1", "--give-up-after", "3")
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 20
    assert "server unreachable since" in error_line(result) and "gave up watching after 3 s" in error_line(result)
    assert "server unreachable since" in result.stderr and "retrying" in result.stderr
    assert f"Re-attach with: batchctl status --watch {batch_id}" in result.stderr


def test_a_short_budget_is_kept_whatever_the_interval_and_the_hint_keeps_the_profile():
    from server_fixture import free_port

    added = cli("profile", "add", "down", "--preset", "openai", "--api-key", "sk-test1234567890abcd", "--no-use",
                "--base-url", f"http://127.0.0.1:{free_port()}/v1")  # fmt: skip
    assert added.exit_code == 0, added.output
    started = time.monotonic()
    result = cli("-p", "down", "status", "--watch", "batch_x", "--interval", "30", "--give-up-after", "1")
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 15  # no 30-60 s back-off pause past the 1 s budget (loaded CI: seconds)
    assert "gave up watching after 1 s" in error_line(result)
    assert "Re-attach with: batchctl -p down status --watch batch_x" in result.stderr


def test_a_job_download_whose_part_is_not_results_saves_nothing(faulty, tmp_path, in_tmp):
    server = faulty([{"method": "GET", "path": "/v1/files/*/content", "truncate": 30}])
    assert cli("profile", "add", "small", "--preset", "local", "--base-url", server.base_url,
               "--max-requests", "3").exit_code == 0  # fmt: skip
    submitted = cli("submit", str(write_requests(tmp_path / "in.jsonl", 7)))
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.splitlines()[0].strip()
    assert job_id.startswith("job_"), submitted.output
    with httpx.Client(headers=server.headers) as http:
        deadline = time.monotonic() + 10
        while {b["status"] for b in http.get(f"{server.base_url}/batches").json()["data"]} != {"completed"}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    result = cli("download", job_id, "-o", "out.jsonl")
    assert result.exit_code == 1, result.output
    assert "the server sent is not results: line 1 is not JSON" in error_line(result)
    assert not any(p.name.startswith("out") for p in Path(in_tmp).iterdir())

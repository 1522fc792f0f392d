"""`batchctl download` end to end against a real local server: files, merge, content, refusals, exit codes."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import create_batch, write_requests
from batchctl.api import BatchClient
from batchctl.cli.app import app
from batchctl.server.echo import echo_should_fail

pytestmark = pytest.mark.e2e
runner = CliRunner()
N = 20
FAILURE_RATE = 0.3
FAILING = sorted(f"req-{i}" for i in range(1, N + 1) if echo_should_fail(f"req-{i}", FAILURE_RATE))



@pytest.fixture
def flaky(start_server, monkeypatch):
    """A server whose echo model fails some requests (deterministically, by custom_id)."""
    assert FAILING
    server = start_server(latency=0.0, failure_rate=FAILURE_RATE)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    return server


def finished_batch(server, tmp_path: Path, n: int = N) -> str:
    return wait_finished(server.base_url, create_batch(server.base_url, tmp_path, n))


def wait_finished(base_url: str, batch_id: str) -> str:
    """`batch_id` once it has ended on the server at `base_url` (within ~10 s)."""
    with BatchClient(base_url) as client:
        for _ in range(200):
            if client.batches.retrieve(batch_id).is_terminal:
                return batch_id
            time.sleep(0.05)
    raise AssertionError("the batch did not finish")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_downloads_output_and_error_files_with_line_counts(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path)
    result = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl"])
    assert result.exit_code == 0, result.output

    output, errors = in_tmp / "res.jsonl", in_tmp / "res.errors.jsonl"
    ok = read_jsonl(output)
    failed = read_jsonl(errors)
    assert sorted(r["custom_id"] for r in failed) == FAILING
    assert len(ok) + len(failed) == N
    assert {r["response"]["status_code"] for r in ok} == {200}
    assert f"Output: res.jsonl ({N - len(FAILING)} lines)" in result.stderr
    assert f"Errors: res.errors.jsonl ({len(FAILING)} lines)" in result.stderr
    assert not list(in_tmp.glob("*.part"))


def test_default_name_and_errors_output_option(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path)
    result = runner.invoke(app, ["download", batch_id, "--errors-output", "failures/e.jsonl"])
    assert result.exit_code == 0, result.output
    [output] = list(in_tmp.glob("results_echo_*.jsonl"))
    assert len(read_jsonl(output)) == N - len(FAILING)
    assert len(read_jsonl(in_tmp / "failures" / "e.jsonl")) == len(FAILING)


def test_merge_restores_input_order_and_reports_failed_ids(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path)
    source = write_requests(in_tmp / "input.jsonl", N)
    result = runner.invoke(app, ["download", batch_id, "--merge", str(source), "-o", "merged.jsonl"])
    assert result.exit_code == 0, result.output

    merged = read_jsonl(in_tmp / "merged.jsonl")
    assert [r["custom_id"] for r in merged] == [f"req-{i}" for i in range(1, N + 1)]
    for r in merged:
        if r["custom_id"] in FAILING:
            assert r["response"]["status_code"] == 500
        else:
            n = r["custom_id"].split("-")[1]
            assert r["response"]["body"]["choices"][0]["message"]["content"] == f"echo: question {n}"
    assert f"{N} requests: {N - len(FAILING)} succeeded, {len(FAILING)} failed, 0 missing" in result.stderr
    assert FAILING[0] in result.stderr


def test_merge_reports_missing_ids(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path, n=3)
    source = write_requests(in_tmp / "input.jsonl", 5)  # two requests the batch never had
    result = runner.invoke(app, ["--json", "download", batch_id, "--merge", str(source), "-o", "m.jsonl"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["merge"]
    assert report["missing_ids"] == ["req-4", "req-5"] and report["requests"] == 5
    merged = read_jsonl(in_tmp / "m.jsonl")
    assert [r["error"]["code"] for r in merged[3:]] == ["missing_result", "missing_result"]


def test_content_extracts_answers_as_jsonl_and_csv(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path)
    source = write_requests(in_tmp / "input.jsonl", N)
    result = runner.invoke(app, ["download", batch_id, "--content", "--merge", str(source), "-o", "a.jsonl"])
    assert result.exit_code == 0, result.output
    rows = read_jsonl(in_tmp / "a.jsonl")
    assert set(rows[0]) == {"custom_id", "content", "error"}
    for i, row in enumerate(rows, 1):
        assert row["custom_id"] == f"req-{i}"
        if row["custom_id"] in FAILING:
            assert row["content"] is None and row["error"].startswith("HTTP 500")
        else:
            assert row["content"] == f"echo: question {i}" and row["error"] is None

    as_csv = runner.invoke(app, ["download", batch_id, "--content", "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    [table] = list(in_tmp.glob("results_echo_*.csv"))
    with table.open(newline="", encoding="utf-8-sig") as f:
        records = list(csv.DictReader(f))
    assert len(records) == N
    answers = {r["custom_id"]: r["content"] for r in records if not r["error"]}
    assert answers["req-" + next(str(i) for i in range(1, N + 1) if f"req-{i}" not in FAILING)].startswith("echo: ")


def test_refuses_to_overwrite_before_downloading_anything(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path)
    (in_tmp / "res.jsonl").write_text("keep me")
    result = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: res.jsonl already exists") and "--force" in result.stderr
    assert (in_tmp / "res.jsonl").read_text() == "keep me"
    assert not (in_tmp / "res.errors.jsonl").exists()  # not even the error file

    forced = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl", "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(read_jsonl(in_tmp / "res.jsonl")) == N - len(FAILING)


def test_not_finished_exits_6_and_wait_waits(start_server, monkeypatch, tmp_path, in_tmp):
    server = start_server(latency=0.3)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    batch_id = create_batch(server.base_url, tmp_path, 16)  # 2 rounds of 8 in flight: >= 0.6 s

    early = runner.invoke(app, ["download", batch_id, "-o", "r.jsonl"])
    assert early.exit_code == 6
    assert "not finished yet" in early.stderr and "--wait" in early.stderr
    assert not (in_tmp / "r.jsonl").exists()

    waited = runner.invoke(app, ["--json", "download", batch_id, "-o", "r.jsonl", "--wait", "--interval", "0.1"])
    assert waited.exit_code == 0, waited.output
    report = json.loads(waited.stdout)
    assert report["status"] == "completed"
    assert report["files"] == [
        {"kind": "output", "path": "r.jsonl", "file_id": report["files"][0]["file_id"], "lines": 16,
         "bytes": (in_tmp / "r.jsonl").stat().st_size, "kept": False}
    ]


def test_cancelled_batch_saves_partial_results_and_exits_5(start_server, monkeypatch, tmp_path, in_tmp):
    server = start_server(latency=0.2)
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    batch_id = create_batch(server.base_url, tmp_path, 40)
    httpx.post(f"{server.base_url}/batches/{batch_id}/cancel").raise_for_status()
    result = runner.invoke(app, ["download", batch_id, "-o", "part.jsonl", "--wait", "--interval", "0.1"])
    assert result.exit_code == 5, result.output
    assert "cancelled" in result.stderr
    done = read_jsonl(in_tmp / "part.jsonl") if (in_tmp / "part.jsonl").exists() else []
    assert len(done) < 40


def test_failed_batch_exits_3_with_nothing_to_download(local_server, monkeypatch, tmp_path, in_tmp):
    monkeypatch.setenv("BATCHCTL_BASE_URL", local_server.base_url)
    batch_id = create_batch(local_server.base_url, tmp_path, 3, broken_line=2)  # the server's validation fails it
    result = runner.invoke(app, ["download", batch_id, "--wait", "--interval", "0.1", "-o", "x.jsonl"])
    assert result.exit_code == 3, result.output
    assert "no output or error file" in result.stderr and "line 2" in result.stderr
    assert not (in_tmp / "x.jsonl").exists()


def test_unknown_batch_is_one_error_line(local_server, monkeypatch, in_tmp):
    monkeypatch.setenv("BATCHCTL_BASE_URL", local_server.base_url)
    result = runner.invoke(app, ["download", "batch_nope"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: not found (HTTP 404)") and "Traceback" not in result.output


def test_format_needs_content(local_server, monkeypatch):
    monkeypatch.setenv("BATCHCTL_BASE_URL", local_server.base_url)
    assert runner.invoke(app, ["download", "batch_x", "--format", "csv"]).exit_code == 2
    assert runner.invoke(app, ["download", "batch_x", "--content", "--format", "xml"]).exit_code == 2

"""`batchctl validate`: summary, line-numbered problems capped on screen, --json report, exit codes, offline."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.cli.context import AppState

runner = CliRunner()


def line(cid: str, *, model: str = "echo", url: str = "/v1/chat/completions", text: str = "hello") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body})


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """validate must never build an API client (nor start or reach a server)."""

    def refuse(*args, **kwargs):
        raise AssertionError("validate tried to contact the server")

    monkeypatch.setattr(AppState, "client", refuse)
    monkeypatch.setenv("BATCHCTL_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there


def test_valid_file_prints_the_summary_and_exits_0(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(line(f"r{i}", text="x" * 40) for i in range(3)) + "\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    from batchctl.cost.estimate import estimate_for_profile

    estimate = estimate_for_profile(path, endpoint=None, profile="local")  # the count its line prices (tested in test_cost_*)
    assert 20 <= estimate.input_tokens <= 45  # 3 prompts of 40 characters, with message overhead
    for label, value in [("Lines", "3"), ("Requests", "3"), ("Endpoint", "/v1/chat/completions"), ("Model", "echo"),
                         ("Est. input tokens", f"~{estimate.input_tokens} ({estimate.method})")]:
        assert re.search(rf"^{re.escape(label)}\s+{re.escape(value)}\s*$", out, re.M), out
    assert "is valid" in result.stderr
    assert f"Estimate: 3 requests, ~{estimate.input_tokens} input tokens" in out


def test_invalid_file_lists_line_numbered_problems_and_exits_1(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([line("a"), "{oops", line("a"), line("c", model="other")]) + "\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "line 2: not valid JSON" in result.stdout
    assert 'line 3: custom_id "a" already used on line 1' in result.stdout
    assert 'line 4: body.model "other" differs from "echo" used on line 1' in result.stdout
    assert result.stderr.startswith("Error: ") and "3 problems" in result.stderr
    assert "Traceback" not in result.output


def test_problems_on_screen_are_capped_with_the_total_counted(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join("[]" for _ in range(50)) + "\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    shown = [row for row in result.stdout.splitlines() if row.startswith("line ")]
    assert len(shown) == 20 and shown[0].startswith("line 1: expected a JSON object")
    assert "… and 30 more" in result.stdout
    assert "50 problems" in result.stderr

    capped = runner.invoke(app, ["validate", str(path), "--max-problems", "5"])
    assert len([r for r in capped.stdout.splitlines() if r.startswith("line ")]) == 5
    assert "… and 45 more" in capped.stdout


def test_json_report_parses_and_carries_the_problems(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(line("a") + "\n" + line("b", url="/v1/nope") + "\n\n")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["requests"] == 2 and report["blank_lines"] == 1
    assert report["provider"] == "local"
    assert [p["line"] for p in report["problems"]] == [2]
    assert report["problems"][0]["param"] == "url"

    ok = tmp_path / "ok.jsonl"
    ok.write_text(line("a") + "\n")
    good = runner.invoke(app, ["--json", "validate", str(ok)])
    assert good.exit_code == 0 and json.loads(good.stdout)["ok"] is True


def test_endpoint_option_is_enforced(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(line("a") + "\n")
    result = runner.invoke(app, ["validate", str(path), "--endpoint", "/v1/embeddings"])
    assert result.exit_code == 1
    assert "line 1: url" in result.stdout and "/v1/embeddings" in result.stdout


def test_profile_limits_apply(tmp_path):
    add = runner.invoke(
        app, ["profile", "add", "small", "--base-url", "http://127.0.0.1:9/v1", "--provider", "openai",
              "--api-key", "sk-test", "--max-requests", "2"]
    )
    assert add.exit_code == 0, add.output
    path = tmp_path / "three.jsonl"
    path.write_text("\n".join(line(f"r{i}") for i in range(3)) + "\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "3 requests, 1 over openai's limit of 2" in result.stdout
    assert "batchctl submit makes it a job of 2 batches, or split it into 2 files" in result.stdout
    # Every line is valid: the estimate is shown and the hint says submit splits it (as it does).
    assert "Estimate: 3 requests" in result.stdout
    assert f"Every line is valid: batchctl submit {path} makes it a job of several batches" in result.stderr
    data = json.loads(runner.invoke(app, ["--json", "validate", str(path)]).stdout)
    assert data["ok"] is False and data["estimate"]["requests"] == 3
    chosen = runner.invoke(app, ["-p", "small", "validate", str(path)])  # the hint keeps the profile whose limits these are
    assert f"Every line is valid: batchctl -p small submit {path} makes it a job" in chosen.stderr

    path.write_text("\n".join(line(f"r{i}") for i in range(3)) + "\n{oops\n")  # a broken line besides
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and "Estimate:" not in result.stdout
    assert "Fix the lines listed above" in result.stderr


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    result = runner.invoke(app, ["validate", str(empty)])
    assert result.exit_code == 1 and "no requests" in result.stdout
    assert "one JSON request per line" in result.stderr and "Fix the lines" not in result.stderr  # no line to fix
    submitted = runner.invoke(app, ["submit", str(empty)])
    assert submitted.exit_code == 1 and "one JSON request per line" in submitted.stderr
    assert "--no-validate" not in submitted.stderr  # it would send nothing either

    missing = runner.invoke(app, ["validate", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: no such file") and "Traceback" not in missing.output

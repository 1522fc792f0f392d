"""Why requests failed: counts by code and HTTP status, top messages with an example id, the next step."""

from __future__ import annotations

import json
from pathlib import Path

from batchctl.cost.failures import MESSAGE_SLOTS, FailureSummary, is_retryable, summarize_failures


def line(cid, *, status=None, code=None, message=None, top_error=None) -> dict:
    if top_error is not None:
        return {"custom_id": cid, "response": None, "error": top_error}
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return {"custom_id": cid, "response": {"status_code": status, "body": body}, "error": None}


def ok(cid) -> dict:
    return {"custom_id": cid, "response": {"status_code": 200, "body": {"choices": []}}, "error": None}


def write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mixed_errors(tmp_path):
    out = write(tmp_path / "out.jsonl", [ok("a"), ok("b"), {"custom_id": "c", "response": {"status_code": 500, "body": {}}}])
    err = write(tmp_path / "err.jsonl", [
        *(line(f"r{i}", status=429, code="rate_limit_exceeded", message="Rate limit reached") for i in range(5)),
        *(line(f"v{i}", status=400, code="invalid_value", message="max_tokens is too large") for i in range(3)),
        line("x", top_error={"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}),
        line("y", status=400, code="context_length_exceeded", message="too long"),
        "not json at all",
    ])  # fmt: skip
    summary = summarize_failures([out, err], batch_ids=["batch_1"])
    data = summary.to_dict()
    assert (data["lines"], data["succeeded"], data["failed"]) == (14, 2, 12)
    by_code = {(g["code"], g["status"]): g for g in data["by_code"]}
    assert by_code[("rate_limit_exceeded", 429)]["count"] == 5 and by_code[("rate_limit_exceeded", 429)]["retryable"]
    assert by_code[("invalid_value", 400)]["count"] == 3 and not by_code[("invalid_value", 400)]["retryable"]
    assert by_code[("http_500", 500)]["retryable"] and by_code[("batch_expired", None)]["retryable"]
    assert by_code[("unreadable_line", None)]["count"] == 1
    assert data["by_code"][0]["code"] == "rate_limit_exceeded"  # most common first
    top = data["top_messages"]
    assert [t["count"] for t in top] == [5, 3, 1]
    assert top[0] == {"message": "Rate limit reached", "count": 5, "example_custom_id": "r0"}
    assert top[1]["example_custom_id"] == "v0"
    assert data["retryable"] == 7
    assert "batchctl retry batch_1" in data["next_step"] and "fix the other 5" in data["next_step"]
    assert data["no_success"] is False


def test_all_retryable_and_no_success(tmp_path):
    err = write(tmp_path / "err.jsonl", [line("a", status=503, code="server_error", message="busy")])
    summary = summarize_failures([err], batch_ids=["batch_2"])
    assert summary.next_step() == "All 1 failures are retryable: batchctl retry batch_2"
    assert summary.no_success


def test_nothing_failed():
    summary = FailureSummary()
    assert summary.next_step() is None and not summary.no_success
    assert summary.to_dict()["by_code"] == []


def test_dashscope_codes_and_top_level_errors():
    assert is_retryable("Throttling.RateQuota", 429)
    assert is_retryable("InternalError", None)
    assert not is_retryable("InvalidParameter", 400)
    assert is_retryable("anything", 502)


def test_distinct_messages_are_capped(tmp_path):
    rows = [line(f"r{i}", status=400, code="invalid_value", message=f"bad value {i}") for i in range(MESSAGE_SLOTS + 50)]
    summary = summarize_failures([write(tmp_path / "e.jsonl", rows)])
    assert len(summary.messages) == MESSAGE_SLOTS + 1
    assert summary.messages["(other messages)"] == 50

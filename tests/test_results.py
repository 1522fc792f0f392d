"""results.py: output naming, overwrite refusal, atomic writes, merge by custom_id, answer extraction."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from batchctl.errors import BatchctlError
from batchctl.answers import content_field, extract_answer, write_content
from batchctl.merging import MergeReport, iter_merged
from batchctl.results import (
    MISSING_RESULT_CODE,
    check_overwrite,
    default_output_name,
    errors_path_for,
    iter_result_lines,
    scan_results,
    write_atomically,
    write_lines,
)


def ok_line(cid: str, text: str = "hi") -> dict:
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
    return {"id": f"r-{cid}", "custom_id": cid, "response": {"status_code": 200, "body": body}, "error": None}


def error_line(cid: str) -> dict:
    body = {"error": {"message": "boom", "code": "server_error"}}
    return {"id": f"r-{cid}", "custom_id": cid, "response": {"status_code": 500, "body": body}, "error": None}


def write_jsonl(path: Path, objs: list[dict], *, blank_between: bool = False) -> Path:
    sep = "\n\n" if blank_between else "\n"
    path.write_text(sep.join(json.dumps(o) for o in objs) + "\n", encoding="utf-8")
    return path


def request(cid: str) -> dict:
    return {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}


# -- names -----------------------------------------------------------------------------------------


def test_default_output_name_follows_the_seed_naming():
    now = time.mktime((2025, 10, 23, 0, 17, 6, 0, 0, -1))
    assert default_output_name("qwen-plus", now=now) == "results_qwen-plus_20251023-001706.jsonl"


def test_default_output_name_makes_model_names_safe_for_files():
    name = default_output_name("Qwen/Qwen2.5 7B", now=0)
    assert name.startswith("results_Qwen-Qwen2.5-7B_") and "/" not in name
    assert default_output_name(None, now=0).startswith("results_batch_")
    assert default_output_name("m", now=0, fmt="csv").endswith(".csv")


@pytest.mark.parametrize(
    ("output", "errors"),
    [("results.jsonl", "results.errors.jsonl"), ("answers.csv", "answers.errors.jsonl"), ("out", "out.errors.jsonl")],
)
def test_error_file_goes_beside_the_output(output, errors, tmp_path):
    assert errors_path_for(tmp_path / output) == tmp_path / errors


def test_check_overwrite_names_existing_files_unless_forced(tmp_path):
    existing = tmp_path / "a.jsonl"
    existing.write_text("x")
    check_overwrite([tmp_path / "new.jsonl"], force=False)
    with pytest.raises(BatchctlError) as info:
        check_overwrite([existing, tmp_path / "new.jsonl"], force=False)
    assert str(existing) in info.value.message and "--force" in info.value.hint
    check_overwrite([existing], force=True)


# -- reading and writing ---------------------------------------------------------------------------


def test_scan_results_counts_lines_and_failures_skipping_blanks(tmp_path):
    path = write_jsonl(tmp_path / "out.jsonl", [ok_line("a"), error_line("b"), ok_line("c")], blank_between=True)
    assert scan_results(path) == (3, 1)


def test_write_atomically_leaves_nothing_when_writing_fails(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old")

    def fail(handle):
        handle.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, fail)
    assert target.read_text() == "old"
    assert not (tmp_path / "out.jsonl.part").exists()


def test_write_lines_returns_the_count_and_ends_each_line(tmp_path):
    target = tmp_path / "x.jsonl"
    assert write_lines(target, iter([b"1", b"2"])) == 2
    assert target.read_bytes() == b"1\n2\n"


# -- merge -----------------------------------------------------------------------------------------


def test_merge_restores_input_order_and_reports_failed_missing_unexpected(tmp_path):
    input_path = write_jsonl(tmp_path / "in.jsonl", [request(c) for c in ("a", "b", "c", "d")], blank_between=True)
    output = write_jsonl(tmp_path / "out.jsonl", [ok_line("c"), ok_line("zz"), ok_line("a"), ok_line("a", "dup")])
    errors = write_jsonl(tmp_path / "err.jsonl", [error_line("b")])

    report = MergeReport()
    merged = [json.loads(line) for line in iter_merged(input_path, [output, errors], report)]

    assert [m["custom_id"] for m in merged] == ["a", "b", "c", "d"]
    assert merged[0]["response"]["body"]["choices"][0]["message"]["content"] == "hi"  # the first of two kept
    assert merged[1]["response"]["status_code"] == 500
    assert merged[3]["error"]["code"] == MISSING_RESULT_CODE and merged[3]["response"] is None
    assert (report.requests, report.succeeded, report.failed, report.missing) == (4, 2, ["b"], ["d"])
    assert report.unexpected == 1  # "zz" is not in the input
    assert report.duplicates == 1
    assert report.unreadable == 0


def test_merge_counts_unreadable_result_lines(tmp_path):
    input_path = write_jsonl(tmp_path / "in.jsonl", [request("a")])
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps(ok_line("a")) + "\n<html>oops</html>\n" + json.dumps({"id": "no-custom-id"}) + "\n")
    report = MergeReport()
    merged = list(iter_merged(input_path, [output], report))
    assert len(merged) == 1 and report.succeeded == 1
    assert report.unreadable == 2 and report.to_dict()["unreadable"] == 2


def test_merged_lines_are_the_servers_bytes_unchanged(tmp_path):
    raw = '{"custom_id": "a",   "response": {"status_code": 200, "body": {"x": 1.50}}, "error": null}'
    (tmp_path / "out.jsonl").write_text(raw + "\r\n")
    input_path = write_jsonl(tmp_path / "in.jsonl", [request("a")])
    assert list(iter_merged(input_path, [tmp_path / "out.jsonl"], MergeReport())) == [raw.encode()]


# -- answers ---------------------------------------------------------------------------------------


def test_extract_answer_of_chat_completion_and_embeddings():
    assert extract_answer(ok_line("a", "hello")) == ("a", "hello", None)
    completion = {"custom_id": "c", "response": {"status_code": 200, "body": {"choices": [{"text": "t"}]}}}
    assert extract_answer(completion) == ("c", "t", None)
    data = [{"index": 1, "embedding": [0.3]}, {"index": 0, "embedding": [0.1, 0.2]}]
    many = {"custom_id": "e", "response": {"status_code": 200, "body": {"object": "list", "data": data}}}
    assert extract_answer(many) == ("e", [[0.1, 0.2], [0.3]], None)
    one = {"custom_id": "e", "response": {"status_code": 200, "body": {"data": [{"index": 0, "embedding": [1.0]}]}}}
    assert extract_answer(one)[1] == [1.0]


def test_extract_answer_reports_errors_from_either_place():
    assert extract_answer(error_line("b")) == ("b", None, "HTTP 500: boom")
    batch_error = {"custom_id": "x", "response": None, "error": {"code": "timeout", "message": "took too long"}}
    assert extract_answer(batch_error) == ("x", None, "timeout: took too long")


def test_content_field_by_endpoint():
    assert content_field("/v1/chat/completions") == "content"
    assert content_field("/v1/embeddings") == "embedding"
    assert content_field("/v1/completions") == "text"
    assert content_field(None) == "content"


def test_write_content_jsonl_and_csv(tmp_path):
    path = write_jsonl(tmp_path / "out.jsonl", [ok_line("a", 'say "hi",\nthen bye'), error_line("b")])
    lines = list(iter_result_lines([path]))

    jsonl = tmp_path / "answers.jsonl"
    assert write_content(jsonl, lines, fmt="jsonl", field_name="content") == 2
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert rows == [
        {"custom_id": "a", "content": 'say "hi",\nthen bye', "error": None},
        {"custom_id": "b", "content": None, "error": "HTTP 500: boom"},
    ]

    target = tmp_path / "answers.csv"
    assert write_content(target, lines, fmt="csv", field_name="content") == 2
    assert target.read_bytes().startswith(b"\xef\xbb\xbfcustom_id,")  # UTF-8 BOM: Excel reads it as UTF-8
    with target.open(newline="", encoding="utf-8-sig") as f:
        table = list(csv.reader(f))
    assert table == [["custom_id", "content", "error"], ["a", 'say "hi",\nthen bye', ""], ["b", "", "HTTP 500: boom"]]


def test_write_content_csv_puts_embeddings_as_json(tmp_path):
    line = json.dumps({"custom_id": "e", "response": {"status_code": 200, "body": {"data": [{"embedding": [0.5, 1]}]}}})
    target = tmp_path / "e.csv"
    write_content(target, [line.encode()], fmt="csv", field_name="embedding")
    with target.open(newline="", encoding="utf-8-sig") as f:
        assert list(csv.reader(f))[1] == ["e", "[0.5, 1]", ""]

"""The bill after a batch: token totals and cost from result lines or the Batch object, streamed."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from batchctl.api.models import Batch
from batchctl.cost.bill import bill_for_download, bill_for_files, iter_stream_lines
from batchctl.cost.prices import BUILTIN_PRICES, PriceTable
from batchctl.cost.usage import summarize_results, usage_from_batch
from batchctl.results import DownloadResult, SavedFile

PRICES = PriceTable(BUILTIN_PRICES)


def chat_line(cid: str, model: str, prompt: int, completion: int, **details) -> dict:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, **details}
    body = {"object": "chat.completion", "model": model, "choices": [{"message": {"content": "ok"}}], "usage": usage}
    return {"id": f"batch_req_{cid}", "custom_id": cid, "response": {"status_code": 200, "body": body}, "error": None}


def error_line(cid: str, status: int, code: str, message: str) -> dict:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return {"id": f"batch_req_{cid}", "custom_id": cid, "response": {"status_code": status, "body": body}, "error": None}


def write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


def test_totals_and_cost_from_known_usage(tmp_path):
    path = write(tmp_path / "out.jsonl", [
        chat_line("a", "gpt-4o-mini-2024-07-18", 1000, 200, prompt_tokens_details={"cached_tokens": 100}),
        chat_line("b", "gpt-4o-mini-2024-07-18", 3000, 800, completion_tokens_details={"reasoning_tokens": 50}),
        error_line("c", 400, "invalid_value", "bad"),
    ])  # fmt: skip
    usage = summarize_results([path]).price_with(PRICES)
    data = usage.to_dict()
    assert (data["input_tokens"], data["output_tokens"], data["total_tokens"]) == (4000, 1000, 5000)
    assert (data["cached_tokens"], data["reasoning_tokens"]) == (100, 50)
    assert (data["lines"], data["succeeded"], data["failed"]) == (3, 2, 1)
    realtime = (4000 * 0.15 + 1000 * 0.60) / 1e6  # gpt-4o-mini, per 1M tokens
    assert data["realtime_cost"] == pytest.approx(realtime)
    assert data["cost"] == pytest.approx(realtime / 2)
    assert data["saving"] == pytest.approx(realtime / 2)
    assert data["currency"] == "USD" and data["unknown_models"] == []
    assert data["models"]["gpt-4o-mini-2024-07-18"]["requests"] == 2


def test_responses_and_embeddings_shapes(tmp_path):
    responses = {"custom_id": "r", "response": {"status_code": 200, "body": {"model": "qwen-plus", "usage": {
        "input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 2}, "output_tokens_details": {"reasoning_tokens": 3}}}}}  # fmt: skip
    embedding = {"custom_id": "e", "response": {"status_code": 200, "body": {"model": "text-embedding-v4", "usage": {"prompt_tokens": 7, "total_tokens": 7}}}}
    usage = summarize_results([write(tmp_path / "o.jsonl", [responses, embedding])]).price_with(PRICES)
    data = usage.to_dict()
    assert (data["input_tokens"], data["output_tokens"], data["total_tokens"]) == (17, 5, 22)
    assert (data["cached_tokens"], data["reasoning_tokens"]) == (2, 3)
    assert data["currency"] == "CNY"
    assert data["cost"] == pytest.approx((10 * 0.8 + 5 * 2.0 + 7 * 0.5) / 1e6 / 2)


def test_unknown_model_shows_tokens_only(tmp_path):
    usage = summarize_results([write(tmp_path / "o.jsonl", [chat_line("a", "mystery-1", 10, 10)])]).price_with(PRICES)
    data = usage.to_dict()
    assert data["total_tokens"] == 20 and data["cost"] is None and data["unknown_models"] == ["mystery-1"]


def test_usage_from_batch_object():
    batch = Batch.model_validate({
        "id": "batch_1", "status": "completed", "model": "gpt-4.1", "request_counts": {"total": 3, "completed": 3, "failed": 0},
        "usage": {"input_tokens": 300, "output_tokens": 60, "total_tokens": 360, "input_tokens_details": {"cached_tokens": 30}},
    })  # fmt: skip
    usage = usage_from_batch(batch).price_with(PRICES)
    data = usage.to_dict()
    assert data["source"] == "batch object"
    assert (data["input_tokens"], data["output_tokens"], data["cached_tokens"], data["succeeded"]) == (300, 60, 30, 3)
    assert data["cost"] == pytest.approx((300 * 2.0 + 60 * 8.0) / 1e6 / 2)
    assert usage_from_batch(Batch.model_validate({"id": "b", "status": "completed"})) is None


def test_bill_of_files_reads_output_and_errors_once(tmp_path):
    out = write(tmp_path / "o.jsonl", [chat_line("a", "qwen-max", 100, 10)])
    err = write(tmp_path / "o.errors.jsonl", [error_line("b", 429, "rate_limit_exceeded", "slow down")])
    bill = bill_for_files([out, err], prices=PRICES)
    data = bill.to_dict()
    assert data["usage"]["total_tokens"] == 110 and data["usage"]["currency"] == "CNY"
    assert data["failures"]["failed"] == 1 and data["failures"]["by_code"][0]["code"] == "rate_limit_exceeded"
    assert data["problem"] is None and data["prices_as_of"] == [BUILTIN_PRICES["qwen-max"].as_of]


def test_bill_for_download_content_and_merged(tmp_path):
    batch = Batch.model_validate({"id": "batch_9", "status": "completed", "request_counts": {"total": 2, "completed": 1, "failed": 1}})
    err = write(tmp_path / "r.errors.jsonl", [error_line("b", 400, "invalid_value", "bad")])
    content = write(tmp_path / "r.jsonl", [{"custom_id": "a", "content": "hi", "error": None}])
    saved = DownloadResult("batch_9", "completed", [SavedFile("content", content, 1, 1), SavedFile("error", err, 1, 1)])
    bill = bill_for_download(saved, batch, prices=PRICES)
    assert (bill.failures.failed, bill.failures.succeeded, bill.problem) == (1, 1, None)
    assert bill.usage.total("total_tokens") == 0  # answers only, and no usage on the batch

    merged = write(tmp_path / "m.jsonl", [chat_line("a", "gpt-4o", 5, 5), error_line("b", 400, "invalid_value", "bad")])
    saved = DownloadResult("batch_9", "completed", [SavedFile("merged", merged, 2, 1), SavedFile("error", err, 1, 1)])
    bill = bill_for_download(saved, batch, prices=PRICES)
    assert (bill.failures.failed, bill.usage.total("total_tokens")) == (1, 10)  # the error file is not counted twice


def test_stream_lines_split_across_chunks():
    chunks = [b'{"a":', b'1}\n{"b"', b":2}\r\n\n", b'{"c":3}']
    assert list(iter_stream_lines(chunks)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_summary_memory_is_flat(tmp_path):
    """50,000 lines summarise in well under a megabyte of Python memory: nothing per line is kept."""
    path = tmp_path / "big.jsonl"
    line = json.dumps(chat_line("x", "gpt-4o", 1000, 100)) + "\n"
    with path.open("w") as f:
        for i in range(50_000):
            f.write(line.replace('"x"', f'"id-{i}"', 1))
    tracemalloc.start()
    try:
        usage = summarize_results([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert usage.total("input_tokens") == 50_000_000
    assert peak < 4 * 1024 * 1024, peak  # the 1 MiB read buffer and one line at a time


def test_usages_of_a_jobs_batches_add_up(tmp_path):
    first = summarize_results([write(tmp_path / "a.jsonl", [chat_line("a", "gpt-4o", 10, 1), chat_line("b", "gpt-4o", 10, 1)])])
    second = usage_from_batch(Batch.model_validate({
        "id": "b2", "status": "completed", "model": "gpt-4o", "request_counts": {"total": 1, "completed": 1},
        "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10},
    }))  # fmt: skip
    first.merge(second)
    data = first.price_with(PRICES).to_dict()
    assert data["source"] == "mixed" and data["succeeded"] == 3
    assert data["models"]["gpt-4o"] == {"requests": 3, "input_tokens": 25, "output_tokens": 7, "total_tokens": 32,
                                        "cached_tokens": 0, "reasoning_tokens": 0}  # fmt: skip

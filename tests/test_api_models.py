"""Models parse what the seeds' providers send (DashScope and OpenAI examples copied verbatim), and tolerate the unexpected."""

from __future__ import annotations

import json

import pytest

from batchctl.api import (
    TERMINAL_STATUSES,
    Batch,
    BatchErrorItem,
    BatchPage,
    FileDeleted,
    FileObject,
    FilePage,
    RequestCounts,
)
from batchctl.api.models import ModelError

# DashScope compatible-mode, "创建Batch任务" response example.
DASHSCOPE_CREATED = """{
"id": "batch_cf957e2b-3295-4357-83af-5fb22ac17e81",
"object": "batch",
"endpoint": "/v1/chat/completions",
"errors": null,
"input_file_id": "file-batch-ADvrUmLWW8TFuKNjGDUUig1c",
"completion_window": "24h",
"status": "validating",
"output_file_id": null,
"error_file_id": null,
"created_at": 1722503223,
"in_progress_at": null,
"expires_at": null,
"finalizing_at": null,
"completed_at": null,
"failed_at": null,
"expired_at": null,
"cancelling_at": null,
"cancelled_at": null,
"request_counts": {
"total": 0,
"completed": 0,
"failed": 0
},
"metadata": {}
}"""

# DashScope "查询Batch任务列表" response example (its `{ ... }` placeholder element removed).
DASHSCOPE_LIST = """{
"object": "list",
"data": [
{
"id": "batch_b8b6a83e-00a3-4068-81d9-0a1705bf6b2c",
"object": "batch",
"endpoint": "/v1/chat/completions",
"errors": null,
"input_file_id": "file-batch-IvxTEDheD70YmyXfqrkE2t64",
"completion_window": "24h",
"status": "completed",
"output_file_id": "file-batch_output-fUy6gxJCyHzT0WHDg2SInyTp",
"error_file_id": null,
"created_at": 1722234109,
"in_progress_at": 1722234109,
"expires_at": null,
"finalizing_at": 1722234165,
"completed_at": 1722234165,
"failed_at": null,
"expired_at": null,
"cancelling_at": null,
"cancelled_at": null,
"request_counts": {
"total": 100,
"completed": 95,
"failed": 5
},
"metadata": {}
}
],
"first_id": "batch_b8b6a83e-00a3-4068-81d9-0a1705bf6b2c",
"last_id": "batch_ca912d83-e9e8-4cf2-89a4-d29743e334e4",
"has_more": true
}"""

# OpenAI Batch guide, the object `batches.create` returns (no finalizing/cancelling fields, metadata null).
OPENAI_CREATED = """{
  "id": "batch_abc123",
  "object": "batch",
  "endpoint": "/v1/chat/completions",
  "errors": null,
  "input_file_id": "file-abc123",
  "completion_window": "24h",
  "status": "validating",
  "output_file_id": null,
  "error_file_id": null,
  "created_at": 1714508499,
  "in_progress_at": null,
  "expires_at": 1714536634,
  "completed_at": null,
  "failed_at": null,
  "expired_at": null,
  "request_counts": {
    "total": 0,
    "completed": 0,
    "failed": 0
  },
  "metadata": null
}"""

DASHSCOPE_INPUT_LINE = (
    '{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "qwen-turbo", '
    '"messages": [{"role": "system", "content": "You are a helpful assistant."}, '
    '{"role": "user", "content": "What is 2+2?"}]}}'
)
DASHSCOPE_OUTPUT_LINE = (
    '{"id": "batch_req_wnaDys", "custom_id": "request-2", "response": {"status_code": 200, "request_id": '
    '"req_c187b3", "body": {"id": "chatcmpl-9758Iw", "object": "chat.completion", "created": 1711475054, '
    '"model": "qwen-max", "choices": [{"index": 0, "message": {"role": "assistant", "content": "2 + 2 equals 4."}, '
    '"finish_reason": "stop"}], "usage": {"prompt_tokens": 24, "completion_tokens": 15, "total_tokens": 39}, '
    '"system_fingerprint": null}}, "error": null}'
)


def test_dashscope_created_batch_parses_every_field():
    batch = Batch.model_validate_json(DASHSCOPE_CREATED)
    assert batch.id == "batch_cf957e2b-3295-4357-83af-5fb22ac17e81"
    assert batch.status == "validating"
    assert batch.input_file_id == "file-batch-ADvrUmLWW8TFuKNjGDUUig1c"
    assert batch.created_at == 1722503223
    assert batch.finalizing_at is None and batch.cancelling_at is None and batch.cancelled_at is None
    assert batch.request_counts == RequestCounts(total=0, completed=0, failed=0)
    assert batch.metadata == {}
    assert batch.errors is None
    assert not batch.is_terminal


def test_dashscope_list_page_parses():
    page = BatchPage.model_validate_json(DASHSCOPE_LIST)
    assert page.has_more is True
    assert page.last_id == "batch_ca912d83-e9e8-4cf2-89a4-d29743e334e4"
    (batch,) = page.data
    assert batch.status == "completed" and batch.is_terminal
    assert batch.output_file_id == "file-batch_output-fUy6gxJCyHzT0WHDg2SInyTp"
    assert batch.finalizing_at == 1722234165
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (100, 95, 5)


def test_openai_created_batch_defaults_missing_timestamps_to_none():
    batch = Batch.model_validate_json(OPENAI_CREATED)
    assert batch.expires_at == 1714536634
    assert batch.finalizing_at is None and batch.cancelled_at is None
    assert batch.metadata is None
    assert batch.model is None and batch.usage is None


def test_unknown_status_and_extra_fields_do_not_crash():
    data = json.loads(DASHSCOPE_CREATED)
    data.update(status="queued_somewhere_new", ds_name="nightly", usage={"input_tokens": 3, "total_tokens": 5})
    batch = Batch.model_validate(data)
    assert batch.status == "queued_somewhere_new"
    assert not batch.is_terminal
    assert batch.model_extra == {"ds_name": "nightly"}
    assert batch.usage is not None and batch.usage.total_tokens == 5


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses(status):
    assert Batch(id="b", status=status).is_terminal


def test_terminal_statuses_are_exactly_the_four():
    assert TERMINAL_STATUSES == {"completed", "failed", "expired", "cancelled"}
    assert not Batch(id="b", status="cancelling").is_terminal


def test_null_request_counts_and_errors_with_data():
    batch = Batch.model_validate(
        {
            "id": "batch_1",
            "status": "failed",
            "request_counts": None,
            "errors": {
                "object": "list",
                "data": [{"code": "invalid_json_line", "message": "bad line", "line": 3, "param": None}],
            },
        }
    )
    assert batch.request_counts == RequestCounts()
    assert batch.errors is not None
    (item,) = batch.errors.data
    assert (item.code, item.line, item.param) == ("invalid_json_line", 3, None)


def test_request_counts_tolerate_null_members():
    counts = RequestCounts.model_validate({"total": 10, "completed": None, "failed": None})
    assert (counts.total, counts.completed, counts.failed) == (10, 0, 0)


def test_timestamps_accept_iso_strings_and_numeric_strings():
    batch = Batch.model_validate(
        {"id": "b", "status": "completed", "created_at": "2024-07-29T06:21:49Z", "completed_at": "1722234165"}
    )
    assert batch.created_at == 1722234109
    assert batch.completed_at == 1722234165


def test_file_object_and_pages():
    file = FileObject.model_validate(
        {
            "id": "file-batch-ADvrUmLWW8TFuKNjGDUUig1c",
            "object": "file",
            "bytes": 21588,
            "created_at": 1722503220,
            "filename": "test_input.jsonl",
            "purpose": "batch",
            "status": "processed",
            "vendor_field": 1,
        }
    )
    assert file.bytes == 21588 and file.status == "processed" and file.expires_at is None
    assert file.model_extra == {"vendor_field": 1}
    page = FilePage.model_validate({"object": "list", "data": [file.model_dump()], "has_more": None})
    assert page.data[0].filename == "test_input.jsonl"
    assert page.has_more is False and page.first_id is None
    assert FilePage.model_validate({"data": None}).data == []
    deleted = FileDeleted.model_validate({"id": "file-1", "object": "file", "deleted": True})
    assert deleted.deleted is True


def test_seed_lines_read_by_what_reads_them(tmp_path):
    # Input lines are checked by validation and result lines read by results, as plain JSON (no models).
    from batchctl.providers import PROVIDERS
    from batchctl.answers import extract_answer
    from batchctl.validation import validate_file

    source = tmp_path / "in.jsonl"
    source.write_text(DASHSCOPE_INPUT_LINE + "\n")
    assert validate_file(source, spec=PROVIDERS["dashscope"]).ok
    assert extract_answer(json.loads(DASHSCOPE_OUTPUT_LINE)) == ("request-2", "2 + 2 equals 4.", None)


def test_error_result_line_with_numeric_code():
    from batchctl.answers import extract_answer

    line = {"id": "batch_req_1", "custom_id": "r1", "response": None, "error": {"code": 400, "message": "bad"}}
    assert extract_answer(line) == ("r1", None, "400: bad")
    assert BatchErrorItem.model_validate({"code": 400, "message": "bad"}).code == "400"


def test_dump_keeps_the_declared_order_then_the_providers_own_fields():
    data = json.loads(DASHSCOPE_CREATED)
    data["ds_name"] = "nightly"
    dumped = Batch.model_validate(data).model_dump(mode="json")
    assert list(dumped)[:8] == ["id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window", "status"]
    assert list(dumped)[-1] == "ds_name" and dumped["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert Batch.model_validate(dumped) == Batch.model_validate(data)  # a dump reads back as the same object


def test_the_constructor_converts_as_model_validate_does():
    batch = Batch(id="b", status="completed", request_counts={"total": "3"}, created_at="1722234165", vendor=1)
    assert batch.request_counts == RequestCounts(total=3) and batch.created_at == 1722234165
    assert batch.vendor == 1 and batch.model_extra == {"vendor": 1}
    with pytest.raises(AttributeError):
        batch.not_sent  # noqa: B018 - neither declared nor sent


def test_a_copy_changes_only_itself():
    batch = Batch(id="b", status="in_progress", request_counts={"total": 2})
    done = batch.model_copy(update={"status": "completed"})
    assert (batch.status, done.status) == ("in_progress", "completed")
    assert done.request_counts == batch.request_counts and done.id == "b"


def test_null_where_a_default_is_declared_is_the_default():
    assert FileDeleted.model_validate({"id": "f", "deleted": None}).deleted is False
    assert BatchPage.model_validate({"data": None, "has_more": None}).data == []
    first, second = Batch(id="a", status="s"), Batch(id="b", status="s")
    first.request_counts.total = 5  # defaults are each object's own
    assert second.request_counts.total == 0


def test_what_a_provider_may_send_that_python_names_otherwise():
    # A field called `self` (a link), whole numbers as text with a zero fraction, a huge integer timestamp.
    batch = Batch.model_validate(
        {"id": "b", "status": "completed", "self": "https://x/v1/batches/b", "request_counts": {"total": "20.0", "failed": " 3 "},
         "created_at": 10**30}  # fmt: skip
    )
    assert batch.self == "https://x/v1/batches/b" and batch.request_counts == RequestCounts(total=20, failed=3)
    assert batch.created_at == 10**30
    for text in ("1.5", "1e3", "twenty", ""):
        with pytest.raises(ModelError, match="request_counts.total: Input should be a valid integer"):
            Batch.model_validate({"id": "b", "status": "s", "request_counts": {"total": text}})


def test_a_json_dump_is_valid_json_and_its_own():
    batch = Batch.model_validate({"id": "b", "status": "s", "score": float("nan"), "metadata": {"a": [float("inf")]}})
    dumped = batch.model_dump(mode="json")
    assert json.loads(json.dumps(dumped, allow_nan=False))["score"] is None and dumped["metadata"] == {"a": [None]}
    dumped["metadata"]["a"].append(1)  # a dump shares nothing with the object
    assert batch.metadata == {"a": [float("inf")]}


@pytest.mark.parametrize("odd", [10**30, -(10**12)])
def test_a_timestamp_no_calendar_holds_is_shown_as_sent_not_a_crash(odd):
    """The models take any integer timestamp; the panels, lines and file tables must show it too."""
    import io

    from rich.console import Console

    from batchctl.cli.commands.files import _when
    from batchctl.cli.render import BatchView, batch_panel, format_timestamp, list_lines

    batch = Batch(id="b", status="completed", created_at=odd, completed_at=odd, request_counts={"total": 1, "completed": 1})
    assert format_timestamp(odd) == str(odd) and _when(odd) == str(odd)
    console = Console(file=io.StringIO(), width=120)
    console.print(batch_panel(BatchView(batch)))
    assert str(odd) in console.file.getvalue()
    assert any(str(odd) in line for line in list_lines([batch]))

"""The API layer's answers: a 2xx that is not the object asked for, and secrets masked before any cut."""

from __future__ import annotations

import json

import httpx
import pytest

from batchctl.api import BatchClient
from batchctl.api._answers import UnexpectedAnswerError
from batchctl.api._base_client import DEBUG_BODY_LIMIT
from batchctl.api.errors import APIResponseValidationError

KEY = "sk-live-0123456789abcdefghij"
OTHER = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"


def client(status: int, content: bytes | str, log: list[str] | None = None, content_type: str = "application/json"):
    body = content.encode() if isinstance(content, str) else content
    transport = httpx.MockTransport(lambda r: httpx.Response(status, content=body, headers={"content-type": content_type}))
    c = BatchClient("http://x/v1", KEY, max_retries=0, transport=transport, debug_log=None if log is None else log.append)
    c._sleep = lambda s: None
    return c


@pytest.mark.parametrize(
    ("call", "content", "message"),
    [
        ("batch", {"object": "batch", "status": "completed"}, "the server answered 200 but not with a batch: `id` is missing"),
        ("batch", {"id": "batch_1"}, "the server answered 200 but not with a batch: `status` is missing"),
        ("batch", {"id": "", "status": ""}, "the server answered 200 but not with a batch: `id` is empty or not a string"),
        ("batch", [], "the server answered 200 but not with a batch: got list instead of an object"),
        ("file", {"object": "file"}, "the server answered 200 but not with a file: `id` is missing"),
        ("batches", {"object": "list"}, "the server answered 200 but not with a list of batches: `data` is missing"),
        ("files", {}, "the server answered 200 but not with a list of files: `data` is missing"),
    ],
)
def test_a_2xx_without_the_fields_of_the_object_is_an_error_of_its_own(call, content, message):
    c = client(200, json.dumps(content))
    calls = {"batch": lambda: c.batches.retrieve("b"), "file": lambda: c.files.retrieve("f"),
             "batches": lambda: c.batches.list(), "files": lambda: c.files.list()}  # fmt: skip
    with pytest.raises(UnexpectedAnswerError) as info:
        calls[call]()
    assert info.value.message == message
    assert isinstance(info.value, APIResponseValidationError) and info.value.status == 200


def test_an_html_page_answered_200_is_named_by_its_title():
    c = client(200, "<!DOCTYPE html><html><head><title>Sign in</title></head><body>...</body></html>", content_type="text/html")
    with pytest.raises(UnexpectedAnswerError, match=r"not with a batch: an HTML page \(Sign in\)"):
        c.batches.retrieve("b")


def test_keys_in_a_2xx_body_are_masked_in_the_parsed_model():
    body = {"id": "batch_1", "status": f"weird {KEY}", "errors": {"object": "list", "data": [
        {"code": "x", "message": f"Authorization: Bearer {KEY}; also {OTHER}"}]}}  # fmt: skip
    batch = client(200, json.dumps(body)).batches.retrieve("batch_1")
    dumped = batch.model_dump_json()
    assert KEY not in dumped and OTHER not in dumped
    assert KEY[:8] not in dumped and OTHER[:9] not in dumped
    assert batch.status == "weird sk-…ghij"


@pytest.mark.parametrize("cut", [-3, -10, -20])
def test_the_debug_log_redacts_before_it_cuts_a_long_body(cut):
    # The key straddles the log's limit: cut first, its head would be shown unrecognised.
    text = "x" * (DEBUG_BODY_LIMIT + cut) + KEY + "y" * 100
    log: list[str] = []
    with pytest.raises(UnexpectedAnswerError):
        client(200, text, log, content_type="text/plain").batches.retrieve("b")
    assert not any(KEY[:6] in line for line in log), log[-2:]


@pytest.mark.parametrize("at", [180, 190, 195])
def test_an_error_snippet_redacts_before_it_cuts(at):
    text = "z" * at + KEY + " tail"
    with pytest.raises(APIResponseValidationError) as info:
        client(200, text, content_type="text/plain").batches.retrieve("b")
    assert KEY[:6] not in str(info.value)
    with pytest.raises(APIResponseValidationError) as info:
        client(200, text, content_type="text/plain").files.retrieve("f")
    assert KEY[:6] not in str(info.value)


def test_an_error_answer_quoting_the_key_is_masked():
    body = json.dumps({"error": {"message": f"invalid header 'Bearer {KEY}' and {OTHER}", "type": "x"}})
    with pytest.raises(Exception) as info:
        client(400, body).batches.retrieve("b")
    assert KEY not in str(info.value) and OTHER not in str(info.value)
    assert KEY not in json.dumps(info.value.body) and OTHER not in json.dumps(info.value.body)


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ({"id": "b", "status": "completed", "request_counts": {"total": "many"}}, "request_counts.total: Input should be a valid integer"),
        ({"id": "b", "status": "completed", "created_at": float("inf")}, "created_at: Input should be a valid integer"),
        ({"id": "b", "status": "completed", "errors": {"data": [{"line": "third"}]}}, "errors.data.0.line: Input should be a valid integer"),
        ({"id": "b", "status": "completed", "metadata": ["a"]}, "metadata: Input should be a valid dictionary"),
    ],
)
def test_a_field_of_the_wrong_kind_is_named_by_its_path(content, where):
    # json.dumps writes inf as Infinity, which Python's json (the API layer's parser) reads back.
    with pytest.raises(APIResponseValidationError) as info:
        client(200, json.dumps(content)).batches.retrieve("b")
    assert info.value.message == f"Unexpected response from GET http://x/v1/batches/b: {where} (expected a Batch)"

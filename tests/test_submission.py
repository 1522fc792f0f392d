"""submission.py: metadata parsing, the private upload copy (model rewrite, blank lines), create failures."""

from __future__ import annotations

import json

import httpx
import pytest

from batchctl.api import BatchClient
from batchctl.errors import BatchctlError
from batchctl.submission import BatchCreateError, UploadFile, create_batch, parse_metadata, retry_command


def test_parse_metadata():
    assert parse_metadata([]) is None
    assert parse_metadata(["a=1", "b=x=y", "empty="]) == {"a": "1", "b": "x=y", "empty": ""}
    with pytest.raises(BatchctlError, match="not key=value"):
        parse_metadata(["novalue"])
    with pytest.raises(BatchctlError):
        parse_metadata(["=v"])


def test_model_rewrite_keeps_line_numbers_and_never_touches_the_source(tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [
        '\ufeff{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "old", "messages": [{"role": "user", "content": "é"}]}}',
        "",
        "{broken",
        '{"custom_id": "b", "body": {"messages": []}}',
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = source.read_bytes()

    with UploadFile(source) as upload:
        upload.rewrite(model="new")
        assert upload.path != source and upload.path.name == "in.jsonl"
        copy = upload.path.read_text(encoding="utf-8").split("\n")
        assert len(copy) == len(lines) + 1  # same lines, same numbers
        assert json.loads(copy[0])["body"] == {"model": "new", "messages": [{"role": "user", "content": "é"}]}
        assert copy[1] == "" and copy[2] == "{broken"
        assert json.loads(copy[3])["body"]["model"] == "new"
        assert upload.models_rewritten == 2

        upload.rewrite(drop_blank_lines=True)
        assert upload.blank_lines_dropped == 1
        assert upload.path.read_text(encoding="utf-8").count("\n") == 3
        scratch = upload.path.parent
    assert not scratch.exists()
    assert source.read_bytes() == before


def test_upload_file_without_changes_is_the_source(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    with UploadFile(source) as upload:
        assert upload.path == source


def test_failed_create_names_the_uploaded_file_and_the_retry_command():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "bad window", "code": "invalid_value"}})

    client = BatchClient("http://test/v1", "k", transport=httpx.MockTransport(handler))
    with pytest.raises(BatchCreateError) as info:
        create_batch(client, input_file_id="file-123", endpoint="/v1/embeddings", completion_window="48h",
                     metadata={"ds_name": "my run"})
    err = info.value
    assert err.file_id == "file-123"
    assert "file-123" in err.message and "bad window" in err.message
    assert "batchctl submit --input-file-id file-123 --endpoint /v1/embeddings --completion-window 48h" in err.hint
    assert "'ds_name=my run'" in err.hint


def test_create_is_sent_once_even_when_the_connection_drops():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    client = BatchClient("http://test/v1", "k", transport=httpx.MockTransport(handler), max_retries=3)
    client._sleep = lambda s: None
    with pytest.raises(BatchCreateError) as info:
        create_batch(client, input_file_id="file-9", endpoint="/v1/chat/completions")
    assert len(calls) == 1
    assert "batchctl list" in info.value.hint  # it may have been created: look before retrying


def test_retry_command_omits_the_default_window():
    assert retry_command("f", "/v1/chat/completions", "24h", None) == (
        "batchctl submit --input-file-id f --endpoint /v1/chat/completions"
    )

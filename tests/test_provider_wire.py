"""The API layer's adapters per provider (quirks.py), over httpx.MockTransport: what goes out, what comes back.

Full cycles through the CLI against each provider's stand-in are in tests/test_presets_cycle*.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from batchctl.api import BatchClient, FilesNotServedError
from batchctl.api.models import Batch
from batchctl.quirks import OPENAI_WIRE, WIRE_QUIRKS, wire_of

BASE = "https://api.example.test/v1"
KEY = "sk-live-SECRETabcdef9876"
AZURE_KEY = "0123456789abcdef0123456789abcdef"  # Azure keys are 32 hex characters, not sk-shaped
# A LiteLLM managed-file id: base64 with every URL-reserved character base64 uses.
LITELLM_ID = "bGl0ZWxsbV9wcm94eTphcHBsaWNhdGlvbi9vY3RldC1zdHJlYW07dW5pZmllZF9pZCxmaWxlLWFiYz+/YWJj=="


class Recorder:
    """A MockTransport handler: answers with `answer(request)` and keeps every request, read."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request)


def client_for(provider: str, answer, **kwargs) -> tuple[BatchClient, Recorder]:
    rec = Recorder(answer)
    kwargs.setdefault("api_key", KEY)
    client = BatchClient(BASE, transport=httpx.MockTransport(rec), wire=wire_of(provider), **kwargs)
    client._sleep = lambda _s: None
    return client, rec


def together_batch(status="IN_PROGRESS", **extra):
    return {"id": "b7f3-uuid", "status": status, "endpoint": "/v1/chat/completions", "input_file_id": "file-1", **extra}


# -- the table -------------------------------------------------------------------------------------------


def test_providers_without_an_entry_speak_openai():
    for name in ("openai", "dashscope", "newapi", "local", "groq", "moonshot", None, "no-such"):
        assert wire_of(name) is OPENAI_WIRE
    assert set(WIRE_QUIRKS) == {"together", "zhipu", "gemini", "azure", "litellm"}
    assert wire_of(" Together ").upload_purpose == "batch-api"


def test_every_quirk_is_said_in_words():
    assert OPENAI_WIRE.notes() == []
    for name, wire in WIRE_QUIRKS.items():
        assert wire.notes(), name
    assert "purpose=batch-api" in " ".join(wire_of("together").notes())


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        ("COMPLETED", "completed"),
        ("IN_PROGRESS", "in_progress"),
        ("VALIDATING", "validating"),
        ("CANCELING", "cancelling"),
        ("CANCELLED", "cancelled"),
        ("in_progress", "in_progress"),
        ("QUEUED", "QUEUED"),  # unknown: passed through as sent, the watcher handles it as today
        ("", ""),
    ],
)
def test_together_statuses_in_openai_spelling(sent, seen):
    assert wire_of("together").normalize_status(sent) == seen


def test_other_providers_keep_statuses_as_sent():
    assert OPENAI_WIRE.normalize_status("COMPLETED") == "COMPLETED"


# -- together ----------------------------------------------------------------------------------------


def test_together_upload_purpose_and_create_envelope(tmp_path):
    upload = tmp_path / "in.jsonl"
    upload.write_text('{"custom_id": "a"}\n')
    warnings: list[str] = []

    def answer(request):
        if request.url.path == "/v1/files":
            return httpx.Response(200, json={"id": "file-1", "object": "file", "purpose": "batch-api"})
        return httpx.Response(200, json={"job": together_batch("VALIDATING"), "warning": "model is slow today"})

    client, rec = client_for("together", answer, warn=warnings.append)
    client.files.create(path=upload)
    batch = client.batches.create(input_file_id="file-1", endpoint="/v1/chat/completions")

    assert b'name="purpose"\r\n\r\nbatch-api\r\n' in rec.requests[0].content
    assert (batch.id, batch.status) == ("b7f3-uuid", "validating")
    assert batch.model_dump()["warning"] == "model is slow today"  # --json shows it too
    assert warnings == ["the server's note on batch b7f3-uuid: model is slow today"]


def test_together_create_without_envelope_or_warning_is_a_plain_batch():
    warnings: list[str] = []
    client, _ = client_for("together", lambda r: httpx.Response(200, json={"job": together_batch(), "warning": ""}), warn=warnings.append)
    assert client.batches.create(input_file_id="f", endpoint="/v1/chat/completions").status == "in_progress"
    client, _ = client_for("together", lambda r: httpx.Response(200, json=together_batch("COMPLETED")), warn=warnings.append)
    assert client.batches.create(input_file_id="f", endpoint="/v1/chat/completions").status == "completed"
    assert warnings == []


def test_together_statuses_and_progress_on_retrieve_list_cancel():
    def answer(request):
        if request.url.path == "/v1/batches":
            data = [together_batch("COMPLETED", progress=100), together_batch("SOMETHING_NEW")]
            return httpx.Response(200, json={"data": data, "has_more": False})
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json=together_batch("CANCELLING"))
        return httpx.Response(200, json=together_batch(progress=42.5))

    client, _ = client_for("together", answer)
    batch = client.batches.retrieve("b7f3-uuid")
    assert (batch.status, batch.progress, batch.request_counts.total) == ("in_progress", 42.5, 0)
    assert [b.status for b in client.batches.list().data] == ["completed", "SOMETHING_NEW"]
    assert client.batches.cancel("b7f3-uuid").status == "cancelling"


def test_openai_dialect_leaves_an_envelope_alone():
    """A provider without the quirk never unwraps: a `{job: ...}` answer is not a batch there."""
    from batchctl.api import APIResponseValidationError

    client, _ = client_for("openai", lambda r: httpx.Response(200, json={"job": together_batch()}))
    with pytest.raises(APIResponseValidationError, match="not with a batch"):
        client.batches.create(input_file_id="f", endpoint="/v1/chat/completions")


@pytest.mark.parametrize(("given", "kept"), [(42, 42.0), ("7.5", 7.5), (140, 100.0), (-3, 0.0), ("n/a", None), (None, None), (True, None)])
def test_progress_is_a_percentage_or_nothing(given, kept):
    assert Batch(id="b", status="in_progress", progress=given).progress == kept


# -- azure -------------------------------------------------------------------------------------------


def test_azure_sends_the_key_in_an_api_key_header_and_never_logs_it():
    lines: list[str] = []
    client, rec = client_for(
        "azure", lambda r: httpx.Response(401, json={"error": {"message": f"bad key {AZURE_KEY}"}}),
        api_key=AZURE_KEY, debug_log=lines.append, max_retries=0,
    )  # fmt: skip
    from batchctl.api import AuthenticationError

    with pytest.raises(AuthenticationError) as caught:
        client.batches.retrieve("batch_1")
    sent = rec.requests[0].headers
    assert sent["api-key"] == AZURE_KEY and "authorization" not in sent
    assert AZURE_KEY not in "\n".join(lines) + str(caught.value) + repr(client)
    assert lines, "the debug log said nothing"


def test_bearer_providers_send_authorization():
    client, rec = client_for("groq", lambda r: httpx.Response(200, json=together_batch("completed")))
    client.batches.retrieve("b")
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}" and "api-key" not in rec.requests[0].headers


# -- gemini ------------------------------------------------------------------------------------------


def test_gemini_slash_ids_are_one_encoded_path_segment():
    client, rec = client_for("gemini", lambda r: httpx.Response(200, json=together_batch("in_progress", id="batches/abc-1")))
    assert client.batches.retrieve("batches/abc-1").id == "batches/abc-1"
    client.batches.cancel("batches/abc-1")
    raw = [r.url.raw_path.decode() for r in rec.requests]
    assert raw == ["/v1/batches/batches%2Fabc-1", "/v1/batches/batches%2Fabc-1/cancel"]


def test_gemini_files_are_refused_before_any_request(tmp_path):
    upload = tmp_path / "in.jsonl"
    upload.write_text("{}\n")
    client, rec = client_for("gemini", lambda r: httpx.Response(500))
    calls = [
        lambda: client.files.create(path=upload),
        lambda: client.files.content("files/out-1"),
        lambda: client.files.download_to("files/out-1", tmp_path / "out.jsonl"),
        lambda: client.files.retrieve("files/out-1"),
        lambda: client.files.list(),
        lambda: client.files.delete("files/out-1"),
    ]
    for call in calls:
        with pytest.raises(FilesNotServedError) as caught:
            call()
        assert "Files API" in caught.value.hint and "nothing was sent" in caught.value.message
    assert rec.requests == [] and not (tmp_path / "out.jsonl").exists()


# -- litellm -----------------------------------------------------------------------------------------


def test_litellm_base64_ids_kept_whole_and_encoded(tmp_path):
    def answer(request):
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=b"{}\n")
        if request.url.path == "/v1/batches":
            return httpx.Response(200, json={"data": [together_batch("completed", id=LITELLM_ID)], "has_more": False})
        return httpx.Response(200, json=together_batch("completed", id=LITELLM_ID, output_file_id=LITELLM_ID))

    client, rec = client_for("litellm", answer)
    batch = client.batches.retrieve(LITELLM_ID)
    assert batch.id == batch.output_file_id == LITELLM_ID
    client.files.download_to(LITELLM_ID, tmp_path / "out.jsonl")
    client.batches.list(after=LITELLM_ID)
    encoded = LITELLM_ID.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert rec.requests[0].url.raw_path.decode() == f"/v1/batches/{encoded}"
    assert rec.requests[1].url.raw_path.decode() == f"/v1/files/{encoded}/content"
    assert rec.requests[2].url.params["after"] == LITELLM_ID  # decoded back whole: no `+` read as a space


def test_litellm_custom_llm_provider_on_upload_create_and_queries(tmp_path):
    upload = tmp_path / "in.jsonl"
    upload.write_text("{}\n")

    def answer(request):
        if request.url.path == "/v1/files":
            return httpx.Response(200, json={"id": LITELLM_ID, "object": "file"})
        return httpx.Response(200, json=together_batch("validating"))

    client, rec = client_for("litellm", answer, custom_llm_provider="azure")
    client.files.create(path=upload)
    client.batches.create(input_file_id=LITELLM_ID, endpoint="/v1/chat/completions")
    client.batches.retrieve("b")
    assert b'name="custom_llm_provider"\r\n\r\nazure\r\n' in rec.requests[0].content
    assert json.loads(rec.requests[1].content)["custom_llm_provider"] == "azure"
    assert all(r.url.params["custom_llm_provider"] == "azure" for r in rec.requests)


def test_without_custom_llm_provider_nothing_extra_is_sent(tmp_path):
    upload = tmp_path / "in.jsonl"
    upload.write_text("{}\n")
    client, rec = client_for("litellm", lambda r: httpx.Response(200, json={"id": "file-1", "object": "file"}))
    client.files.create(path=upload)
    assert b"custom_llm_provider" not in rec.requests[0].content and not rec.requests[0].url.params

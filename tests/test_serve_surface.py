"""The whole OpenAI Batch surface of `batchctl serve`, through the official openai SDK and raw HTTP:
Responses and moderations batches, upstream forwarding of any endpoint, file purposes, unknown
arguments, expiry parameters, stale cursors and `x-should-retry`."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from openai.types import ModerationCreateResponse
from openai.types.responses import Response

from server_fixture import app_in_thread
from test_server_api import chat_lines, create_batch, upload, wait_batch, write_jsonl

pytestmark = pytest.mark.e2e

MODEL = "gpt-4.1-mini"


def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=2)


def run_batch(client: openai.OpenAI, path, endpoint: str, **extra):
    """Upload `path`, create a batch on `endpoint`, wait until it ends; (batch, output lines, error lines)."""
    with open(path, "rb") as f:
        file = client.files.create(file=f, purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint=endpoint, completion_window="24h", **extra)
    deadline = time.monotonic() + 15
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)

    def lines(file_id):
        return [json.loads(x) for x in client.files.content(file_id).text.splitlines()] if file_id else []

    return batch, lines(batch.output_file_id), lines(batch.error_file_id)


def test_openai_sdk_completes_a_responses_batch_and_reads_usage(local_server, tmp_path):
    rows = [
        {"custom_id": "plain", "method": "POST", "url": "/v1/responses",
         "body": {"model": MODEL, "input": "What is a batch?"}},
        {"custom_id": "items", "method": "POST", "url": "/v1/responses",
         "body": {"model": MODEL, "instructions": "Be brief.", "input": [
             {"role": "user", "content": "first"},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "second question"}]},
         ]}},
        {"custom_id": "short", "method": "POST", "url": "/v1/responses",
         "body": {"model": MODEL, "input": "x" * 200, "max_output_tokens": 16}},
    ]  # fmt: skip
    batch, output, errors = run_batch(sdk(local_server), write_jsonl(tmp_path / "r.jsonl", rows), "/v1/responses")
    assert batch.status == "completed" and errors == [], (batch, errors)
    assert batch.endpoint == "/v1/responses" and batch.model == MODEL
    bodies = {line["custom_id"]: line["response"]["body"] for line in output}
    responses = {cid: Response.model_validate(body) for cid, body in bodies.items()}  # the SDK's own type
    assert responses["plain"].object == "response" and responses["plain"].status == "completed"
    assert responses["plain"].output_text == "echo: What is a batch?"
    assert responses["items"].output_text == "echo: second question"
    assert responses["items"].instructions == "Be brief."
    message = bodies["plain"]["output"][0]
    assert message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    assert message["content"][0]["type"] == "output_text" and message["content"][0]["annotations"] == []
    assert responses["short"].status == "incomplete"
    assert responses["short"].incomplete_details.reason == "max_output_tokens"
    assert responses["short"].usage.output_tokens <= 16
    for body in bodies.values():
        usage = body["usage"]
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
        assert usage["input_tokens_details"]["cached_tokens"] == 0
        assert usage["output_tokens_details"]["reasoning_tokens"] == 0
    # The Batch object's usage is the sum of its results' usage.
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(b["usage"]["input_tokens"] for b in bodies.values())
    assert batch.usage.output_tokens == sum(b["usage"]["output_tokens"] for b in bodies.values())
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens
    assert batch.usage.input_tokens_details.cached_tokens == 0
    assert batch.usage.output_tokens_details.reasoning_tokens == 0


def test_openai_sdk_completes_a_moderations_batch(local_server, tmp_path):
    rows = [
        {"custom_id": "one", "method": "POST", "url": "/v1/moderations",
         "body": {"model": "omni-moderation-latest", "input": "a sentence"}},
        {"custom_id": "three", "method": "POST", "url": "/v1/moderations",
         "body": {"model": "omni-moderation-latest", "input": ["a", "b", "c"]}},
        {"custom_id": "parts", "method": "POST", "url": "/v1/moderations",
         "body": {"model": "omni-moderation-latest", "input": [
             {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}},
    ]  # fmt: skip
    client = sdk(local_server)
    batch, output, errors = run_batch(client, write_jsonl(tmp_path / "m.jsonl", rows), "/v1/moderations")
    assert batch.status == "completed" and errors == [] and batch.model == "omni-moderation-latest"
    bodies = {line["custom_id"]: line["response"]["body"] for line in output}
    parsed = {cid: ModerationCreateResponse.model_validate(body) for cid, body in bodies.items()}
    assert [len(parsed[c].results) for c in ("one", "three", "parts")] == [1, 3, 1]
    assert all(body["id"].startswith("modr-") for body in bodies.values())
    result = parsed["three"].results[0]
    assert result.flagged is False and result.categories.violence is False
    assert 0 <= result.category_scores.violence < 0.01
    assert set(bodies["one"]["results"][0]["categories"]) == set(bodies["one"]["results"][0]["category_scores"])
    # Moderations report no tokens: the batch's usage is there, and zero.
    assert batch.usage is not None and batch.usage.total_tokens == 0
    # Deterministic: the same input scores the same.
    again, _, _ = run_batch(client, write_jsonl(tmp_path / "m2.jsonl", rows[:1]), "/v1/moderations")
    assert again.status == "completed"
    repeat = json.loads(client.files.content(again.output_file_id).text)["response"]["body"]
    assert repeat["results"][0]["category_scores"] == bodies["one"]["results"][0]["category_scores"]


def test_completions_still_work(local_server, tmp_path):
    rows = [{"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "hi"}}]
    batch, output, _ = run_batch(sdk(local_server), write_jsonl(tmp_path / "c.jsonl", rows), "/v1/completions")
    assert batch.status == "completed" and output[0]["response"]["body"]["choices"][0]["text"] == "echo: hi"
    assert batch.usage.input_tokens == output[0]["response"]["body"]["usage"]["prompt_tokens"]


def test_echo_refuses_images_and_videos_on_create(local_server, tmp_path):
    client = sdk(local_server)
    with open(write_jsonl(tmp_path / "i.jsonl", chat_lines(1)), "rb") as f:
        file = client.files.create(file=f, purpose="batch")
    for endpoint in ("/v1/images/generations", "/v1/images/edits", "/v1/videos"):
        with pytest.raises(openai.BadRequestError) as err:
            client.batches.create(input_file_id=file.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
        assert err.value.param == "endpoint" and err.value.code == "invalid_value"
        message = err.value.body["message"]
        assert endpoint in message and "/v1/responses" in message and "/v1/moderations" in message
        assert "--upstream" in message


# -- --upstream forwards any endpoint ----------------------------------------------------------


@pytest.fixture
def any_endpoint_upstream():
    """An upstream that answers every POST under /v1/ with the path and body it got."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: list[tuple[str, dict]] = []

    async def anything(request: Request):
        body = await request.json()
        seen.append((request.url.path, body))
        if request.url.path == "/v1/chat/completions":  # chat's names for the usage details
            usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                     "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}
        else:  # the Responses API's (and gpt-image-1's)
            usage = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10,
                     "input_tokens_details": {"cached_tokens": 1}, "output_tokens_details": {"reasoning_tokens": 0}}
        return JSONResponse({"created": 1, "data": [{"b64_json": "AAAA"}], "path": request.url.path, "usage": usage})

    app = Starlette(routes=[Route("/v1/{rest:path}", anything, methods=["POST"])])
    with app_in_thread(app) as root:
        yield f"{root}/v1", seen


def test_upstream_accepts_and_forwards_any_v1_endpoint(start_server, any_endpoint_upstream, tmp_path):
    url, seen = any_endpoint_upstream
    server = start_server(extra_args=["--upstream", url])
    client = sdk(server)
    rows = [
        {"custom_id": f"img-{i}", "method": "POST", "url": "/v1/images/generations",
         "body": {"model": "gpt-image-1", "prompt": f"a cat {i}"}}
        for i in range(3)
    ]  # fmt: skip
    batch, output, errors = run_batch(client, write_jsonl(tmp_path / "img.jsonl", rows), "/v1/images/generations")
    assert batch.status == "completed" and errors == [] and batch.model == "gpt-image-1"
    assert sorted(seen, key=lambda s: s[1].get("prompt", "")) == [
        ("/v1/images/generations", {"model": "gpt-image-1", "prompt": f"a cat {i}"}) for i in range(3)
    ]
    assert {line["response"]["body"]["path"] for line in output} == {"/v1/images/generations"}
    assert (batch.usage.input_tokens, batch.usage.output_tokens, batch.usage.total_tokens) == (21, 9, 30)
    assert batch.usage.input_tokens_details.cached_tokens == 3
    # Chat's usage details are summed under their own names.
    chat, _, _ = run_batch(client, write_jsonl(tmp_path / "chat.jsonl", chat_lines(2)), "/v1/chat/completions")
    assert (chat.usage.input_tokens, chat.usage.output_tokens, chat.usage.total_tokens) == (20, 10, 30)
    assert chat.usage.input_tokens_details.cached_tokens == 8
    assert chat.usage.output_tokens_details.reasoning_tokens == 4
    # Still an API path: a traversal or a query is refused on create.
    with open(write_jsonl(tmp_path / "x.jsonl", rows), "rb") as f:
        file = client.files.create(file=f, purpose="batch")
    for bad in ("/v1/../admin", "/v1/images?x=1", "/v2/things"):
        with pytest.raises(openai.BadRequestError) as err:
            client.batches.create(input_file_id=file.id, endpoint=bad, completion_window="24h")  # type: ignore[arg-type]
        assert err.value.param == "endpoint"


# -- files: purposes, unknown arguments, expiry parameters --------------------------------------


def test_every_openai_purpose_is_stored_but_only_batch_files_start_a_batch(http, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(1))
    for purpose in ("user_data", "fine-tune", "assistants", "vision", "evals"):
        with open(path, "rb") as f:
            response = http.post("/files", files={"file": ("in.jsonl", f)}, data={"purpose": purpose})
        assert response.status_code == 200, response.text
        stored = response.json()
        assert stored["purpose"] == purpose and stored["expires_at"] is None  # only batch files expire by default
        assert http.get(f"/files/{stored['id']}/content").content == path.read_bytes()
    refused = http.post("/batches", json={"input_file_id": stored["id"], "endpoint": "/v1/chat/completions",
                                          "completion_window": "24h"})  # fmt: skip
    assert refused.status_code == 400 and refused.headers["x-should-retry"] == "false"
    error = refused.json()["error"]
    assert error["param"] == "input_file_id" and "purpose 'batch'" in error["message"] and "'evals'" in error["message"]


def test_unknown_arguments_answer_unknown_parameter(local_server, http, tmp_path):
    file = upload(http, write_jsonl(tmp_path / "in.jsonl", chat_lines(1)))
    client = sdk(local_server)
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=file["id"], endpoint="/v1/chat/completions", completion_window="24h",
                              extra_body={"priority": "high"})  # fmt: skip
    assert err.value.code == "unknown_parameter" and err.value.param == "priority"
    assert err.value.body["message"] == "Unrecognized request argument supplied: priority"
    with open(tmp_path / "in.jsonl", "rb") as f:
        response = http.post("/files", files={"file": ("in.jsonl", f)}, data={"purpose": "batch", "tags": "x"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_parameter"
    assert response.json()["error"]["param"] == "tags"
    with open(tmp_path / "in.jsonl", "rb") as f:
        response = http.post("/files", files={"document": ("in.jsonl", f)}, data={"purpose": "batch"})
    assert response.json()["error"]["param"] == "document"
    assert list((local_server.data_dir / "files").glob("*.upload")) == []  # the refused uploads left nothing


BAD_EXPIRES_AFTER = [
    ({"anchor": "nope", "seconds": 3600}, "expires_after.anchor"),
    ({"anchor": "created_at", "seconds": 5}, "expires_after.seconds"),
    ({"anchor": "created_at", "seconds": 2_592_001}, "expires_after.seconds"),
    ({"anchor": "created_at", "seconds": "soon"}, "expires_after.seconds"),
    ({"anchor": "created_at"}, "expires_after.seconds"),
    ({"seconds": 3600}, "expires_after.anchor"),
]


def test_bad_expires_after_is_refused(local_server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(1))
    client = sdk(local_server)
    for expires_after, param in BAD_EXPIRES_AFTER:
        with open(path, "rb") as f, pytest.raises(openai.BadRequestError) as err:
            client.files.create(file=f, purpose="batch", expires_after=expires_after)  # type: ignore[arg-type]
        assert (err.value.param, err.value.type) == (param, "invalid_request_error"), expires_after
    assert list((local_server.data_dir / "files").iterdir()) == []  # nothing of the refused uploads is kept


def test_expires_after_sets_expires_at_and_batch_files_default_to_30_days(local_server, tmp_path):
    client = sdk(local_server)
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(2))
    with open(path, "rb") as f:
        hour = client.files.create(file=f, purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600})
    assert hour.expires_at == hour.created_at + 3600
    with open(path, "rb") as f:
        default = client.files.create(file=f, purpose="batch")
    assert default.expires_at == default.created_at + 30 * 86400
    assert client.files.retrieve(default.id).expires_at == default.expires_at

    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=default.id, endpoint="/v1/chat/completions", completion_window="24h",
                              output_expires_after={"anchor": "created_at", "seconds": 60})  # fmt: skip
    assert err.value.param == "output_expires_after.seconds"
    batch = client.batches.create(
        input_file_id=default.id, endpoint="/v1/chat/completions", completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )  # fmt: skip
    with httpx.Client(base_url=local_server.base_url) as http:
        done = wait_batch(http, batch.id, ("completed",))
    output = client.files.retrieve(done["output_file_id"])
    assert output.purpose == "batch_output" and output.expires_at == output.created_at + 7200
    # Without output_expires_after, output files keep until deleted.
    plain = client.batches.create(input_file_id=default.id, endpoint="/v1/chat/completions", completion_window="24h")
    with httpx.Client(base_url=local_server.base_url) as http:
        done = wait_batch(http, plain.id, ("completed",))
    assert client.files.retrieve(done["output_file_id"]).expires_at is None


# -- lists: a stale cursor -----------------------------------------------------------------------


def test_stale_after_cursor_is_refused_but_deleted_files_keep_their_place(local_server, http, tmp_path):
    stale = http.get("/batches", params={"after": "batch_nope"})
    assert stale.status_code == 400 and stale.headers["x-should-retry"] == "false"
    assert stale.json()["error"]["code"] == "invalid_cursor" and stale.json()["error"]["param"] == "after"
    assert http.get("/files", params={"after": "file-nope"}).json()["error"]["code"] == "invalid_cursor"

    client = sdk(local_server)
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(1))
    ids = []
    for _ in range(5):
        with open(path, "rb") as f:
            ids.append(client.files.create(file=f, purpose="user_data").id)
    # The SDK's auto-pagination asks for the page after the last file of the previous page, which this
    # loop has deleted by then: the deleted id still marks its place.
    deleted = []
    for file in client.files.list(limit=2, purpose="user_data"):
        client.files.delete(file.id)
        deleted.append(file.id)
    assert deleted == ids[::-1]
    assert http.get("/files", params={"purpose": "user_data"}).json()["data"] == []
    assert http.get("/files", params={"after": ids[0]}).status_code == 200


# -- x-should-retry ------------------------------------------------------------------------------


def test_cancelling_a_finished_batch_fails_fast_without_retries(local_server, http, tmp_path):
    file = upload(http, write_jsonl(tmp_path / "in.jsonl", chat_lines(2)))
    done = wait_batch(http, create_batch(http, file["id"])["id"], ("completed",))
    raw = http.post(f"/batches/{done['id']}/cancel")
    assert raw.status_code == 409 and raw.headers["x-should-retry"] == "false"
    calls = []
    client = openai.OpenAI(  # the SDK's default: 2 retries, ~1.3 s of backoff without the header
        base_url=local_server.base_url, api_key="x",
        http_client=httpx.Client(event_hooks={"request": [calls.append]}),
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(done["id"])
    assert time.monotonic() - started < 0.5 and len(calls) == 1
    for response in (http.get("/batches/batch_nope"), http.get("/files/file-nope"), http.post("/batches", json={})):
        assert response.headers["x-should-retry"] == "false", response
    assert "x-should-retry" not in http.get("/batches").headers  # successes carry no such header


@pytest.fixture
def http(local_server):
    with httpx.Client(base_url=local_server.base_url, timeout=10) as client:
        yield client

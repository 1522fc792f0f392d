"""The local Batch server over HTTP: the openai SDK's whole cycle, wire shapes, spec conformance, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import openai
import pytest

from batchctl.server.echo import echo_should_fail

pytestmark = pytest.mark.e2e

CHAT = "/v1/chat/completions"


def chat_lines(n: int, *, model: str = "gpt-4o-mini", prefix: str = "req") -> list[dict]:
    return [
        {
            "custom_id": f"{prefix}-{i}",
            "method": "POST",
            "url": CHAT,
            "body": {"model": model, "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 50},
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def wait_batch(http: httpx.Client, batch_id: str, statuses: tuple[str, ...], timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        batch = http.get(f"/batches/{batch_id}").json()
        if batch["status"] in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch stuck in {batch['status']}: {batch}")
        time.sleep(0.05)


def upload(http: httpx.Client, path: Path) -> dict:
    with open(path, "rb") as f:
        response = http.post("/files", files={"file": (path.name, f, "application/jsonl")}, data={"purpose": "batch"})
    assert response.status_code == 200, response.text
    return response.json()


def create_batch(http: httpx.Client, file_id: str, **extra) -> dict:
    body = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h", **extra}
    response = http.post("/batches", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def http(local_server):
    with httpx.Client(base_url=local_server.base_url, timeout=10) as client:
        yield client


def test_openai_sdk_full_cycle(start_server, tmp_path, openapi_validate):
    server = start_server(failure_rate=0.2)
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
    rows = chat_lines(30)
    path = write_jsonl(tmp_path / "input.jsonl", rows)

    with open(path, "rb") as f:
        file = client.files.create(file=f, purpose="batch")
    assert file.purpose == "batch" and file.bytes == path.stat().st_size and file.filename == "input.jsonl"
    assert client.files.retrieve(file.id).id == file.id

    batch = client.batches.create(
        input_file_id=file.id, endpoint=CHAT, completion_window="24h", metadata={"job": "sdk-test"}
    )
    assert batch.status == "validating" and batch.metadata == {"job": "sdk-test"}
    deadline = time.monotonic() + 15
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    expected_failures = {r["custom_id"] for r in rows if echo_should_fail(r["custom_id"], 0.2)}
    assert 0 < len(expected_failures) < 30
    assert batch.request_counts.total == 30
    assert batch.request_counts.failed == len(expected_failures)
    assert batch.request_counts.completed == 30 - len(expected_failures)
    for stamp in ("created_at", "in_progress_at", "finalizing_at", "completed_at", "expires_at"):
        assert getattr(batch, stamp), stamp
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.expires_at == batch.created_at + 24 * 3600
    assert batch.failed_at is None and batch.cancelled_at is None

    output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert {o["custom_id"] for o in output} == {r["custom_id"] for r in rows} - expected_failures
    assert {e["custom_id"] for e in errors} == expected_failures
    for line in output:
        openapi_validate("BatchRequestOutput", line)
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
        body = line["response"]["body"]
        question = line["custom_id"].replace("req-", "question ")
        assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": f"echo: {question}", "refusal": None}
        assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    for line in errors:
        openapi_validate("BatchRequestOutput", line)
        assert line["response"]["status_code"] == 500
        assert line["response"]["body"]["error"]["code"] == "injected_failure"

    out_file = client.files.retrieve(batch.output_file_id)
    assert out_file.purpose == "batch_output"

    # More batches, then list them with auto-pagination over several pages: newest first.
    ids = [batch.id]
    for _ in range(4):
        ids.append(client.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h").id)
    first_page = client.batches.list(limit=2)
    assert [b.id for b in first_page.data] == ids[::-1][:2] and first_page.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]

    # Cancel: the last one may already be done (409) -- use a slow server for a deterministic cancel.
    slow = start_server(latency=0.5)
    slow_client = openai.OpenAI(base_url=slow.base_url, api_key="unused", max_retries=0)
    with open(path, "rb") as f:
        slow_file = slow_client.files.create(file=f, purpose="batch")
    slow_batch = slow_client.batches.create(input_file_id=slow_file.id, endpoint=CHAT, completion_window="24h")
    cancelled = slow_client.batches.cancel(slow_batch.id)
    assert cancelled.status in ("cancelling", "cancelled") and cancelled.cancelling_at
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)  # completed

    deleted = client.files.delete(file.id)
    assert deleted.deleted and deleted.id == file.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file.id)


def test_responses_conform_to_openai_spec(http, tmp_path, openapi_validate):
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(3))
    file = upload(http, path)
    openapi_validate("OpenAIFile", file)
    batch = create_batch(http, file["id"], metadata={"a": "b"})
    openapi_validate("Batch", batch)
    done = wait_batch(http, batch["id"], ("completed",))
    openapi_validate("Batch", done)
    openapi_validate("ListBatchesResponse", http.get("/batches", params={"limit": 1}).json())
    openapi_validate("ListFilesResponse", http.get("/files").json())
    openapi_validate("OpenAIFile", http.get(f"/files/{done['output_file_id']}").json())
    for line in http.get(f"/files/{done['output_file_id']}/content").text.splitlines():
        openapi_validate("BatchRequestOutput", json.loads(line))

    bad = upload(http, write_jsonl(tmp_path / "bad.jsonl", ["{not json"]))
    failed = wait_batch(http, create_batch(http, bad["id"])["id"], ("failed",))
    openapi_validate("Batch", failed)
    openapi_validate("DeleteFileResponse", http.delete(f"/files/{bad['id']}").json())


def test_validation_failure_names_lines(http, tmp_path):
    rows = chat_lines(3)
    rows[1] = "{this is not json"
    rows.append({**chat_lines(1)[0]})  # duplicate custom_id req-0
    rows.append({"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "a"}})
    rows.append({"custom_id": "y", "method": "POST", "url": CHAT})  # no body
    file = upload(http, write_jsonl(tmp_path / "bad.jsonl", rows))
    batch = wait_batch(http, create_batch(http, file["id"])["id"], ("failed",))
    assert batch["failed_at"] and batch["in_progress_at"] is None
    assert batch["output_file_id"] is None and batch["error_file_id"] is None
    assert batch["errors"]["object"] == "list"
    by_line = {e["line"]: e for e in batch["errors"]["data"]}
    assert set(by_line) >= {2, 4, 5, 6}, batch["errors"]
    assert by_line[2]["code"] == "invalid_json_line"
    assert by_line[4]["code"] == "duplicate_custom_id"
    assert by_line[6]["code"] == "missing_required_parameter"
    for error in batch["errors"]["data"]:
        assert set(error) == {"code", "message", "param", "line"}


def test_embeddings_and_completions_endpoints(http, tmp_path):
    rows = [
        {"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
         "body": {"model": "text-embedding-3-small", "input": ["alpha", f"beta {i}"]}}
        for i in range(3)
    ]  # fmt: skip
    file = upload(http, write_jsonl(tmp_path / "emb.jsonl", rows))
    batch = create_batch(http, file["id"], endpoint="/v1/embeddings")
    done = wait_batch(http, batch["id"], ("completed",))
    lines = [json.loads(x) for x in http.get(f"/files/{done['output_file_id']}/content").text.splitlines()]
    assert len(lines) == 3
    first = {line["custom_id"]: line["response"]["body"] for line in lines}
    assert first["e0"]["data"][0]["embedding"] == first["e1"]["data"][0]["embedding"]  # same text, same vector
    assert first["e0"]["data"][1]["embedding"] != first["e1"]["data"][1]["embedding"]
    assert len(first["e0"]["data"][0]["embedding"]) == 16 and first["e0"]["object"] == "list"

    rows = [{"custom_id": "c0", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "hi"}}]
    file = upload(http, write_jsonl(tmp_path / "cmp.jsonl", rows))
    done = wait_batch(http, create_batch(http, file["id"], endpoint="/v1/completions")["id"], ("completed",))
    line = json.loads(http.get(f"/files/{done['output_file_id']}/content").text)
    assert line["response"]["body"]["choices"][0]["text"] == "echo: hi"


def test_http_errors_and_shapes(http, tmp_path):
    def error_of(response: httpx.Response, status: int) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["x-request-id"].startswith("req_")
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        return error

    assert error_of(http.get("/batches/batch_nope"), 404)["param"] == "batch_id"
    error_of(http.post("/batches/batch_nope/cancel"), 404)
    error_of(http.get("/files/file-nope"), 404)
    error_of(http.get("/files/file-nope/content"), 404)
    error_of(http.delete("/files/file-nope"), 404)
    error_of(http.get("/no/such/route"), 404)
    error_of(http.put("/batches"), 405)

    file = upload(http, write_jsonl(tmp_path / "in.jsonl", chat_lines(2)))
    assert error_of(http.post("/batches", json={"endpoint": CHAT, "completion_window": "24h"}), 400)["param"] == (
        "input_file_id"
    )
    assert error_of(http.post("/batches", content=b"{nope", headers={"content-type": "application/json"}), 400)
    bad_endpoint = {"input_file_id": file["id"], "endpoint": "/v1/images", "completion_window": "24h"}
    assert error_of(http.post("/batches", json=bad_endpoint), 400)["param"] == "endpoint"
    bad_window = {"input_file_id": file["id"], "endpoint": CHAT, "completion_window": "tomorrow"}
    assert error_of(http.post("/batches", json=bad_window), 400)["param"] == "completion_window"
    unknown_file = {"input_file_id": "file-nope", "endpoint": CHAT, "completion_window": "24h"}
    assert error_of(http.post("/batches", json=unknown_file), 404)["param"] == "input_file_id"
    assert error_of(http.get("/batches", params={"limit": 0}), 400)["param"] == "limit"
    assert error_of(http.get("/batches", params={"limit": 101}), 400)["param"] == "limit"
    assert error_of(http.get("/batches", params={"limit": "x"}), 400)["param"] == "limit"
    assert error_of(http.post("/files", data={"purpose": "batch"}, files={"x": ("", b"")}), 400)
    no_purpose = http.post("/files", files={"file": ("a.jsonl", b"{}\n")})
    assert error_of(no_purpose, 400)["param"] == "purpose"
    wrong_purpose = http.post("/files", files={"file": ("a.jsonl", b"{}\n")}, data={"purpose": "nonsense"})
    assert error_of(wrong_purpose, 400)["param"] == "purpose"
    assert error_of(http.post("/files", json={"purpose": "batch"}), 400)

    health = http.get("/health")
    assert health.json()["status"] == "ok" and health.json()["pid"] > 0 and "x-request-id" in health.headers
    assert http.get(str(http.base_url).rstrip("/").removesuffix("/v1") + "/health").status_code == 200
    models = http.get("/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["echo"]

    # Listing: empty pages, purpose filter, order, after.
    second = upload(http, write_jsonl(tmp_path / "in2.jsonl", chat_lines(1)))
    files = http.get("/files").json()
    assert [f["id"] for f in files["data"]] == [second["id"], file["id"]]
    assert files["first_id"] == second["id"] and files["last_id"] == file["id"] and not files["has_more"]
    asc = http.get("/files", params={"order": "asc", "limit": 1}).json()
    assert [f["id"] for f in asc["data"]] == [file["id"]] and asc["has_more"]
    assert http.get("/files", params={"order": "asc", "after": file["id"]}).json()["data"][0]["id"] == second["id"]
    assert http.get("/files", params={"purpose": "batch_output"}).json()["data"] == []
    assert http.get("/batches").json() == {
        "object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False,
    }  # fmt: skip


def test_api_key_required(start_server, tmp_path):
    server = start_server(api_key="sekrit")
    with httpx.Client(base_url=server.base_url) as http:
        for response in (
            http.get("/batches"),
            http.get("/files", headers={"Authorization": "Bearer wrong"}),
            http.post("/files", headers={"Authorization": "Basic sekrit"}),
        ):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert response.headers["x-request-id"]
        assert http.get("/health").status_code == 200  # health stays open
        assert http.get("/batches", headers={"Authorization": "Bearer sekrit"}).status_code == 200
    client = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.batches.list()
    assert openai.OpenAI(base_url=server.base_url, api_key="sekrit").models.list().data[0].id == "echo"


def peak_rss_kb(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def test_large_upload_streams_to_disk(http, local_server, tmp_path):
    # ~60 MB: the server's peak memory must not grow with the upload (it streams to disk).
    line = json.dumps(chat_lines(1)[0]) + "\n"
    path = tmp_path / "big.jsonl"
    with open(path, "w") as f:
        for i in range(300_000):
            f.write(line.replace("req-0", f"r{i}"))
    before = peak_rss_kb(local_server.proc.pid)
    file = upload(http, path)
    after = peak_rss_kb(local_server.proc.pid)
    if before is not None:
        assert after - before < 20_000, f"peak RSS grew by {after - before} kB for a {file['bytes']} byte upload"
    assert file["bytes"] == path.stat().st_size
    stored = local_server.data_dir / "files" / file["id"]
    assert stored.stat().st_size == path.stat().st_size
    assert not list((local_server.data_dir / "files").glob("*.upload"))
    with http.stream("GET", f"/files/{file['id']}/content") as response:
        assert sum(len(c) for c in response.iter_bytes()) == path.stat().st_size


def test_shipped_examples_run_on_the_local_server(http):
    examples = Path(__file__).resolve().parents[1] / "examples"
    for name, endpoint in (("chat.jsonl", CHAT), ("embeddings.jsonl", "/v1/embeddings")):
        file = upload(http, examples / name)
        done = wait_batch(http, create_batch(http, file["id"], endpoint=endpoint)["id"], ("completed", "failed"))
        lines = (examples / name).read_text().splitlines()
        assert done["status"] == "completed", done["errors"]
        assert done["request_counts"] == {"total": len(lines), "completed": len(lines), "failed": 0}

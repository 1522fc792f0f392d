"""A New-API gateway stand-in for tests: Starlette + uvicorn on 127.0.0.1, in a background thread.

It behaves like a New-API gateway relaying batches to a DashScope channel, as far as batchctl can see:

- `Authorization: Bearer sk-<key>[-<channel>]`. Unknown key: 401. A pin from a non-admin key: 403; a
  non-numeric channel id: 400; a disabled channel: 403; an unknown channel: 400. `/v1/files` and
  `/v1/batches` calls carry no model, so without a pin they cannot be routed: 400.
- `/v1/files` and `/v1/batches` are implemented in memory (ids `file-batch-…`, `file-batch_output-…`,
  `batch_…`); a batch moves validating -> in_progress -> completed on successive retrieves (or at once with
  `instant=True`), echoing each request's messages; a request whose body has `"fail": true` lands in the
  error file.
- `GET /api/channel/{id}` with `Authorization: <access token>` and `New-Api-User: <user id>`, answering like
  New-API: 401 for a bad token or user id, HTTP 200 `{"success": false}` for a non-admin user or an unknown
  channel (or 403 when `admin_api_forbidden_status=403`).
- Switches: `files_not_implemented` (501 `api_not_implemented` on /v1/files, as stock New-API), and
  `batch_list_missing` (404 on `GET /v1/batches`, as gateways without a list route).

Every request is recorded (method, path, raw path, query, Authorization, api-key) in `.requests`.

`dialect=` makes it another provider's stand-in (`stub_dialects.py`: together, zhipu, gemini, azure,
litellm, groq, moonshot); the fixture `provider_stub` takes the dialect's name by indirect parametrizing.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

import pytest
from stub_dialects import DIALECTS, NEWAPI, Dialect

ADMIN_KEY = "sk-admin0key"
USER_KEY = "sk-user0key"
ADMIN_TOKEN = "admin-access-token"
USER_TOKEN = "user-access-token"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    raw_path: str = ""  # as sent, percent-encoding included
    api_key_header: str | None = None


def default_channels() -> dict[int, dict[str, Any]]:
    return {
        7: {
            "id": 7,
            "name": "bailian-main",
            "type": 17,
            "status": 1,
            "base_url": "https://dashscope.aliyuncs.com",
            "models": "qwen-plus,qwen-turbo,batch-test-model",
            "model_mapping": json.dumps({"qwen-latest": "qwen-plus"}),
        },
        9: {
            "id": 9,
            "name": "bailian-backup",
            "type": 17,
            "status": 1,
            "base_url": "",
            "models": "qwen-max",
            "model_mapping": "",
        },
        5: {
            "id": 5,
            "name": "bailian-old",
            "type": 17,
            "status": 2,
            "base_url": "https://dashscope.aliyuncs.com",
            "models": "qwen-plus",
            "model_mapping": "",
        },
    }


@dataclass
class GatewayStub:
    keys: dict[str, bool] = field(default_factory=lambda: {ADMIN_KEY: True, USER_KEY: False})  # key -> admin
    tokens: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {ADMIN_TOKEN: ("1", True), USER_TOKEN: ("2", False)}
    )  # access token -> (user id, admin)
    channels: dict[int, dict[str, Any]] = field(default_factory=default_channels)
    files_not_implemented: bool = False
    batch_list_missing: bool = False
    max_page_size: int | None = None  # answer shorter pages than asked, as some providers do
    admin_api_forbidden_status: int = 200  # New-API says "insufficient permission" with HTTP 200
    instant: bool = False
    dialect: Dialect = NEWAPI
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def root(self) -> str:
        return self.base_url[: -len(self.dialect.prefix)]

    def batch_calls(self) -> list[Recorded]:
        """The recorded /files and /batches calls."""
        prefix = self.dialect.prefix
        return [r for r in self.requests if r.path.startswith((f"{prefix}/files", f"{prefix}/batches"))]

    # -- the app ---------------------------------------------------------------------------------

    def app(self):
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        def error(status: int, message: str, code: str | None = None, type_: str = "new_api_error") -> Response:
            return JSONResponse({"error": {"message": message, "type": type_, "code": code}}, status_code=status)

        def authorize(request) -> tuple[Response | None, int | None]:
            if self.dialect.auth == "api-key":  # Azure: the key alone in `api-key`; a Bearer header is a mistake
                if "authorization" in request.headers or request.headers.get("api-key") not in self.keys:
                    return error(401, "Access denied due to invalid subscription key.", "401"), None
                return None, None
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip()
            key, _, channel = token.removeprefix("sk-").partition("-")
            key = f"sk-{key}"
            if key not in self.keys:
                return error(401, "无效的令牌 (invalid token)", "invalid_api_key"), None
            if not channel:
                return None, None
            if not self.keys[key]:
                return error(403, "普通用户不支持指定渠道 (only admins may pin a channel)", "forbidden"), None
            if not channel.isdigit():
                return error(400, f"无效的渠道 Id: {channel}", "invalid_channel_id"), None
            record = self.channels.get(int(channel))
            if record is None:
                return error(400, f"无效的渠道 Id: {channel}", "invalid_channel_id"), None
            if record["status"] != 1:
                return error(403, "该渠道已被禁用 (channel disabled)", "channel_disabled"), None
            return None, int(channel)

        def relay_guard(request) -> Response | None:
            problem, channel = authorize(request)
            if problem is not None:
                return problem
            if channel is None and self.dialect.require_pin:
                return error(
                    400,
                    "no model in the request and no channel pinned: cannot route (append -<channel id> to the key)",
                    "model_not_found",
                )
            return None

        def not_implemented() -> Response:
            return error(501, "API not implemented", "api_not_implemented")

        # -- files ---------------------------------------------------------------------------
        async def files_root(request):
            if self.files_not_implemented:
                return not_implemented()
            if (problem := relay_guard(request)) is not None:
                return problem
            if request.method == "GET":
                purpose = request.query_params.get("purpose")
                data = [f for f in self.files.values() if purpose is None or f["purpose"] == purpose]
                return JSONResponse({"object": "list", "data": data, "has_more": False})
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                return error(400, "'file' is a required property", "invalid_request", "invalid_request_error")
            content = await upload.read()
            if (problem := self.dialect.refuse_upload(form, content)) is not None:
                return error(400, problem, "invalid_request", "invalid_request_error")
            file_id = self.dialect.new_id("file-batch", next(self._ids))
            record = self._file_record(file_id, upload.filename or "input.jsonl", len(content), form.get("purpose", "batch"))
            self.contents[file_id] = content
            return JSONResponse(record)

        async def file_item(request):
            if self.files_not_implemented:
                return not_implemented()
            if (problem := relay_guard(request)) is not None:
                return problem
            file_id = request.path_params["file_id"]
            if file_id not in self.files:  # path params arrive decoded: a `%2F` in an id is a `/` here
                return error(404, f"file {file_id} not found", "not_found", "invalid_request_error")
            if request.method == "DELETE":
                del self.files[file_id]
                self.contents.pop(file_id, None)
                return JSONResponse({"id": file_id, "object": "file", "deleted": True})
            return JSONResponse(self.files[file_id])

        async def file_content(request):
            if self.files_not_implemented:
                return not_implemented()
            if (problem := relay_guard(request)) is not None:
                return problem
            file_id = request.path_params["file_id"]
            if file_id not in self.contents:
                return error(404, f"file {file_id} not found", "not_found", "invalid_request_error")
            return Response(self.contents[file_id], media_type="application/octet-stream")

        # -- batches -------------------------------------------------------------------------
        async def batches_root(request):
            if request.method == "GET" and self.batch_list_missing:
                return JSONResponse({"error": {"message": "Invalid URL (GET /v1/batches)", "type": "invalid_request_error"}}, status_code=404)
            if (problem := relay_guard(request)) is not None:
                return problem
            if request.method == "GET":
                data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
                status = request.query_params.get("status")
                if status:
                    data = [b for b in data if b["status"] in status.split(",")]
                ds_name = request.query_params.get("ds_name")
                if ds_name:
                    data = [b for b in data if (b.get("metadata") or {}).get("ds_name") == ds_name]
                after = request.query_params.get("after")
                if after:
                    ids = [b["id"] for b in data]
                    data = data[ids.index(after) + 1 :] if after in ids else []
                limit = int(request.query_params.get("limit") or len(data) or 1)
                if self.max_page_size:
                    limit = min(limit, self.max_page_size)
                page, more = [self._public(b["id"]) for b in data[:limit]], len(data) > limit
                return JSONResponse(
                    {
                        "object": "list",
                        "data": page,
                        "first_id": page[0]["id"] if page else None,
                        "last_id": page[-1]["id"] if page else None,
                        "has_more": more,
                    }
                )
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not body.get("input_file_id") or not body.get("endpoint"):
                return error(400, "input_file_id and endpoint are required", "invalid_request", "invalid_request_error")
            if body["input_file_id"] not in self.contents:
                return error(400, f"file {body['input_file_id']} not found", "invalid_request", "invalid_request_error")
            lines = [line for line in self.contents[body["input_file_id"]].splitlines() if line.strip()]
            if (problem := self.dialect.refuse_create(body, lines)) is not None:
                return error(400, problem, "invalid_request", "invalid_request_error")
            batch_id = self.dialect.new_id("batch", next(self._ids))
            now = int(time.time())
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "errors": None,
                "input_file_id": body["input_file_id"],
                "completion_window": body.get("completion_window", "24h"),
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": None,
                "completed_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": body.get("metadata") or {},
                "_lines": len(lines),
            }
            if self.instant:
                self._advance(batch_id, to_end=True)
            return JSONResponse(self.dialect.created(self._public(batch_id)))

        async def batch_item(request):
            if (problem := relay_guard(request)) is not None:
                return problem
            batch_id = request.path_params["batch_id"]
            if batch_id not in self.batches:
                return error(404, f"batch {batch_id} not found", "not_found", "invalid_request_error")
            self._advance(batch_id)
            return JSONResponse(self._public(batch_id))

        async def batch_cancel(request):
            if (problem := relay_guard(request)) is not None:
                return problem
            batch_id = request.path_params["batch_id"]
            batch = self.batches.get(batch_id)
            if batch is None:
                return error(404, f"batch {batch_id} not found", "not_found", "invalid_request_error")
            if batch["status"] in ("validating", "in_progress"):
                batch["status"] = "cancelled"
                batch["cancelled_at"] = int(time.time())
            return JSONResponse(self._public(batch_id))

        # -- admin API -----------------------------------------------------------------------
        async def admin_channel(request):
            token = request.headers.get("authorization", "")
            user = request.headers.get("new-api-user")
            if not token:
                return JSONResponse({"success": False, "message": "无权进行此操作，未登录且未提供 access token"}, status_code=401)
            known = self.tokens.get(token)
            if known is None:
                return JSONResponse({"success": False, "message": "无权进行此操作，access token 无效"}, status_code=401)
            if user != known[0]:
                return JSONResponse({"success": False, "message": "无权进行此操作，New-Api-User 与登录用户不匹配"}, status_code=401)
            if not known[1]:
                return JSONResponse(
                    {"success": False, "message": "无权进行此操作，权限不足"}, status_code=self.admin_api_forbidden_status
                )
            raw = request.path_params["channel_id"]
            record = self.channels.get(int(raw)) if raw.isdigit() else None
            if record is None:
                return JSONResponse({"success": False, "message": "record not found"})
            return JSONResponse({"success": True, "message": "", "data": dict(record, key="")})

        async def models(request):
            problem, _ = authorize(request)
            if problem is not None:
                return problem
            return JSONResponse({"object": "list", "data": [{"id": "qwen-plus", "object": "model"}]})

        v = self.dialect.prefix
        # `:path` so an id holding a `/` (gemini's `batches/…`) is one parameter; the longer routes first.
        files = [
            Route(f"{v}/files", files_root, methods=["GET", "POST"]),
            Route(f"{v}/files/{{file_id:path}}/content", file_content, methods=["GET"]),
            Route(f"{v}/files/{{file_id:path}}", file_item, methods=["GET", "DELETE"]),
        ]
        routes = [
            *(files if self.dialect.files else []),
            Route(f"{v}/batches", batches_root, methods=["GET", "POST"]),
            Route(f"{v}/batches/{{batch_id:path}}/cancel", batch_cancel, methods=["POST"]),
            Route(f"{v}/batches/{{batch_id:path}}", batch_item, methods=["GET"]),
            Route(f"{v}/models", models, methods=["GET"]),
            Route("/api/channel/{channel_id}", admin_channel, methods=["GET"]),
        ]
        inner = Starlette(routes=routes)
        stub = self

        async def recording_app(scope, receive, send):
            if scope["type"] == "http":
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                query = dict(
                    pair.split("=", 1) if "=" in pair else (pair, "")
                    for pair in scope.get("query_string", b"").decode().split("&")
                    if pair
                )
                raw = scope.get("raw_path", b"").decode("latin-1").partition("?")[0]
                stub.requests.append(
                    Recorded(scope["method"], scope["path"], query, headers.get("authorization"), raw, headers.get("api-key"))
                )
            await inner(scope, receive, send)

        return recording_app

    # -- state helpers ---------------------------------------------------------------------------

    def _file_record(self, file_id: str, filename: str, size: int, purpose: str) -> dict[str, Any]:
        record = {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.files[file_id] = record
        return record

    def seed_batch(self, lines: list[dict[str, Any]], *, status: str = "in_progress") -> str:
        """A batch that exists already (made with the provider's own tools): its input stored, its id returned."""
        file_id = self.dialect.new_id("file-batch", next(self._ids))
        self.contents[file_id] = "".join(json.dumps(line) + "\n" for line in lines).encode()
        self._file_record(file_id, "seeded.jsonl", len(self.contents[file_id]), "batch")
        batch_id = self.dialect.new_id("batch", next(self._ids))
        now = int(time.time())
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": lines[0]["url"], "errors": None, "input_file_id": file_id,
            "completion_window": "24h", "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": now, "in_progress_at": None, "completed_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": {}, "_lines": len(lines),
        }  # fmt: skip
        if status != "validating":
            self._advance(batch_id, to_end=status == "completed")
        return batch_id

    def _public(self, batch_id: str) -> dict[str, Any]:
        return self.dialect.present(self.batches[batch_id])

    def _advance(self, batch_id: str, *, to_end: bool = False) -> None:
        batch = self.batches[batch_id]
        if batch.get("_hold"):  # a test keeps it where it is (to cancel it while it runs)
            return
        while True:
            if batch["status"] == "validating":
                batch["status"] = "in_progress"
                batch["in_progress_at"] = int(time.time())
                batch["request_counts"] = {"total": batch["_lines"], "completed": 0, "failed": 0}  # frozen, as DashScope
            elif batch["status"] == "in_progress":
                self._complete(batch)
            if not to_end or batch["status"] not in ("validating", "in_progress"):
                return

    def _complete(self, batch: dict[str, Any]) -> None:
        ok_lines, error_lines = [], []
        for n, raw in enumerate(self.contents.get(batch["input_file_id"], b"").splitlines()):
            if not raw.strip():
                continue
            request = json.loads(raw)
            body = request.get("body") or {}
            if body.get("fail"):
                error_lines.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": request.get("custom_id"),
                        "response": None,
                        "error": {"code": "InvalidParameter", "message": "asked to fail"},
                    }
                )
                continue
            text = " ".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))
            ok_lines.append(
                {
                    "id": f"batch_req_{n}",
                    "custom_id": request.get("custom_id"),
                    "response": {
                        "status_code": 200,
                        "request_id": f"req_{n}",
                        "body": {
                            "id": f"chatcmpl-{n}",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        },
                    },
                    "error": None,
                }
            )
        for lines, key, prefix in ((ok_lines, "output_file_id", "file-batch_output"), (error_lines, "error_file_id", "file-batch_error")):
            if not lines:
                continue
            file_id = self.dialect.new_id(prefix, next(self._ids))
            data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
            self._file_record(file_id, f"{file_id}.jsonl", len(data), "batch_output")
            self.contents[file_id] = data
            batch[key] = file_id
        now = int(time.time())
        batch.update(
            status="completed",
            finalizing_at=now,
            completed_at=now,
            request_counts={"total": batch["_lines"], "completed": len(ok_lines), "failed": len(error_lines)},
        )


class _Running:
    def __init__(self, stub: GatewayStub) -> None:
        import uvicorn

        self.stub = stub
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        # Any object with `app()` and `base_url` runs here (other tests' stand-ins have no dialect).
        stub.base_url = f"http://127.0.0.1:{port}{getattr(stub, 'dialect', NEWAPI).prefix}"
        config = uvicorn.Config(stub.app(), log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway stub did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()


def _run(stub: GatewayStub) -> Iterator[GatewayStub]:
    running = _Running(stub)
    running.start()
    try:
        yield stub
    finally:
        running.stop()


@pytest.fixture
def gateway():
    """A running GatewayStub; `gateway.base_url` is its `/v1` root."""
    yield from _run(GatewayStub())


@pytest.fixture
def provider_stub(request):
    """A running GatewayStub speaking the dialect named by indirect parametrizing (`stub_dialects.DIALECTS`)."""
    yield from _run(GatewayStub(dialect=DIALECTS[request.param]))

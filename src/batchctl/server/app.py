"""The HTTP surface of the local Batch server: OpenAI's /v1/files, /v1/batches and /v1/models shapes.

Errors answer `{"error": {"message", "type", "param", "code"}}` like OpenAI: 400 for an invalid
request, 401 without the right key (when one is required), 404 for an unknown id or route, and 409
for cancelling a batch that has already finished (OpenAI's answer too). Every response carries an
`x-request-id` header.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchctl import __version__
from batchctl.server.executors import ExecutorConfig, make_executor
from batchctl.server.runner import BatchRunner
from batchctl.server.store import Store, new_id
from batchctl.server.uploads import UploadError, receive_upload

log = logging.getLogger("batchctl.server")

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions")
FILE_PURPOSES = ("batch",)
CANCELLABLE = ("validating", "in_progress")
ALREADY_CANCELLING = ("cancelling", "cancelled")
OPEN_PATHS = ("/health", "/v1/health")


class APIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


def not_found(kind: str, object_id: str, param: str) -> APIError:
    return APIError(404, f"No {kind} found with id '{object_id}'.", code="not_found", param=param)


# -- wire shapes -------------------------------------------------------------------------------


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": row["created_at"],
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def batch_object(row: dict[str, Any]) -> dict[str, Any]:
    import json

    body: dict[str, Any] = {
        "id": row["id"],
        "object": "batch",
        "endpoint": row["endpoint"],
        "model": row["model"],
        "errors": json.loads(row["errors"]) if row["errors"] else None,
        "input_file_id": row["input_file_id"],
        "completion_window": row["completion_window"],
        "status": row["status"],
        "output_file_id": row["output_file_id"],
        "error_file_id": row["error_file_id"],
        "created_at": row["created_at"],
        "in_progress_at": row["in_progress_at"],
        "expires_at": row["expires_at"],
        "finalizing_at": row["finalizing_at"],
        "completed_at": row["completed_at"],
        "failed_at": row["failed_at"],
        "expired_at": row["expired_at"],
        "cancelling_at": row["cancelling_at"],
        "cancelled_at": row["cancelled_at"],
        "request_counts": {"total": row["total"], "completed": row["completed"], "failed": row["failed"]},
        "usage": {
            "input_tokens": row["input_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": row["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": row["input_tokens"] + row["output_tokens"],
        },
        "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
    }
    return body


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


# -- request parsing (pure) --------------------------------------------------------------------


def int_param(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise APIError(400, f"Invalid '{name}': expected an integer, got '{value}'.", param=name) from None
    if not low <= number <= high:
        raise APIError(400, f"Invalid '{name}': must be between {low} and {high}, got {number}.", param=name)
    return number


def check_create_batch(body: Any) -> tuple[str, str, str, float, dict[str, str] | None]:
    """(input_file_id, endpoint, completion_window, window seconds, metadata) of a create-batch body."""
    from batchctl.providers import get_provider, parse_window

    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object.")
    for name in ("input_file_id", "endpoint", "completion_window"):
        if name not in body:
            raise APIError(400, f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name)
        if not isinstance(body[name], str):
            raise APIError(400, f"Invalid type for '{name}': expected a string.", code="invalid_type", param=name)
    endpoint = body["endpoint"]
    if endpoint not in ENDPOINTS:
        raise APIError(
            400,
            f"Invalid value for 'endpoint': '{endpoint}'. Supported endpoints are {', '.join(ENDPOINTS)}.",
            code="invalid_value",
            param="endpoint",
        )
    window = body["completion_window"]
    problem = get_provider("local").check_completion_window(window)
    if problem is not None:
        raise APIError(400, problem[0].upper() + problem[1:] + ".", code="invalid_value", param="completion_window")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
        ):
            raise APIError(
                400,
                "Invalid 'metadata': expected an object of at most 16 string keys (64 chars) and string values"
                " (512 chars).",
                code="invalid_value",
                param="metadata",
            )
        if len(metadata) > 16:
            raise APIError(400, "Invalid 'metadata': at most 16 keys are allowed.", code="invalid_value", param="metadata")
    return body["input_file_id"], endpoint, window, parse_window(window) or 0.0, metadata


# -- middleware --------------------------------------------------------------------------------


class RequestIdAndAuth:
    """Adds `x-request-id` to every response and, with an api key, requires `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req_")
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        if self.api_key and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            error = APIError(
                401,
                "Incorrect or missing API key. This server was started with --api-key: send"
                " 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
            await error.response()(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), self.api_key or "")
        return False


# -- the app -----------------------------------------------------------------------------------


def create_app(
    data_dir: Path,
    *,
    api_key: str | None = None,
    executor_config: ExecutorConfig | None = None,
) -> Starlette:
    """The Starlette app serving the Batch API from `data_dir` (created if missing)."""
    config = executor_config or ExecutorConfig()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    holder: dict[str, Any] = {}

    def store() -> Store:
        return holder["store"]

    def runner() -> BatchRunner:
        return holder["runner"]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        holder["store"] = Store(data_dir)
        holder["executor"] = make_executor(config)
        holder["runner"] = BatchRunner(holder["store"], holder["executor"])
        await holder["runner"].resume_all()
        try:
            yield
        finally:
            await holder["runner"].shutdown()
            await holder["executor"].aclose()
            holder["store"].close()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "pid": os.getpid()})

    async def create_file(request: Request) -> Response:
        file_id = new_id("file-")
        files_dir = store().files_dir
        try:
            upload = await receive_upload(request, files_dir, file_id + ".upload")
        except UploadError as exc:
            raise APIError(400, str(exc)) from None
        try:
            purpose = upload.fields.get("purpose")
            if upload.file_path is None:
                raise APIError(400, "Missing required parameter: 'file'.", code="missing_required_parameter", param="file")
            if not purpose:
                raise APIError(
                    400, "Missing required parameter: 'purpose'.", code="missing_required_parameter", param="purpose"
                )
            if purpose not in FILE_PURPOSES:
                raise APIError(
                    400,
                    f"Invalid value for 'purpose': '{purpose}'. The local server accepts only 'batch'.",
                    code="invalid_value",
                    param="purpose",
                )
            path = files_dir / file_id
            os.replace(upload.file_path, path)
        except APIError:
            if upload.file_path is not None:
                upload.file_path.unlink(missing_ok=True)
            raise
        row = store().add_file(file_id, path=path, filename=upload.filename or "upload.jsonl", purpose=purpose)
        return JSONResponse(file_object(row))

    async def list_files(request: Request) -> Response:
        q = request.query_params
        order = q.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise APIError(400, f"Invalid 'order': '{order}'. Use 'asc' or 'desc'.", param="order")
        limit = int_param(q.get("limit"), "limit", default=10_000, low=1, high=10_000)
        rows, more = store().list_files(
            purpose=q.get("purpose") or None, limit=limit, after=q.get("after") or None, ascending=order == "asc"
        )
        return JSONResponse(page([file_object(r) for r in rows], more))

    def get_file_row(file_id: str) -> dict[str, Any]:
        row = store().get_file(file_id)
        if row is None:
            raise not_found("file", file_id, "file_id")
        return row

    async def retrieve_file(request: Request) -> Response:
        return JSONResponse(file_object(get_file_row(request.path_params["file_id"])))

    async def file_content(request: Request) -> Response:
        row = get_file_row(request.path_params["file_id"])
        if not Path(row["path"]).exists():
            raise APIError(404, f"The content of file '{row['id']}' is missing on disk.", code="not_found")
        return FileResponse(row["path"], media_type="application/octet-stream", filename=row["filename"])

    async def delete_file(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        get_file_row(file_id)
        store().delete_file(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def create_batch(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            raise APIError(400, "The request body is not valid JSON.") from None
        input_file_id, endpoint, window, seconds, metadata = check_create_batch(body)
        file = store().get_file(input_file_id)
        if file is None:
            raise not_found("file", input_file_id, "input_file_id")
        if file["purpose"] != "batch":
            raise APIError(
                400,
                f"File '{input_file_id}' has purpose '{file['purpose']}'; a batch needs a file uploaded with purpose 'batch'.",
                code="invalid_value",
                param="input_file_id",
            )
        row = store().create_batch(
            endpoint=endpoint, input_file_id=input_file_id, completion_window=window, window_seconds=seconds,
            metadata=metadata,
        )
        runner().start(row["id"])
        return JSONResponse(batch_object(row))

    def get_batch_row(batch_id: str) -> dict[str, Any]:
        row = store().get_batch(batch_id)
        if row is None:
            raise not_found("batch", batch_id, "batch_id")
        return row

    async def retrieve_batch(request: Request) -> Response:
        return JSONResponse(batch_object(get_batch_row(request.path_params["batch_id"])))

    async def list_batches(request: Request) -> Response:
        q = request.query_params
        limit = int_param(q.get("limit"), "limit", default=20, low=1, high=100)
        rows, more = store().list_batches(limit=limit, after=q.get("after") or None)
        return JSONResponse(page([batch_object(r) for r in rows], more))

    async def cancel_batch(request: Request) -> Response:
        row = get_batch_row(request.path_params["batch_id"])
        if row["status"] in ALREADY_CANCELLING:
            return JSONResponse(batch_object(row))
        if row["status"] not in CANCELLABLE:
            raise APIError(
                409,
                f"Cannot cancel a batch with status '{row['status']}': only a validating or in_progress batch can be"
                " cancelled.",
                code="batch_not_cancellable",
            )
        return JSONResponse(batch_object(runner().cancel(row["id"])))  # type: ignore[arg-type]

    async def list_models(request: Request) -> Response:
        names = await holder["executor"].models()
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "batchctl"} for n in dict.fromkeys(names)]
        return JSONResponse({"object": "list", "data": data})

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return exc.response()

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"Unknown route: {request.method} {request.url.path}."
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            message = str(exc.detail)
        return APIError(exc.status_code, message, code="not_found" if exc.status_code == 404 else None).response()

    async def on_internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return APIError(500, f"Internal server error: {exc!r}", type_="server_error").response()

    routes = [
        Route("/health", health),
        Route("/v1/health", health),
        Route("/v1/files", create_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
        Route("/v1/batches", create_batch, methods=["POST"]),
        Route("/v1/batches", list_batches, methods=["GET"]),
        Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
        Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={APIError: on_api_error, HTTPException: on_http_error, Exception: on_internal_error},
    )
    app.add_middleware(RequestIdAndAuth, api_key=api_key)
    return app

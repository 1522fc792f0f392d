"""The /v1/batches routes of the local server: create (checking the body like OpenAI), list, retrieve and cancel.

The endpoints a batch may use are the echo model's (`get_provider("local").endpoints`); with `--upstream`,
any `/v1/` endpoint, forwarded as is.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchctl.server.runner import BatchRunner
from batchctl.server.store import CANCELLABLE_STATUSES, CANCELLED_STATUSES, Store, UnknownCursor
from batchctl.server.wire import (
    JSONResponse,
    OpenAIErrorResponse,
    check_expires_after,
    found,
    int_param,
    invalid_cursor,
    json_body,
    not_found,
    page,
    unknown_parameters,
)

# What `--upstream` forwards: /v1/ and path segments of URL-safe characters (no query, no dot segments).
API_PATH = re.compile(r"/v1(/[A-Za-z0-9_\-][A-Za-z0-9_.\-]*)+")
CREATE_PARAMETERS = ("input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after")


def batch_object(row: dict[str, Any], paused_until: float | None = None) -> dict[str, Any]:
    """The batch as OpenAI shows it. `paused_until`: when the upstream's Retry-After pause ends, said in the
    `errors` of a batch in progress (which `batchctl status` shows) while it lasts; never stored."""
    errors = json.loads(row["errors"]) if row["errors"] else None
    if paused_until is not None and row["status"] == "in_progress":
        errors = {"object": "list", "data": [*(errors or {}).get("data", []), pause_notice(paused_until)]}
    return {
        "id": row["id"],
        "object": "batch",
        "endpoint": row["endpoint"],
        "model": row["model"],
        "errors": errors,
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
            "input_tokens_details": {"cached_tokens": row["cached_tokens"]},
            "output_tokens": row["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": row["reasoning_tokens"]},
            "total_tokens": row["input_tokens"] + row["output_tokens"],
        },
        "metadata": json.loads(row["metadata"]) if row["metadata"] else None,
    }


UPSTREAM_PAUSED = "upstream_paused"


def pause_notice(until: float, *, now: float | None = None) -> dict[str, Any]:
    """The `errors` entry of a batch in progress while the upstream's Retry-After pause holds every request."""
    left = max(0, round(until - (time.time() if now is None else now)))
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(until))
    return {
        "code": UPSTREAM_PAUSED,
        "message": f"Paused: the upstream asked to wait (Retry-After); no request of any batch is sent before {when}"
        f" ({left} s from now). The batch goes on then; a cancel ends it at once.",
        "param": None,
        "line": None,
    }


def upstream_paused_until(request: Request) -> float | None:
    """When the upstream's Retry-After pause ends (epoch seconds); None without one (or without an upstream)."""
    paused_until = getattr(request.app.state.executor, "paused_until", None)
    return paused_until() if paused_until is not None else None


def check_endpoint(endpoint: str, *, any_endpoint: bool) -> None:
    """The echo model's endpoints; with an upstream (`any_endpoint`), any `/v1/` path, which it forwards."""
    from batchctl.providers import get_provider

    served = get_provider("local").endpoints
    if endpoint in served:
        return
    if any_endpoint:
        if API_PATH.fullmatch(endpoint):
            return
        message = f"Invalid value for 'endpoint': '{endpoint}'. It must be an API path such as /v1/chat/completions."
    else:
        message = (
            f"Invalid value for 'endpoint': '{endpoint}'. This server's echo model serves {', '.join(served)};"
            " start it with --upstream URL to forward other endpoints (images, videos, ...) to a real server."
        )
    raise OpenAIErrorResponse(400, message, code="invalid_value", param="endpoint")


class CreateBatch(NamedTuple):
    """A checked create-batch body."""

    input_file_id: str
    endpoint: str
    completion_window: str
    window_seconds: float
    metadata: dict[str, str] | None
    output_expires_seconds: int | None  # from `output_expires_after`


def check_create_batch(body: Any, *, any_endpoint: bool = False) -> CreateBatch:
    """A create-batch body, checked as OpenAI checks it (400s with `param`); `any_endpoint` with an upstream."""
    from batchctl.providers import get_provider, parse_window

    spec = get_provider("local")  # the windows this server serves
    if not isinstance(body, dict):
        raise OpenAIErrorResponse(400, "The request body must be a JSON object.")
    unknown_parameters(body, CREATE_PARAMETERS)
    for name in ("input_file_id", "endpoint", "completion_window"):
        if name not in body:
            raise OpenAIErrorResponse(
                400, f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name
            )
        if not isinstance(body[name], str):
            raise OpenAIErrorResponse(
                400, f"Invalid type for '{name}': expected a string.", code="invalid_type", param=name
            )
    endpoint = body["endpoint"]
    check_endpoint(endpoint, any_endpoint=any_endpoint)
    window = body["completion_window"]
    problem = spec.check_completion_window(window)
    if problem is not None:
        raise OpenAIErrorResponse(
            400, problem[0].upper() + problem[1:] + ".", code="invalid_value", param="completion_window"
        )
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
        ):
            raise OpenAIErrorResponse(
                400,
                "Invalid 'metadata': expected an object of at most 16 string keys (64 chars) and string values"
                " (512 chars).",
                code="invalid_value",
                param="metadata",
            )
        if len(metadata) > 16:
            raise OpenAIErrorResponse(
                400, "Invalid 'metadata': at most 16 keys are allowed.", code="invalid_value", param="metadata"
            )
    output_ttl = check_expires_after(body.get("output_expires_after"), "output_expires_after")
    return CreateBatch(body["input_file_id"], endpoint, window, parse_window(window) or 0.0, metadata, output_ttl)


async def create_batch(request: Request) -> Response:
    store: Store = request.app.state.store
    body = await json_body(request)
    checked = check_create_batch(body, any_endpoint=request.app.state.any_endpoint)
    input_file_id = checked.input_file_id
    file = store.get_file(input_file_id)
    if file is None:
        raise not_found("file", input_file_id, "input_file_id")
    if file["purpose"] != "batch":
        raise OpenAIErrorResponse(
            400,
            f"Invalid 'input_file_id': file '{input_file_id}' has purpose '{file['purpose']}'. A batch's input"
            " file must be uploaded with purpose 'batch'.",
            code="invalid_value",
            param="input_file_id",
        )
    row = store.create_batch(**checked._asdict(), executor=request.app.state.runner.identity)
    request.app.state.runner.start(row["id"])
    return JSONResponse(batch_object(row))


async def retrieve_batch(request: Request) -> Response:
    batch_id = request.path_params["batch_id"]
    row = found(request.app.state.store.get_batch(batch_id), "batch", batch_id)
    return JSONResponse(batch_object(row, upstream_paused_until(request)))


async def list_batches(request: Request) -> Response:
    q = request.query_params
    limit = int_param(q.get("limit"), "limit", default=20, low=1, high=100)
    after = q.get("after") or None
    try:
        rows, more = request.app.state.store.list_batches(limit=limit, after=after)
    except UnknownCursor:
        raise invalid_cursor(after or "", "batch") from None
    paused_until = upstream_paused_until(request)
    return JSONResponse(page([batch_object(r, paused_until) for r in rows], more))


async def cancel_batch(request: Request) -> Response:
    runner: BatchRunner = request.app.state.runner
    batch_id = request.path_params["batch_id"]
    row = found(request.app.state.store.get_batch(batch_id), "batch", batch_id)
    if row["status"] in CANCELLED_STATUSES:
        return JSONResponse(batch_object(row))
    if row["status"] not in CANCELLABLE_STATUSES:
        raise OpenAIErrorResponse(
            409,
            f"Cannot cancel a batch with status '{row['status']}': only a validating or in_progress batch can be"
            " cancelled.",
            code="batch_not_cancellable",
        )
    return JSONResponse(batch_object(runner.cancel(row["id"])))  # type: ignore[arg-type]


ROUTES = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches", list_batches, methods=["GET"]),
    Route("/v1/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
]

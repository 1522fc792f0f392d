"""The /v1/files routes of the local server: upload, list, retrieve, download and delete, in OpenAI's shapes.

Files of every purpose OpenAI accepts for upload are stored; only `batch` files can start a batch.
An upload's `expires_after[anchor]`/`expires_after[seconds]` form fields (as the SDKs send them) set
its `expires_at`; a batch file without them expires after 30 days, like OpenAI's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from batchctl.server.store import Store, UnknownCursor, new_id
from batchctl.server.uploads import Upload, UploadError, receive_upload
from batchctl.server.wire import (
    JSONResponse,
    OpenAIErrorResponse,
    check_expires_after,
    found,
    int_param,
    invalid_cursor,
    page,
    unknown_parameters,
)

# What OpenAI's upload accepts (CreateFileRequest.purpose); batch output files are stored as `batch_output`.
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FORM_FIELDS = ("file", "purpose", "expires_after[anchor]", "expires_after[seconds]")


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
        "expires_at": row["expires_at"],
    }


def check_upload_form(upload: Upload) -> tuple[str, int | None]:
    """(purpose, expiry seconds or None) of an upload's form, or OpenAI's 400 for what is wrong with it."""
    fields = upload.fields
    unknown_parameters([*fields, *([upload.file_field] if upload.file_field else [])], FORM_FIELDS)
    if upload.file_path is None:
        raise OpenAIErrorResponse(
            400, "Missing required parameter: 'file'.", code="missing_required_parameter", param="file"
        )
    purpose = fields.get("purpose")
    if not purpose:
        raise OpenAIErrorResponse(
            400, "Missing required parameter: 'purpose'.", code="missing_required_parameter", param="purpose"
        )
    if purpose not in FILE_PURPOSES:
        raise OpenAIErrorResponse(
            400,
            f"Invalid value for 'purpose': '{purpose}'. Supported values are:"
            f" {', '.join(repr(p) for p in FILE_PURPOSES)}.",
            code="invalid_value",
            param="purpose",
        )
    expiry = {k[len("expires_after[") : -1]: v for k, v in fields.items() if k.startswith("expires_after[")}
    return purpose, check_expires_after(expiry or None, "expires_after")


async def create_file(request: Request) -> Response:
    store: Store = request.app.state.store
    file_id = new_id("file-")
    try:
        max_file, max_line = request.app.state.limits
        upload = await receive_upload(
            request, store.files_dir, file_id + ".upload", max_file_bytes=max_file, max_line_bytes=max_line
        )
    except UploadError as exc:
        raise OpenAIErrorResponse(exc.status, str(exc), code=exc.code, param=exc.param) from None
    try:
        purpose, expires_after = check_upload_form(upload)
        path = store.files_dir / file_id
        os.replace(upload.file_path, path)
    except OpenAIErrorResponse:
        if upload.file_path is not None:
            upload.file_path.unlink(missing_ok=True)
        raise
    row = store.add_file(
        file_id, path=path, filename=upload.filename or "upload.jsonl", purpose=purpose, expires_after=expires_after
    )
    return JSONResponse(file_object(row))


async def list_files(request: Request) -> Response:
    q = request.query_params
    order = q.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise OpenAIErrorResponse(400, f"Invalid 'order': '{order}'. Use 'asc' or 'desc'.", param="order")
    limit = int_param(q.get("limit"), "limit", default=10_000, low=1, high=10_000)
    after = q.get("after") or None
    try:
        rows, more = request.app.state.store.list_files(
            purpose=q.get("purpose") or None, limit=limit, after=after, ascending=order == "asc"
        )
    except UnknownCursor:
        raise invalid_cursor(after or "", "file") from None
    return JSONResponse(page([file_object(r) for r in rows], more))


async def retrieve_file(request: Request) -> Response:
    file_id = request.path_params["file_id"]
    return JSONResponse(file_object(found(request.app.state.store.get_file(file_id), "file", file_id)))


async def file_content(request: Request) -> Response:
    file_id = request.path_params["file_id"]
    row = found(request.app.state.store.get_file(file_id), "file", file_id)
    if not Path(row["path"]).exists():
        raise OpenAIErrorResponse(404, f"The content of file '{row['id']}' is missing on disk.", code="not_found")
    return FileResponse(row["path"], media_type="application/octet-stream", filename=row["filename"])


async def delete_file(request: Request) -> Response:
    store: Store = request.app.state.store
    file_id = request.path_params["file_id"]
    found(store.get_file(file_id), "file", file_id)
    store.delete_file(file_id)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


ROUTES = [
    Route("/v1/files", create_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", retrieve_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
]

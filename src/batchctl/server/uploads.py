"""Streams a multipart upload straight to a file in the data dir: a 200 MB batch file never sits in memory.

Starlette's `request.form()` spools file parts into anonymous temporary files, which then have to be
copied; parsing the stream ourselves with python-multipart writes each chunk once, to its final disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD_BYTES = 64 * 1024


class UploadError(ValueError):
    """The request body is not a usable multipart form."""


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None  # the received file part, in `dest_dir` (the caller renames it)
    filename: str | None = None


async def receive_upload(request: Any, dest_dir: Path, tmp_name: str) -> Upload:
    """Parse `request`'s multipart body; the first file part goes to `dest_dir / tmp_name`."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError("Expected a multipart/form-data body with a `file` and a `purpose` field.")

    upload = Upload()
    state: dict[str, Any] = {"name": None, "filename": None, "buf": bytearray(), "out": None}
    header = {"field": b"", "value": b"", "disposition": b""}
    tmp_path = dest_dir / tmp_name

    def on_part_begin() -> None:
        header["disposition"] = b""
        state.update(name=None, filename=None, buf=bytearray(), out=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            header["disposition"] = header["value"]
        header["field"] = header["value"] = b""

    def on_headers_finished() -> None:
        _, options = parse_options_header(header["disposition"])
        name = options.get(b"name")
        if name is None:
            raise UploadError('A multipart part has no Content-Disposition "name".')
        state["name"] = name.decode("utf-8", "replace")
        if b"filename" in options and upload.file_path is None:
            state["filename"] = options[b"filename"].decode("utf-8", "replace")
            state["out"] = open(tmp_path, "wb")  # noqa: SIM115 - closed in on_part_end or below

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["out"] is not None:
            state["out"].write(data[start:end])
        else:
            state["buf"] += data[start:end]
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise UploadError(f"The form field {state['name']!r} is too large.")

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
            upload.file_path = tmp_path
            upload.filename = state["filename"]
        else:
            upload.fields[state["name"]] = state["buf"].decode("utf-8", "replace")

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        _discard(state, tmp_path)
        raise
    except Exception as exc:
        _discard(state, tmp_path)
        raise UploadError(f"Could not read the multipart body: {exc}") from exc
    return upload


def _discard(state: dict[str, Any], tmp_path: Path) -> None:
    if state["out"] is not None:
        state["out"].close()
    if tmp_path.exists():
        os.unlink(tmp_path)

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


DRAIN_BYTES = 1 << 30  # after a refusal, read (and drop) this much more so the client gets the answer


class UploadError(ValueError):
    """The request body is not a usable multipart form (or breaks a limit): `status`, `code`, `param`."""

    def __init__(self, message: str, status: int = 400, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


class _Limits:
    """Counts the bytes and the current line of the file part, refusing as soon as one is over."""

    def __init__(self, max_file: int | None, max_line: int | None) -> None:
        self.max_file, self.max_line = max_file, max_line
        self.size = self.line_len = 0
        self.line_no = 1

    def feed(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        if self.max_file is not None and self.size > self.max_file:
            raise UploadError(
                f"The file is larger than this server's limit of {_mb(self.max_file)}"
                " (batchctl serve --max-file-mb). Split it into smaller batches.",
                413, "file_too_large", "file",
            )  # fmt: skip
        if self.max_line is None:
            return
        pos = start
        while True:
            newline = data.find(b"\n", pos, end)
            self.line_len += (newline if newline >= 0 else end) - pos
            if self.line_len > self.max_line + 1:  # + 1: a CR of a CRLF ending
                raise UploadError(
                    f"Line {self.line_no} of the file is longer than this server's limit of"
                    f" {_mb(self.max_line)} per line (batchctl serve --max-line-mb).",
                    400, "line_too_large", "file",
                )  # fmt: skip
            if newline < 0:
                return
            self.line_no += 1
            self.line_len = 0
            pos = newline + 1


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.4f}".rstrip("0").rstrip(".") + " MB"  # 0.01 MB, not 0.00999928 MB


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None  # the received file part, in `dest_dir` (the caller renames it)
    filename: str | None = None
    file_field: str | None = None  # the form name of that part ("file" from every client that works)


async def receive_upload(
    request: Any,
    dest_dir: Path,
    tmp_name: str,
    *,
    max_file_bytes: int | None = None,
    max_line_bytes: int | None = None,
) -> Upload:
    """Parse `request`'s multipart body; the first file part goes to `dest_dir / tmp_name` (mode 0600).

    The limits are checked while the body streams in: a file or a line over them raises UploadError
    (413 / 400) without the file, or the line, ever being held in memory.
    """
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError("Expected a multipart/form-data body with a `file` and a `purpose` field.")

    upload = Upload()
    state: dict[str, Any] = {"name": None, "filename": None, "buf": bytearray(), "out": None}
    header = {"field": b"", "value": b"", "disposition": b""}
    tmp_path = dest_dir / tmp_name
    limits = _Limits(max_file_bytes, max_line_bytes)

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
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            state["out"] = os.fdopen(fd, "wb")  # closed in on_part_end or below

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["out"] is not None:
            limits.feed(data, start, end)
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
            upload.file_field = state["name"]
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
    stream = request.stream()
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        _discard(state, tmp_path)
        drained = 0
        async for chunk in stream:  # memory stays flat: each chunk is dropped
            drained += len(chunk)
            if drained > DRAIN_BYTES:
                break
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

"""A multipart/form-data body that streams a file from disk, with an exact Content-Length.

httpx 0.28's own ``files=`` does read an open file in 64 KiB chunks, but it gives no progress
hook and reuses one file handle; this body reopens the file on every iteration (so a retried
upload starts clean) and reports ``progress(sent, total)`` as the bytes leave.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK_SIZE = 256 * 1024

ProgressCallback = Callable[[int, int], None]


def _quote(value: str) -> str:
    # RFC 7578 §4.2 as browsers do it: escape quotes and line breaks rather than %-encode.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFileUpload:
    """``fields`` as plain form parts, then ``path`` as the part named ``file_field``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fields: dict[str, str],
        file_field: str = "file",
        content_type: str = "application/octet-stream",
        progress: ProgressCallback | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.path = Path(path)
        self.boundary = secrets.token_hex(16)
        self.progress = progress
        self.chunk_size = chunk_size
        self.file_size = self.path.stat().st_size
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
            f'filename="{_quote(self.path.name)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        return len(self._head) + self.file_size + len(self._tail)

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}

    def __iter__(self) -> Iterator[bytes]:
        """Yield the body; each iteration reopens the file, so the body can be sent again."""
        sent = 0
        total = self.file_size
        if self.progress:
            self.progress(0, total)
        yield self._head
        with self.path.open("rb") as handle:
            while chunk := handle.read(self.chunk_size):
                sent += len(chunk)
                if sent > total:
                    raise OSError(f"{self.path} grew while it was being uploaded")
                yield chunk
                if self.progress:
                    self.progress(sent, total)
        if sent != total:
            raise OSError(f"{self.path} changed size while it was being uploaded ({sent} of {total} bytes)")
        yield self._tail

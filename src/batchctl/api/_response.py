"""What a request hands back besides parsed models: a download's byte stream, and a raw never-raising answer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from batchctl.api.errors import APIError


class ContentStream(Iterator[bytes]):
    """The body of a file download as byte chunks; ``close()`` it (or exhaust it) to free the connection."""

    def __init__(self, response: httpx.Response, on_error: Callable[[Exception], APIError]) -> None:
        self.response = response
        length = response.headers.get("content-length")
        self.total: int | None = int(length) if length and length.isdigit() else None
        self._chunks = response.iter_bytes()
        self._on_error = on_error

    def __iter__(self) -> ContentStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise
        except httpx.TransportError as exc:
            self.close()
            raise self._on_error(exc) from exc

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> ContentStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class RawResponse:
    """One exchange as it happened, whatever its status: for probes that judge the answer themselves.

    ``status`` is None when no answer arrived; then ``error_type``/``error_detail`` say why (secrets
    masked). ``content`` holds at most the bytes asked for (``truncated`` says whether there was more).
    """

    method: str
    url: str
    status: int | None = None
    reason: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    truncated: bool = False
    elapsed_ms: int = 0
    error_type: str | None = None
    error_detail: str = ""
    timed_out: bool = False

    @property
    def error(self) -> str | None:
        """`ConnectError: [Errno 111] Connection refused`: why no (whole) answer arrived, or None."""
        if self.error_type is None:
            return None
        return f"{self.error_type}: {self.error_detail}" if self.error_detail else self.error_type

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def is_error(self) -> bool:
        return self.status is not None and self.status >= 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; None when it is empty, cut short or not JSON."""
        try:
            return json.loads(self.content) if self.content.strip() and not self.truncated else None
        except ValueError:
            return None

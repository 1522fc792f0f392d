"""What an executor makes of one request: an `Outcome` (a response, or an error when there is none).

Shared by the echo model (`echo.py`) and the upstream executor (`executors.py`), and read by the runner.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

_ID_BITS = 96


def quick_id(prefix: str) -> str:
    """A unique id like `new_id`'s, from the `random` module: ids of result lines need no secret, only
    uniqueness, and `secrets` costs a system call each (~5 % of the server's time at 5,000 requests/s)."""
    return f"{prefix}{random.getrandbits(_ID_BITS):024x}"


@dataclass
class Outcome:
    """A response (`status_code`, `body`) or, when there is none, an `error_code`/`error_message`."""

    status_code: int | None = None
    body: dict[str, Any] | None = None
    request_id: str = field(default_factory=lambda: quick_id("req_"))
    error_code: str | None = None
    error_message: str | None = None
    # The body as the upstream sent it (valid JSON, on one line): the result line splices it in as it is.
    body_text: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def usage(self) -> tuple[int, int]:
        """(input tokens, output tokens) reported in the body, 0 when absent."""
        usage = self._usage()
        tokens_in = usage.get("prompt_tokens", usage.get("input_tokens", 0))
        tokens_out = usage.get("completion_tokens", usage.get("output_tokens", 0))
        return (tokens_in if isinstance(tokens_in, int) else 0, tokens_out if isinstance(tokens_out, int) else 0)

    def usage_details(self) -> tuple[int, int]:
        """(cached input tokens, reasoning tokens) reported in the body, chat's names first, 0 when absent."""
        usage = self._usage()
        return (
            _detail(usage, "prompt_tokens_details", "input_tokens_details", "cached_tokens"),
            _detail(usage, "completion_tokens_details", "output_tokens_details", "reasoning_tokens"),
        )

    def _usage(self) -> dict[str, Any]:
        usage = (self.body or {}).get("usage") if self.ok else None
        return usage if isinstance(usage, dict) else {}


def _detail(usage: dict[str, Any], chat: str, responses: str, name: str) -> int:
    for key in (chat, responses):
        details = usage.get(key)
        value = details.get(name) if isinstance(details, dict) else None
        if value is not None:
            return value if isinstance(value, int) else 0
    return 0

def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}

"""JSON for the server's hot path: orjson when installed (`batchctl[fast]`), else the standard library.

One function each way, so the choice is made once. orjson parses the upstream's answers and writes
request and result lines several times faster than `json` (docs/performance.md gives the figure);
what it cannot write (integers beyond 64 bits, say) falls back to `json`, so the output is the same data.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    orjson = None  # type: ignore[assignment]

FAST = orjson is not None


def loads(data: bytes | str) -> Any:
    """Parse JSON text or UTF-8 bytes; raises ValueError when it is not JSON.

    What orjson refuses but `json` reads (NaN and Infinity, as some servers write in logprobs) is read by `json`.
    """
    if orjson is not None:
        try:
            return orjson.loads(data)
        except ValueError:
            pass
    return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as it is."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dumps_bytes(value: Any) -> bytes:
    """`dumps`, encoded as UTF-8: a request body ready to send."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

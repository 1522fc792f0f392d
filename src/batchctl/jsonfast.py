"""Fast JSON for the loops over whole files (validate, download, merge) and the server's hot path, the stdlib behind it.

`loads(data)` gives exactly what `json.loads(data)` gives, errors included: msgspec parses (about 2x
the stdlib on batch lines here, measured in docs/performance.md), and whatever it refuses goes to the
stdlib, which then decides. So NaN, integers past 64 bits, lone surrogates and over-deep nesting
behave as they always did; only valid, ordinary JSON takes the fast road. Without msgspec installed,
`loads` is the stdlib's.

`parse` is the fast parser alone (`FAST_ERRORS` what it raises on refusal), for callers that
handle a refusal themselves (validation, which words its own messages). `dumps`/`dumps_bytes` write
compact JSON with msgspec (the server's request bodies and result lines), `json` for what it refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import msgspec
except ImportError:  # pragma: no cover - msgspec is a dependency; the fallback keeps batchctl working without it
    msgspec = None  # type: ignore[assignment]

_encode: Callable[[Any], bytes] | None
_ENCODE_ERRORS: tuple[type[BaseException], ...]
if msgspec is not None:
    _encode = msgspec.json.Encoder().encode
    _ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)
else:  # pragma: no cover
    _encode, _ENCODE_ERRORS = None, ()

parse: Callable[[bytes], Any]
FAST_ERRORS: tuple[type[BaseException], ...]
if msgspec is not None:
    parse = msgspec.json.Decoder().decode
    # DecodeError covers malformed JSON and invalid UTF-8; ValidationError numbers out of range;
    # RecursionError nesting deeper than msgspec goes.
    FAST_ERRORS = (msgspec.DecodeError, RecursionError)
else:  # pragma: no cover
    parse = json.loads
    FAST_ERRORS = (ValueError, RecursionError)


def loads(data: bytes | str) -> Any:
    """`json.loads(data)`, faster: msgspec first, the stdlib for what msgspec refuses."""
    try:
        return parse(data)
    except FAST_ERRORS:
        return json.loads(data)


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, non-ASCII kept as it is (the server's request bodies and result
    lines): msgspec writes it several times faster than `json`; what msgspec will not write falls back
    to `json`, so the output is the same data."""
    if _encode is not None:
        try:
            return _encode(value)
        except _ENCODE_ERRORS:
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps(value: Any) -> str:
    """`dumps_bytes` as text."""
    return dumps_bytes(value).decode()

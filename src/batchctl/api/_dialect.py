"""A provider's answers turned into OpenAI's shape before they become models, by its `WireQuirks`.

Pure functions of a payload: statuses in OpenAI's spelling (together's `IN_PROGRESS`), a created batch
out of its envelope (together's `{job, warning}`). What a provider says that OpenAI would not (a
`warning`, a `progress` percentage) is kept as a field of the batch, so `--json` shows it too.
"""

from __future__ import annotations

from typing import Any

from batchctl.quirks import WireQuirks


def adapt_batch(payload: Any, wire: WireQuirks) -> Any:
    """A batch object in OpenAI's spelling (a payload that is not an object is left to the shape check)."""
    if isinstance(payload, dict) and "status" in payload:
        status = wire.normalize_status(payload["status"])
        if status is not payload["status"]:
            payload = {**payload, "status": status}
    return payload


def adapt_page(payload: Any, wire: WireQuirks) -> Any:
    """A list page whose batches are in OpenAI's spelling."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        payload = {**payload, "data": [adapt_batch(item, wire) for item in payload["data"]]}
    return payload


def unwrap_created(payload: Any, wire: WireQuirks) -> tuple[Any, str | None]:
    """(the created batch, the server's warning or None): `{"job": {...}, "warning": "..."}` unwrapped.

    An answer without the envelope (the provider changed its mind, or a proxy in between) is taken as a
    plain batch.
    """
    warning = None
    envelope = wire.create_envelope
    if envelope and isinstance(payload, dict) and isinstance(payload.get(envelope), dict):
        raw_warning = payload.get("warning")
        warning = str(raw_warning).strip() if raw_warning not in (None, "") else None
        payload = dict(payload[envelope])
        if warning:
            payload.setdefault("warning", warning)
    return adapt_batch(payload, wire), warning or None

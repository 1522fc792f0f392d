"""New-API's own routes beside the Batch API: a channel's details and the gateway's status (`/api/...`), and
the models a key may use (`/models`).

The admin route wants a dashboard access token (not the `sk-` key) plus the user id in `New-Api-User`, and
often answers HTTP 200 with `{"success": false, "message": ...}` when it refuses: that is a failure too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchctl.api._base_client import _seg
from batchctl.masking import Redactor
from batchctl.api.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    NotFoundError,
    error_class_for_status,
    raise_for_gateway_failure,
    request_id_from_headers,
)
from batchctl.urls import gateway_root

if TYPE_CHECKING:
    from batchctl.api._base_client import BaseClient


class NewAPI:
    """A New-API gateway's `/api/channel/{id}` and `/api/status`, and `{base}/models`."""

    def __init__(self, client: BaseClient) -> None:
        self._client = client

    def channel(
        self, channel_id: str | int, *, access_token: str, user_id: str | None = None, timeout: float | None = None
    ) -> Any:
        """`GET {gateway root}/api/channel/{id}`: the answer's `data` (None when it has none).

        Sent once, with the access token instead of the key. Raises APIConnectionError (`could not reach
        <url>: ...`) when no answer arrives; NotFoundError for a 404, whose message is the gateway's own
        words (empty when it gave none); another APIStatusError for any other refusal, HTTP 200 with
        `success: false` included; APIResponseValidationError when the answer is not JSON.
        The access token is masked in every message, as the key is.
        """
        c = self._client
        url = f"{gateway_root(c.base_url)}/api/channel/{_seg(str(channel_id))}"
        headers = {"Authorization": access_token}
        if user_id:
            headers["New-Api-User"] = str(user_id)
        raw = c.request_raw("GET", url, headers=headers, secrets=[access_token], timeout=timeout)
        if raw.error or raw.status is None:
            cls = APITimeoutError if raw.timed_out else APIConnectionError
            raise cls(f"could not reach {url}: {raw.error_detail or raw.error_type}", url=url)
        redact = Redactor([*c._secrets, access_token])
        payload = raw.json()
        said = ""
        if isinstance(payload, dict):
            # A gateway may echo the token it refused: never pass it on.
            said = redact(str(payload.get("message") or payload.get("error") or "").strip())
        fields: dict[str, Any] = {
            "status": raw.status,
            "body": payload,
            "url": url,
            "headers": raw.headers,
            "request_id": request_id_from_headers(raw.headers),
        }
        if raw.status == 404:
            raise NotFoundError(said, **fields)
        if raw.status >= 400:
            raise error_class_for_status(raw.status)(
                said or redact(" ".join(raw.text.split())[:200]) or raw.reason, **fields
            )
        if not isinstance(payload, dict):
            raise APIResponseValidationError(
                f"{url} did not answer with JSON (HTTP {raw.status}); is this a New-API gateway?", **fields
            )
        if payload.get("success") is False:
            raise APIStatusError(said or "no message", **fields)
        return payload.get("data")

    def status(self) -> dict[str, Any]:
        """`GET {gateway root}/api/status`: the gateway's public settings and version (the answer's `data`)."""
        c = self._client
        response = c._request("GET", f"{gateway_root(c.base_url)}/api/status")
        payload = c._payload(response)
        raise_for_gateway_failure(payload, status=response.status_code)
        data = payload.get("data") if isinstance(payload, dict) else None
        return data if isinstance(data, dict) else {}

    def models(self) -> list[str]:
        """`GET {base}/models` with the client's key (and channel pin): the ids of the models it lists."""
        c = self._client
        payload = c._payload(c._request("GET", f"{c.base_url}/models"))
        data = payload.get("data") if isinstance(payload, dict) else None
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")] if isinstance(data, list) else []

"""The exceptions the API layer raises, keyed by HTTP status, each carrying message, code and request id."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from batchctl.urls import display_url

__all__ = [
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "NotImplementedByServerError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "FilesNotServedError",
    "REQUEST_ID_HEADERS",
    "error_for_status",
    "parse_error_body",
    "raise_for_gateway_failure",
    "request_id_from_headers",
]

# Where providers put the id support people ask for: OpenAI and New-API send `x-request-id`,
# some proxies `request-id`, DashScope `x-dashscope-request-id`.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-dashscope-request-id")

_MAX_TEXT = 200


class APIError(Exception):
    """Base of every error the API layer raises.

    ``status`` is the HTTP status (None when no response arrived), ``code`` the provider's
    error code if it gave one, ``request_id`` the id to quote when asking the provider for help.
    ``url`` is the request's URL when known (the CLI names the route a gateway does not serve);
    ``headers`` the response's headers, when there was a response. A URL's password is masked in
    ``message`` and ``url`` (`display_url`): both are shown to people.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        type: str | None = None,
        param: str | None = None,
        body: Any = None,
        url: str | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = display_url(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.type = type
        self.param = param
        self.body = body
        self.url = display_url(url) if url else url
        # Seconds the server asked to wait (Retry-After / retry-after-ms on a 429 or 503), when it said.
        self.retry_after = retry_after
        self.headers = headers

    def __str__(self) -> str:
        details = []
        if self.status is not None and not self.message.startswith(f"HTTP {self.status} "):
            details.append(f"HTTP {self.status}")
        if self.code:
            details.append(f"code {self.code}")
        if self.request_id:
            details.append(f"request id {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )


class APIStatusError(APIError):
    """The server answered with an error status (or a 2xx that says it failed)."""


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429: rate limited or out of quota."""


class InternalServerError(APIStatusError):
    """5xx."""


class NotImplementedByServerError(InternalServerError):
    """501 (New-API answers `api_not_implemented` when a channel has no Batch API)."""


class APIConnectionError(APIError):
    """No HTTP response arrived: DNS, refused connection, TLS, dropped connection."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIResponseValidationError(APIError):
    """The server answered 2xx with a body that is not the expected shape."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    501: NotImplementedByServerError,
}


def error_class_for_status(status: int) -> type[APIStatusError]:
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return InternalServerError
    return APIStatusError


def request_id_from_headers(headers: Any) -> str | None:
    """The first request id header present (``headers`` is any case-insensitive mapping)."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, ensure_ascii=False)


def _detail_message(detail: Any) -> str | None:
    # FastAPI/Starlette: a string, or a list of {"loc": [...], "msg": ...} validation errors.
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(_text_of(item) or "")
        return "; ".join(p for p in parts if p) or None
    return _text_of(detail)


def _readable_text(text: str) -> str:
    """An HTML proxy page's title, or the start of any other text with tags stripped."""
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if match and match.group(1).strip():
        text = match.group(1)
    else:
        text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", text, flags=re.IGNORECASE | re.DOTALL)
        text = re.sub(r"<[^>]+>", " ", text)
    text = " ".join(html.unescape(text).split())
    return text[:_MAX_TEXT] + ("…" if len(text) > _MAX_TEXT else "")


def parse_error_body(content: bytes | str, *, status: int, url: str) -> dict[str, Any]:
    """Pull message, code, type, param and request id out of an error body of any known shape.

    Shapes: OpenAI ``{"error": {"message", "type", "code", "param"}}`` (or ``{"error": "text"}``),
    New-API ``{"success": false, "message": ...}``, DashScope/others ``{"code", "message", "request_id"}``,
    FastAPI ``{"detail": ...}``; anything else (an HTML page from a proxy) becomes
    ``HTTP 502 from <url>: <page title or text>``. Returns the keyword arguments of ``APIError``.
    """
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    try:
        body: Any = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    fields: dict[str, Any] = {"body": body if body is not None else (text or None)}
    message: str | None = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = _text_of(error.get("message"))
            fields["code"] = _text_of(error.get("code"))
            fields["type"] = _text_of(error.get("type"))
            fields["param"] = _text_of(error.get("param"))
        elif error is not None:
            message = _text_of(error)
        if message is None:
            message = _text_of(body.get("message")) or _text_of(body.get("msg"))
        if message is None and "detail" in body:
            message = _detail_message(body["detail"])
        if not fields.get("code") and isinstance(body.get("code"), (str, int)) and body["code"] != "":
            fields["code"] = str(body["code"])
        if isinstance(body.get("request_id"), str):
            fields["request_id"] = body["request_id"]
        if message is None:
            message = f"HTTP {status} from {url}: {_readable_text(text)}"
    elif body is not None:  # JSON, but a bare string or list
        message = _text_of(body)
    else:
        snippet = _readable_text(text)
        message = f"HTTP {status} from {url}" + (f": {snippet}" if snippet else " (empty response body)")
    fields["message"] = message or f"HTTP {status} from {url}"
    return fields


def error_for_status(
    status: int, content: bytes | str, *, url: str, headers: Any = None
) -> APIStatusError:
    """Build (not raise) the exception for an error response."""
    fields = parse_error_body(content, status=status, url=url)
    retry_after = None
    if headers is not None:
        from batchctl.api.retry import parse_retry_after

        fields["request_id"] = request_id_from_headers(headers) or fields.get("request_id")
        retry_after = parse_retry_after(headers)
    return error_class_for_status(status)(status=status, url=url, retry_after=retry_after, headers=headers, **fields)


def raise_for_gateway_failure(payload: Any, *, status: int = 200, request_id: str | None = None) -> None:
    """Raise when a gateway answered 2xx with ``{"success": false, "message": ...}`` (New-API's `/api` routes)."""
    if isinstance(payload, dict) and payload.get("success") is False:
        message = _text_of(payload.get("message")) or "the server reported a failure without a message"
        code = payload.get("code")
        raise APIStatusError(
            message,
            status=status,
            code=str(code) if code not in (None, "") else None,
            request_id=request_id,
            body=payload,
        )


class FilesNotServedError(APIError):
    """The provider's OpenAI-compatible API has no /files routes (gemini): raised before anything is sent.

    ``hint`` says what to do instead, in that provider's words.
    """

    def __init__(self, action: str, hint: str, provider: str | None = None, *, url: str | None = None) -> None:
        who = f"{provider}'s OpenAI-compatible API" if provider else f"the OpenAI-compatible API at {url or 'this server'}"
        super().__init__(f"{who} does not serve files, so {action} is not possible here; nothing was sent", url=url)
        self.hint = hint or "Upload and download the files with the provider's own API."

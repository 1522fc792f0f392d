"""What every route of the local server shares: its error answer in OpenAI's shape, list pages and query parameters.

An error that asking again cannot change (a 4xx other than 408 and 429) carries `x-should-retry: false`,
the header both official SDKs honour: a 409 for cancelling a finished batch fails at once instead of
after the SDK's retries.

Text that no UTF-8 can carry -- a lone surrogate, which JSON's `\\ud800` escape makes -- is refused where a
JSON body is read (`json_body`: 400, nothing stored), and an answer holding one anyway (a row an older
release stored) is written with U+FFFD in its place instead of failing (`JSONResponse`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSONResponse

from batchctl import jsonfast

# Answers a retry may change: the SDKs' own retry rules apply to these (and to every 5xx).
RETRYABLE_STATUSES = (408, 429)
# OpenAI's limits of an `expires_after` (file upload) and `output_expires_after` (batch create).
EXPIRES_MIN_SECONDS = 3600
EXPIRES_MAX_SECONDS = 30 * 86400
# A surrogate code point in a str is a lone one (json.loads joins a valid pair into one character).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONResponse(_StarletteJSONResponse):
    """Starlette's JSON answer (UTF-8, non-ASCII as it is), or -- when the content holds a lone surrogate,
    which UTF-8 cannot encode -- the same JSON with each lone surrogate replaced by U+FFFD.

    Only rows stored by a release that accepted such strings get here: one of them must not turn every
    list that includes it into a 500 for good. U+FFFD rather than `\\ud800` escapes (the exact value) or
    `surrogatepass` bytes (not UTF-8: strict clients refuse them): a client that reads an escape holds the
    same unencodable string and fails on it in turn -- `batchctl list` and `status` did, printing it. The
    value was never text, and a new one is refused (`json_body`). Nothing on the usual road: an except.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json_text(content).encode("utf-8")


def without_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate as U+FFFD: what UTF-8 can carry (why not an escape: `JSONResponse`)."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def json_text(content: Any) -> str:
    """`content` as compact JSON (non-ASCII as it is), lone surrogates as U+FFFD: JSON that UTF-8 can carry."""
    return without_lone_surrogates(json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")))


class OpenAIErrorResponse(Exception):
    """The server's error answer, `{"error": {"message", "type", "param", "code"}}` like OpenAI's.

    Raised by a route, answered by the app's exception handler. (Not the client's
    `batchctl.api.errors.APIError`, which is what the CLI makes of such an answer.)
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        final = 400 <= self.status < 500 and self.status not in RETRYABLE_STATUSES
        return JSONResponse(body, status_code=self.status, headers={"x-should-retry": "false"} if final else None)


async def json_body(request: Request) -> Any:
    """The request's JSON body, or the 400 for a body that is not JSON or holds a string no UTF-8 can carry.

    msgspec parses first (faster than the stdlib, and it refuses lone surrogates and invalid UTF-8), so
    the usual body costs no extra check; only what it refuses is parsed by the stdlib (as Starlette's
    `request.json()` did: UTF-16 bodies, NaN, huge integers) and then searched for a lone surrogate.
    """
    body = await request.body()
    try:
        return jsonfast.parse(body)
    except jsonfast.FAST_ERRORS:
        pass
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise OpenAIErrorResponse(400, "The request body is not valid JSON.") from None
    bad = _unencodable(value)
    if bad is not None:
        param, text = bad
        where = f"'{param}'" if param else "request body"
        raise OpenAIErrorResponse(
            400,
            f"Invalid {where}: the string {text} holds a lone surrogate (a"
            " \\ud800-\\udfff escape without its pair), which is not valid Unicode text. Send UTF-8 text.",
            code="invalid_value",
            param=param,
        )
    return value


def _escaped(text: str) -> str:
    """`text` as a JSON string literal in ASCII: a lone surrogate shows as its escape."""
    shown = json.dumps(text)
    return shown if len(shown) <= 80 else shown[:76] + '..."'


def _unencodable(value: Any) -> tuple[str | None, str] | None:
    """(param, the string shown) of the first string in `value` (keys included) that UTF-8 cannot encode:
    the top-level field it is in (the field's own name, escaped, when that is the string); None if none."""
    top = value.items() if isinstance(value, dict) else [(None, value)]
    for key, item in top:
        if key is not None and not _encodable(key):
            return json.dumps(key)[1:-1], _escaped(key)
        stack = [item]  # a loop, not recursion: the body may nest as deep as the parser allowed
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                if not _encodable(node):
                    return key, _escaped(node)
            elif isinstance(node, dict):
                stack.extend(node.keys())
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unknown_parameters(given: Any, known: tuple[str, ...]) -> None:
    """OpenAI's 400 for the first argument of a create body that the endpoint does not know."""
    for name in given:
        if name not in known:
            raise OpenAIErrorResponse(
                400, f"Unrecognized request argument supplied: {name}", code="unknown_parameter", param=name
            )


def check_expires_after(value: Any, param: str) -> int | None:
    """The seconds of an `expires_after`-style object ({"anchor": "created_at", "seconds": N}), checked as
    OpenAI checks them; None when absent. Form fields arrive as strings, so "3600" counts as a number."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise OpenAIErrorResponse(
            400, f"Invalid type for '{param}': expected an object with 'anchor' and 'seconds'.",
            code="invalid_type", param=param,
        )  # fmt: skip
    unknown_parameters({f"{param}.{k}": v for k, v in value.items()}, (f"{param}.anchor", f"{param}.seconds"))
    for name in ("anchor", "seconds"):
        if value.get(name) is None:
            raise OpenAIErrorResponse(
                400, f"Missing required parameter: '{param}.{name}'.", code="missing_required_parameter",
                param=f"{param}.{name}",
            )  # fmt: skip
    if value["anchor"] != "created_at":
        raise OpenAIErrorResponse(
            400, f"Invalid value for '{param}.anchor': '{value['anchor']}'. Supported values are: 'created_at'.",
            code="invalid_value", param=f"{param}.anchor",
        )  # fmt: skip
    seconds = value["seconds"]
    if isinstance(seconds, str) and seconds.strip().isdigit():
        seconds = int(seconds)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise OpenAIErrorResponse(
            400, f"Invalid type for '{param}.seconds': expected an integer, got {json.dumps(seconds)}.",
            code="invalid_type", param=f"{param}.seconds",
        )  # fmt: skip
    if not EXPIRES_MIN_SECONDS <= seconds <= EXPIRES_MAX_SECONDS:
        raise OpenAIErrorResponse(
            400,
            f"Invalid '{param}.seconds': {seconds}. Expected a value between {EXPIRES_MIN_SECONDS} (1 hour) and"
            f" {EXPIRES_MAX_SECONDS} (30 days).",
            code="invalid_value", param=f"{param}.seconds",
        )  # fmt: skip
    return seconds


def invalid_cursor(after: str, kind: str) -> OpenAIErrorResponse:
    """The answer to a list's `after` that names no object (docs/serve-wire.md says why not an empty page)."""
    return OpenAIErrorResponse(
        400,
        f"Invalid 'after': no {kind} with id '{after}' exists, so there is no page after it. Start the list again"
        " without 'after'.",
        code="invalid_cursor", param="after",
    )  # fmt: skip


def not_found(kind: str, object_id: str, param: str) -> OpenAIErrorResponse:
    return OpenAIErrorResponse(404, f"No {kind} found with id '{object_id}'.", code="not_found", param=param)


def found(row: dict[str, Any] | None, kind: str, object_id: str) -> dict[str, Any]:
    """`row`, or -- when there is none -- OpenAI's 404 for the `{kind}_id` of a route."""
    if row is None:
        raise not_found(kind, object_id, f"{kind}_id")
    return row


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def int_param(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise OpenAIErrorResponse(400, f"Invalid '{name}': expected an integer, got '{value}'.", param=name) from None
    if not low <= number <= high:
        raise OpenAIErrorResponse(400, f"Invalid '{name}': must be between {low} and {high}, got {number}.", param=name)
    return number

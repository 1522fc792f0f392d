"""What every route of the local server shares: its error answer in OpenAI's shape, list pages and query parameters."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


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
        return JSONResponse(body, status_code=self.status)


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

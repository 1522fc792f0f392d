"""The API layer's newer surface over httpx.MockTransport: request_raw, client.newapi, probe_health, error fields."""

from __future__ import annotations

import httpx
import pytest

from batchctl import __version__
from batchctl.api import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BatchClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    probe_health,
)
from batchctl.api.errors import error_for_status

BASE = "http://gw.test/v1"
KEY = "sk-live-SECRETabcdef9876"
TOKEN = "dashboard-access-token-0042"


def client_for(handler, log: list[str] | None = None, **kwargs) -> BatchClient:
    kwargs.setdefault("api_key", KEY)
    return BatchClient(BASE, transport=httpx.MockTransport(handler), debug_log=None if log is None else log.append, **kwargs)


# -- request_raw --------------------------------------------------------------------------------


def test_request_raw_never_raises_for_a_status_and_carries_auth_and_user_agent():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": {"message": "no such route"}}, headers={"date": "Mon, 30 Nov 2026 00:00:00 GMT"})

    raw = client_for(handler, channel="7").request_raw("GET", "/files", params={"limit": 1, "after": None})
    assert raw.status == 404 and raw.is_error and not raw.ok and raw.error is None
    assert raw.json() == {"error": {"message": "no such route"}} and raw.headers["date"].startswith("Mon")
    assert raw.url == f"{BASE}/files?limit=1" and raw.elapsed_ms >= 0
    assert seen[0].headers["authorization"] == f"Bearer {KEY}-7"
    assert seen[0].headers["user-agent"] == f"batchctl/{__version__}"


def test_request_raw_reports_a_lost_connection_as_a_value_with_secrets_masked():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused while sending {KEY}")

    raw = client_for(handler).request_raw("GET", "/batches")
    assert raw.status is None and not raw.ok and raw.error_type == "ConnectError"
    assert raw.error.startswith("ConnectError: refused") and KEY not in raw.error


def test_request_raw_reads_a_bounded_body_and_takes_headers_urls_and_multipart():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        request.read()
        return httpx.Response(200, content=b"x" * 100)

    client = client_for(handler)
    raw = client.request_raw("POST", "http://gw.test/elsewhere", files={"purpose": (None, "batch")}, headers={"Authorization": "other"}, max_body=10)
    assert raw.ok and raw.content == b"x" * 10 and raw.truncated and raw.json() is None
    assert str(seen[0].url) == "http://gw.test/elsewhere" and seen[0].headers["authorization"] == "other"
    assert b'name="purpose"' in seen[0].content


def test_request_raw_logs_like_every_other_request_with_extra_secrets_masked():
    log: list[str] = []
    client = client_for(lambda request: httpx.Response(401, json={"message": f"bad token {TOKEN}"}), log)
    client.request_raw("GET", "/files", secrets=[TOKEN])
    assert log[0].startswith(f"HTTP GET {BASE}/files -> 401 Unauthorized (")
    assert any("bad token" in line for line in log) and not any(TOKEN in line or KEY in line for line in log)


# -- client.newapi ------------------------------------------------------------------------------


def channel_gateway(status: int = 200, body=None, content: bytes | None = None):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=body)

    return handler, seen


def test_channel_sends_the_access_token_and_user_and_returns_data():
    handler, seen = channel_gateway(body={"success": True, "data": {"id": 7, "name": "main"}})
    data = client_for(handler, api_key=None).newapi.channel(7, access_token=TOKEN, user_id="1")
    assert data == {"id": 7, "name": "main"}
    assert str(seen[0].url) == "http://gw.test/api/channel/7"
    assert seen[0].headers["authorization"] == TOKEN and seen[0].headers["new-api-user"] == "1"


@pytest.mark.parametrize(
    ("status", "body", "content", "error", "message"),
    [
        (404, {"message": "gone"}, None, NotFoundError, "gone"),
        (404, None, b"<html>404</html>", NotFoundError, ""),
        (401, {"message": f"invalid {TOKEN}"}, None, AuthenticationError, "invalid das…0042"),
        (403, None, b"forbidden here", PermissionDeniedError, "forbidden here"),
        (200, {"success": False, "message": "权限不足"}, None, APIStatusError, "权限不足"),
        (200, {"success": False}, None, APIStatusError, "no message"),
        (200, None, b"<html>a proxy</html>", APIResponseValidationError, "did not answer with JSON (HTTP 200)"),
    ],
)
def test_channel_errors(status, body, content, error, message):
    handler, _ = channel_gateway(status, body, content)
    with pytest.raises(error) as caught:
        client_for(handler).newapi.channel("7", access_token=TOKEN)
    assert message in caught.value.message if message else caught.value.message == ""
    assert caught.value.status == status and caught.value.url == "http://gw.test/api/channel/7"


def test_channel_unreachable_masks_the_token():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {TOKEN}")

    with pytest.raises(APIConnectionError, match=r"could not reach http://gw.test/api/channel/7: refused") as caught:
        client_for(handler).newapi.channel("7", access_token=TOKEN)
    assert TOKEN not in caught.value.message


def test_status_and_models():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/status":
            return httpx.Response(200, json={"success": True, "data": {"version": "v0.9"}})
        return httpx.Response(200, json={"data": [{"id": "qwen-plus"}, {"id": "qwen-turbo"}, {"no": "id"}]})

    client = client_for(handler)
    assert client.newapi.status() == {"version": "v0.9"}
    assert client.newapi.models() == ["qwen-plus", "qwen-turbo"]


def test_models_refused_raises_the_status_error():
    client = client_for(lambda request: httpx.Response(403, json={"error": {"message": "only admins"}}), max_retries=0)
    with pytest.raises(PermissionDeniedError, match="only admins"):
        client.newapi.models()


# -- probe_health and error fields --------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json={"status": "ok", "version": "1"}), {"status": "ok", "version": "1"}),
        (httpx.Response(200, json={"status": "starting"}), None),
        (httpx.Response(200, content=b"not json"), None),
        (httpx.Response(503, json={"status": "ok"}), None),
    ],
)
def test_probe_health(answer, expected):
    assert probe_health("http://127.0.0.1:1", transport=httpx.MockTransport(lambda request: answer)) == expected


def test_probe_health_when_nothing_answers():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    assert probe_health("http://127.0.0.1:1", transport=httpx.MockTransport(handler)) is None


def test_errors_get_url_retry_after_and_headers_in_their_constructor():
    headers = httpx.Headers({"retry-after": "7", "x-request-id": "req_1"})
    error = error_for_status(429, b'{"error": {"message": "slow down"}}', url=f"{BASE}/batches", headers=headers)
    assert isinstance(error, RateLimitError)
    assert (error.url, error.retry_after, error.request_id, error.headers) == (f"{BASE}/batches", 7.0, "req_1", headers)
    plain = APIStatusError("x", url="u", retry_after=1.5)
    assert (plain.url, plain.retry_after, plain.headers) == ("u", 1.5, None)


# -- layering -----------------------------------------------------------------------------------


def test_only_the_api_layer_speaks_http():
    import re
    from pathlib import Path

    import batchctl
    import batchctl.api

    root = Path(batchctl.__file__).parent
    allowed = {root / "server" / "executors.py"}
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if root / "api" not in path.parents and path not in allowed
        and re.search(r"^\s*(import httpx|from httpx)", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]  # fmt: skip
    assert offenders == []
    assert not {"bearer_token", "debug_event_hooks"} & set(batchctl.api.__all__)
    assert not hasattr(batchctl.api, "debug_event_hooks") and not hasattr(batchctl.api, "bearer_token")

"""Error responses of every known shape become the right exception, with message, code and request id."""

from __future__ import annotations

import httpx
import pytest

from batchctl.api import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchClient,
    ConflictError,
    InternalServerError,
    NotFoundError,
    NotImplementedByServerError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    raise_for_gateway_failure,
)

BASE = "https://api.example.test/v1"


def client_answering(status: int, *, json=None, text=None, headers=None) -> BatchClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if json is not None:
            return httpx.Response(status, json=json, headers=headers)
        return httpx.Response(status, text=text or "", headers=headers)

    client = BatchClient(BASE, "sk-test-0123456789", max_retries=0, transport=httpx.MockTransport(handler))
    client._sleep = lambda seconds: None
    return client


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, InternalServerError),
        (503, InternalServerError),
        (501, NotImplementedByServerError),
        (418, APIStatusError),
    ],
)
def test_status_maps_to_class(status, cls):
    client = client_answering(status, json={"error": {"message": "nope"}})
    with pytest.raises(cls) as info:
        client.batches.retrieve("batch_1")
    assert type(info.value) is cls
    assert info.value.status == status


def test_openai_error_shape_and_request_id_header():
    client = client_answering(
        404,
        json={"error": {"message": "No batch found with id 'batch_x'.", "type": "invalid_request_error",
                        "code": "not_found", "param": "batch_id"}},
        headers={"x-request-id": "req_abc123"},
    )
    with pytest.raises(NotFoundError) as info:
        client.batches.retrieve("batch_x")
    err = info.value
    assert err.message == "No batch found with id 'batch_x'."
    assert (err.code, err.type, err.param, err.request_id) == ("not_found", "invalid_request_error", "batch_id", "req_abc123")
    assert str(err) == "No batch found with id 'batch_x'. (HTTP 404, code not_found, request id req_abc123)"
    assert isinstance(err, APIStatusError) and isinstance(err, APIError)


def test_new_api_gateway_shape():
    client = client_answering(
        403, json={"success": False, "message": "该令牌无权使用渠道 2"}, headers={"X-Oneapi-Request-Id": "x"}
    )
    with pytest.raises(PermissionDeniedError) as info:
        client.batches.list()
    assert info.value.message == "该令牌无权使用渠道 2"
    assert info.value.request_id is None


def test_new_api_not_implemented():
    client = client_answering(
        501,
        json={"error": {"message": "API not implemented", "type": "new_api_error", "code": "api_not_implemented"}},
    )
    with pytest.raises(NotImplementedByServerError) as info:
        client.batches.list()
    assert info.value.code == "api_not_implemented"
    assert isinstance(info.value, InternalServerError)


def test_dashscope_flat_shape_with_body_request_id():
    client = client_answering(
        401,
        json={"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "ds-req-9"},
    )
    with pytest.raises(AuthenticationError) as info:
        client.files.list()
    assert (info.value.message, info.value.code, info.value.request_id) == (
        "Invalid API-key provided.", "InvalidApiKey", "ds-req-9",
    )


def test_request_id_alternative_headers():
    client = client_answering(500, json={"message": "boom"}, headers={"x-dashscope-request-id": "ds-77"})
    with pytest.raises(InternalServerError) as info:
        client.batches.list()
    assert info.value.request_id == "ds-77"
    client = client_answering(500, json={"message": "boom"}, headers={"request-id": "rid-5"})
    with pytest.raises(InternalServerError) as info:
        client.batches.list()
    assert info.value.request_id == "rid-5"


def test_fastapi_detail_shapes():
    client = client_answering(404, json={"detail": "Not Found"})
    with pytest.raises(NotFoundError, match="^Not Found"):
        client.batches.list()
    client = client_answering(
        422, json={"detail": [{"loc": ["body", "endpoint"], "msg": "field required", "type": "missing"}]}
    )
    with pytest.raises(UnprocessableEntityError) as info:
        client.batches.create(input_file_id="f", endpoint="")
    assert info.value.message == "endpoint: field required"


def test_html_proxy_page_gives_readable_message():
    page = (
        "<html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
        "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
    )
    client = client_answering(502, text=page, headers={"content-type": "text/html"})
    with pytest.raises(InternalServerError) as info:
        client.batches.retrieve("batch_1")
    assert info.value.message == f"HTTP 502 from {BASE}/batches/batch_1: 502 Bad Gateway"
    assert str(info.value) == info.value.message  # the status is not repeated


def test_html_without_title_is_stripped_and_truncated():
    page = "<div><p>" + "Upstream &amp; proxy failed. " * 20 + "</p></div>"
    client = client_answering(504, text=page)
    with pytest.raises(InternalServerError) as info:
        client.batches.list()
    text = info.value.message.split(": ", 1)[1]
    assert text.startswith("Upstream & proxy failed. Upstream")
    assert "<" not in text and len(text) <= 201


def test_empty_error_body():
    client = client_answering(503, text="")
    with pytest.raises(InternalServerError, match=r"HTTP 503 from .*/batches \(empty response body\)"):
        client.batches.list()


def test_ok_response_that_is_not_json():
    client = client_answering(200, text="<html>login page</html>")
    with pytest.raises(APIResponseValidationError, match=r"not with a batch: an HTML page \(login page\)"):
        client.batches.retrieve("batch_1")


def test_ok_response_of_wrong_shape():
    client = client_answering(200, json={"object": "batch"})
    with pytest.raises(APIResponseValidationError) as info:
        client.batches.retrieve("batch_1")
    assert "id" in info.value.message and "not with a batch" in info.value.message


def test_gateway_200_with_success_false():
    client = client_answering(200, json={"success": False, "message": "渠道不存在"})
    with pytest.raises(APIStatusError, match="渠道不存在"):
        client.batches.list()
    raise_for_gateway_failure({"success": True, "data": []})  # no error
    with pytest.raises(APIStatusError) as info:
        raise_for_gateway_failure({"success": False, "message": "no"}, request_id="r1")
    assert info.value.request_id == "r1"


def test_connection_and_timeout_errors():
    def refuse(request):
        raise httpx.ConnectError("Connection refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    for handler, cls in ((refuse, APIConnectionError), (slow, APITimeoutError)):
        client = BatchClient(BASE, "sk-x", max_retries=0, transport=httpx.MockTransport(handler))
        with pytest.raises(cls) as info:
            client.batches.list()
        assert info.value.status is None
        assert f"{BASE}/batches" in str(info.value)
    assert issubclass(APITimeoutError, APIConnectionError)

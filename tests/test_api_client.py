"""BatchClient over httpx.MockTransport: URLs, headers, retries and the create rule, pagination, masking, debug log."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from batchctl import __version__
from batchctl.api import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BatchClient,
    ConflictError,
    InternalServerError,
    RateLimitError,
    mask_secret,
    normalize_base_url,
)
from batchctl.api.retry import retry_delay

BASE = "https://api.example.test/v1"
KEY = "sk-live-SECRETabcdef9876"


def batch_json(batch_id="batch_1", status="validating", **extra):
    return {"id": batch_id, "object": "batch", "status": status, "endpoint": "/v1/chat/completions", **extra}


class Recorder:
    """A MockTransport handler that answers from a script and remembers every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        request.read()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def make_client(handler, **kwargs) -> tuple[BatchClient, list[float]]:
    kwargs.setdefault("api_key", KEY)
    client = BatchClient(BASE, transport=httpx.MockTransport(handler), **kwargs)
    sleeps: list[float] = []
    client._sleep = sleeps.append
    client._random = lambda: 0.0
    return client, sleeps


# -- base URL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1"),
        ("https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
        ("http://localhost:3000", "http://localhost:3000/v1"),
        ("http://localhost:3000/", "http://localhost:3000/v1"),
        ("  HTTP://127.0.0.1:8765/v1//  ", "http://127.0.0.1:8765/v1"),
    ],
)
def test_normalize_base_url(given, expected):
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:3000", "ftp://x/v1", "", "https://"])
def test_normalize_base_url_rejects_non_http(bad):
    with pytest.raises(ValueError, match="http"):
        normalize_base_url(bad)


def test_requests_go_under_the_api_root():
    rec = Recorder(httpx.Response(200, json=batch_json()))
    client = BatchClient("http://localhost:3000", KEY, transport=httpx.MockTransport(rec))
    client.batches.retrieve("batch/../x")
    assert str(rec.requests[0].url) == "http://localhost:3000/v1/batches/batch%2F..%2Fx"


# -- headers -----------------------------------------------------------------------------------


def test_channel_suffix_and_user_agent_on_every_call(tmp_path):
    upload = tmp_path / "in.jsonl"
    upload.write_bytes(b'{"custom_id":"1"}\n')

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/content"):
            return httpx.Response(200, content=b"line\n")
        if path.startswith("/v1/files") and request.method == "DELETE":
            return httpx.Response(200, json={"id": "file-1", "object": "file", "deleted": True})
        if path == "/v1/files" and request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})
        if path.startswith("/v1/files"):
            return httpx.Response(200, json={"id": "file-1", "object": "file", "bytes": 18})
        if path == "/v1/batches" and request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [batch_json()], "has_more": False})
        return httpx.Response(200, json=batch_json())

    rec = Recorder(answer)
    client, _ = make_client(rec, channel=2)
    client.files.create(path=upload)
    client.files.retrieve("file-1")
    client.files.list(purpose="batch")
    b"".join(client.files.content("file-1"))
    client.files.download_to("file-1", tmp_path / "out.jsonl")
    client.files.delete("file-1")
    client.batches.create(input_file_id="file-1", endpoint="/v1/chat/completions")
    client.batches.retrieve("batch_1")
    client.batches.list()
    list(client.batches.iter())
    client.batches.cancel("batch_1")
    assert len(rec.requests) == 11
    for request in rec.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}-2"
        assert request.headers["user-agent"] == f"batchctl/{__version__}"


def test_no_key_no_authorization_header():
    rec = Recorder(httpx.Response(200, json=batch_json()))
    client = BatchClient(BASE, transport=httpx.MockTransport(rec))
    client.batches.retrieve("batch_1")
    assert "authorization" not in rec.requests[0].headers


def test_batches_create_body_and_list_params():
    rec = Recorder(httpx.Response(200, json=batch_json()))
    client, _ = make_client(rec)
    client.batches.create(input_file_id="file-1", endpoint="/v1/embeddings", metadata={"job": "nightly"})
    client.batches.create(input_file_id="file-2", endpoint="/v1/chat/completions")
    assert json.loads(rec.requests[0].content) == {
        "input_file_id": "file-1", "endpoint": "/v1/embeddings", "completion_window": "24h",
        "metadata": {"job": "nightly"},
    }
    assert "metadata" not in json.loads(rec.requests[1].content)

    rec.answers = [httpx.Response(200, json={"object": "list", "data": [], "has_more": False})]
    client.batches.list(limit=5, after="batch_9", extra_params={"ds_name": "night", "status": "completed", "x": None})
    assert dict(rec.requests[2].url.params) == {"ds_name": "night", "status": "completed", "limit": "5", "after": "batch_9"}


# -- masking -----------------------------------------------------------------------------------


def test_mask_secret():
    assert mask_secret("sk-abcdef1234") == "sk-…1234"
    assert mask_secret("short12") == "…12"
    assert mask_secret("abc") == "****"
    assert mask_secret("") == "" and mask_secret(None) == ""


def test_key_never_in_repr_log_or_exception():
    lines: list[str] = []
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}-7.", "code": "invalid_api_key"}}
    rec = Recorder(httpx.Response(401, json=echo, headers={"x-request-id": "req_1"}))
    client, _ = make_client(rec, channel=7, debug_log=lines.append)
    assert KEY not in repr(client) and mask_secret(KEY) in repr(client)
    with pytest.raises(AuthenticationError) as info:
        client.batches.list()
    log = "\n".join(lines)
    assert "SECRET" not in log and "SECRET" not in str(info.value) and "SECRET" not in repr(info.value)
    assert "SECRET" not in json.dumps(info.value.body)
    assert "Incorrect API key provided: sk-…" in str(info.value)
    assert "Incorrect API key provided: sk-…" in log
    assert "authorization" not in log.lower()


def test_debug_log_lines():
    lines: list[str] = []
    rec = Recorder(httpx.Response(200, json=batch_json(status="in_progress"), headers={"x-request-id": "req_42"}))
    client, _ = make_client(rec, debug_log=lines.append)
    client.batches.retrieve("batch_1")
    assert lines[0].startswith(f"HTTP GET {BASE}/batches/batch_1 -> 200 OK (")
    assert lines[0].endswith(" ms, request id req_42)")
    body = json.loads("\n".join(lines[1:]))
    assert body["status"] == "in_progress"
    assert all("\n" not in line for line in lines)


def test_debug_log_truncates_big_bodies_and_skips_downloads():
    lines: list[str] = []
    big = {"object": "list", "data": [batch_json(f"batch_{i}") for i in range(200)], "has_more": False}
    rec = Recorder(httpx.Response(200, json=big))
    client, _ = make_client(rec, debug_log=lines.append)
    client.batches.list()
    text = "\n".join(lines[1:])
    assert len(text) < 4200 and "more characters)" in text

    lines.clear()
    rec.answers = [httpx.Response(200, content=b'{"custom_id": "secret-output"}\n')]
    assert b"".join(client.files.content("file-1")) == b'{"custom_id": "secret-output"}\n'
    assert len(lines) == 1 and "secret-output" not in lines[0]


# -- retries -----------------------------------------------------------------------------------


def test_429_with_retry_after_ms_then_success():
    rec = Recorder(
        httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "1500"}),
        httpx.Response(200, json=batch_json()),
    )
    client, sleeps = make_client(rec)
    assert client.batches.retrieve("batch_1").id == "batch_1"
    assert sleeps == [1.5]
    assert len(rec.requests) == 2


def test_retry_after_seconds_and_http_date():
    rec = Recorder(
        httpx.Response(503, headers={"retry-after": "3"}),
        httpx.Response(503, headers={"retry-after": email.utils.formatdate(time.time() + 20, usegmt=True)}),
        httpx.Response(200, json=batch_json()),
    )
    client, sleeps = make_client(rec)
    client.batches.retrieve("batch_1")
    assert sleeps[0] == 3
    assert 18 <= sleeps[1] <= 20


def test_retry_after_out_of_range_falls_back_to_backoff():
    rec = Recorder(httpx.Response(429, headers={"retry-after": "3600"}), httpx.Response(200, json=batch_json()))
    client, sleeps = make_client(rec)
    client.batches.retrieve("batch_1")
    assert sleeps == [0.5]


def test_503_then_success_with_backoff():
    rec = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(200, json=batch_json()))
    client, sleeps = make_client(rec)
    assert client.batches.retrieve("batch_1").status == "validating"
    assert sleeps == [0.5, 1.0]


def test_gives_up_after_max_retries():
    rec = Recorder(httpx.Response(500, json={"message": "down"}))
    client, sleeps = make_client(rec, max_retries=3)
    with pytest.raises(InternalServerError, match="down"):
        client.batches.retrieve("batch_1")
    assert len(rec.requests) == 4
    assert len(sleeps) == 3


def test_backoff_is_capped_and_jittered():
    assert retry_delay(0, random=lambda: 0.0) == 0.5
    assert retry_delay(3, random=lambda: 0.0) == 4.0
    assert retry_delay(10, random=lambda: 0.0) == 8.0
    assert retry_delay(10, random=lambda: 1.0) == 6.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
def test_client_errors_are_not_retried(status):
    rec = Recorder(httpx.Response(status, json={"message": "no"}))
    client, sleeps = make_client(rec)
    with pytest.raises(Exception):
        client.batches.retrieve("batch_1")
    assert len(rec.requests) == 1 and sleeps == []


def test_409_and_408_retried_for_reads():
    rec = Recorder(httpx.Response(409), httpx.Response(408), httpx.Response(200, json=batch_json()))
    client, sleeps = make_client(rec)
    client.batches.retrieve("batch_1")
    assert len(rec.requests) == 3


def test_connection_errors_retried_for_reads():
    rec = Recorder(httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.Response(200, json=batch_json()))
    client, sleeps = make_client(rec)
    client.batches.retrieve("batch_1")
    assert len(rec.requests) == 3 and len(sleeps) == 2


def test_server_can_forbid_retry():
    rec = Recorder(httpx.Response(503, headers={"x-should-retry": "false"}), httpx.Response(200, json=batch_json()))
    client, _ = make_client(rec)
    with pytest.raises(InternalServerError):
        client.batches.retrieve("batch_1")
    assert len(rec.requests) == 1


# -- the create rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"message": "internal"}),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(504, text="gateway timeout"),
        httpx.Response(503, text="unavailable, no Retry-After"),
        httpx.Response(409, json={"message": "conflict"}),
        httpx.ReadTimeout("the server took the body and went quiet"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["500", "502", "504", "503-no-retry-after", "409", "read-timeout", "disconnected"],
)
def test_batch_create_not_resent_once_the_server_may_have_it(failure):
    rec = Recorder(failure, httpx.Response(200, json=batch_json()))
    client, sleeps = make_client(rec)
    with pytest.raises((InternalServerError, ConflictError, APIConnectionError)) as info:
        client.batches.create(input_file_id="file-1", endpoint="/v1/chat/completions")
    assert len(rec.requests) == 1
    if isinstance(info.value, APIConnectionError):
        assert "not re-sent" in str(info.value)
    assert sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("Connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.PoolTimeout("no free connection"),
        httpx.Response(429, headers={"retry-after": "2"}),
        httpx.Response(408),
        httpx.Response(503, headers={"retry-after": "2"}),
    ],
    ids=["connect-error", "connect-timeout", "pool-timeout", "429", "408", "503-retry-after"],
)
def test_batch_create_retried_when_the_server_did_not_act(failure):
    rec = Recorder(failure, httpx.Response(200, json=batch_json()))
    client, sleeps = make_client(rec)
    assert client.batches.create(input_file_id="file-1", endpoint="/v1/chat/completions").id == "batch_1"
    assert len(rec.requests) == 2 and len(sleeps) == 1


def test_file_create_not_resent_after_500_but_resent_after_connect_error(tmp_path):
    upload = tmp_path / "in.jsonl"
    upload.write_bytes(b"x" * 1000)
    rec = Recorder(httpx.Response(500), httpx.Response(200, json={"id": "file-1"}))
    client, _ = make_client(rec)
    with pytest.raises(InternalServerError):
        client.files.create(path=upload)
    assert len(rec.requests) == 1

    rec = Recorder(httpx.ConnectError("refused"), httpx.Response(200, json={"id": "file-1"}))
    client, _ = make_client(rec)
    assert client.files.create(path=upload).id == "file-1"
    assert len(rec.requests) == 2
    # The retried body was produced again from the file, whole.
    assert rec.requests[1].content.count(b"x" * 1000) == 1


def test_rate_limit_exhausted_on_create():
    rec = Recorder(httpx.Response(429, json={"error": {"message": "quota", "code": "insufficient_quota"}}))
    client, sleeps = make_client(rec, max_retries=1)
    with pytest.raises(RateLimitError) as info:
        client.batches.create(input_file_id="f", endpoint="/v1/chat/completions")
    assert info.value.code == "insufficient_quota" and len(rec.requests) == 2


def test_timeout_error_class_after_retries():
    rec = Recorder(httpx.ReadTimeout("slow"))
    client, sleeps = make_client(rec, max_retries=2)
    with pytest.raises(APITimeoutError):
        client.files.retrieve("file-1")
    assert len(rec.requests) == 3 and sleeps == [0.5, 1.0]


# -- pagination --------------------------------------------------------------------------------


def page(ids, has_more, last_id=None):
    return {
        "object": "list",
        "data": [batch_json(i) for i in ids],
        "first_id": ids[0] if ids else None,
        "last_id": last_id if last_id is not None else (ids[-1] if ids else None),
        "has_more": has_more,
    }


def test_iter_follows_three_pages():
    rec = Recorder(
        httpx.Response(200, json=page(["b1", "b2"], True)),
        httpx.Response(200, json=page(["b3", "b4"], True)),
        httpx.Response(200, json=page(["b5"], False)),
    )
    client, _ = make_client(rec)
    ids = [b.id for b in client.batches.iter(limit=2, extra_params={"ds_name": "n"})]
    assert ids == ["b1", "b2", "b3", "b4", "b5"]
    afters = [r.url.params.get("after") for r in rec.requests]
    assert afters == [None, "b2", "b4"]
    assert all(r.url.params["limit"] == "2" and r.url.params["ds_name"] == "n" for r in rec.requests)


def test_iter_stops_on_empty_page_even_if_has_more():
    rec = Recorder(httpx.Response(200, json=page(["b1"], True)), httpx.Response(200, json=page([], True)))
    client, _ = make_client(rec)
    assert [b.id for b in client.batches.iter()] == ["b1"]
    assert len(rec.requests) == 2


def test_iter_stops_when_last_id_repeats():
    # A server that ignores `after` returns the same page forever.
    rec = Recorder(httpx.Response(200, json=page(["b1", "b2"], True)))
    client, _ = make_client(rec)
    assert [b.id for b in client.batches.iter()] == ["b1", "b2", "b1", "b2"]
    assert len(rec.requests) == 2


def test_iter_uses_last_item_when_last_id_missing():
    first = page(["b1"], True)
    first["last_id"] = None
    rec = Recorder(httpx.Response(200, json=first), httpx.Response(200, json=page(["b2"], False)))
    client, _ = make_client(rec)
    assert [b.id for b in client.batches.iter()] == ["b1", "b2"]
    assert rec.requests[1].url.params["after"] == "b1"


def test_resources_are_lazy_and_cached():
    client, _ = make_client(Recorder(httpx.Response(200)))
    assert "files" not in vars(client)
    assert client.files is client.files and client.batches is client.batches
    with client:
        pass


def test_refused_create_does_not_claim_the_server_may_have_it():
    rec = Recorder(*[httpx.ConnectError("Connection refused")] * 3)
    client, _ = make_client(rec, max_retries=2)
    with pytest.raises(APIConnectionError) as info:
        client.batches.create(input_file_id="file-1", endpoint="/v1/chat/completions")
    assert len(rec.requests) == 3
    assert "not re-sent" not in str(info.value) and "could not reach" in str(info.value)


def test_certificates_are_loaded_only_when_a_tls_connection_needs_them(monkeypatch):
    """An http:// server (the local one) never pays for loading the CA bundle; https gets httpx's own
    verified context (certificate and host name checked), the same as `verify=True`."""
    import ssl

    built = []
    real = httpx.create_ssl_context
    monkeypatch.setattr(httpx, "create_ssl_context", lambda *a, **k: built.append(1) or real(*a, **k))
    client = BatchClient("http://127.0.0.1:1/v1", KEY)
    assert built == []
    context = client._http._transport._pool._ssl_context
    context.set_alpn_protocols(["http/1.1"])  # what httpcore does before a TLS handshake
    assert built == [1]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    client.close()


def test_importing_the_api_layer_leaves_out_httpx_command_line_tool():
    import subprocess
    import sys

    code = "import sys, batchctl.api, httpx; print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('click', 'rich', 'pygments')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The local server's parts in-process (echo model, rate limiter, request checks), its upstream mode
end to end, and the background autostart (the upstream executor and group commits: test_server_upstream.py)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from batchctl.errors import BatchctlError
from batchctl.server import autostart
from batchctl.server.batches import check_create_batch
from batchctl.server.config import ServerConfig
from batchctl.server.echo import EchoExecutor, echo_should_fail, echo_vector
from batchctl.server.limits import RateLimiter
from batchctl.server.wire import OpenAIErrorResponse
from server_fixture import app_in_thread, free_port
from test_server_api import chat_lines, create_batch, upload, wait_batch, write_jsonl

CHAT = "/v1/chat/completions"


def run(coro):
    return asyncio.run(coro)


def test_echo_failures_are_deterministic_and_near_the_rate():
    ids = [f"id-{i}" for i in range(5000)]
    failing = [i for i in ids if echo_should_fail(i, 0.1)]
    assert 400 < len(failing) < 600
    assert failing == [i for i in ids if echo_should_fail(i, 0.1)]
    assert not any(echo_should_fail(i, 0.0) for i in ids) and all(echo_should_fail(i, 1.0) for i in ids)


def test_echo_chat_embeddings_and_limits():
    echo = EchoExecutor(ServerConfig())
    body = {"model": "qwen-plus", "messages": [{"role": "system", "content": "be brief"},
                                               {"role": "user", "content": [{"type": "text", "text": "hi there"}]}]}
    out = run(echo.execute(CHAT, body, "a"))
    assert out.ok and out.body["model"] == "qwen-plus"
    assert out.body["choices"][0]["message"]["content"] == "echo: hi there"
    short = run(echo.execute(CHAT, {**body, "max_tokens": 1}, "a")).body
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 1
    emb = run(echo.execute("/v1/embeddings", {"model": "e", "input": "x", "dimensions": 8}, "b")).body
    assert len(emb["data"]) == 1 and emb["data"][0]["embedding"] == echo_vector("x", 8)
    assert abs(sum(v * v for v in echo_vector("x", 8)) - 1) < 1e-4
    b64 = run(echo.execute("/v1/embeddings", {"model": "e", "input": ["x"], "encoding_format": "base64"}, "c")).body
    assert isinstance(b64["data"][0]["embedding"], str)
    assert run(echo.execute("/v1/unknown", {}, "d")).status_code == 404


def test_rate_limiter_spaces_requests():
    """Five starts at 1,200 rpm are 50 ms apart, evenly; measured on an injected clock, not waited for."""
    now = [100.0]
    starts: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    async def five() -> None:
        limiter = RateLimiter(rpm=1200, clock=lambda: now[0], sleep=fake_sleep)
        for _ in range(5):
            await limiter.wait()
            starts.append(now[0])

    run(five())
    assert [round(t - 100.0, 6) for t in starts] == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert RateLimiter(rpm=None).interval == 0.0  # no cap: never waits


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"endpoint": CHAT, "completion_window": "24h"}, "input_file_id"),
        ({"input_file_id": 3, "endpoint": CHAT, "completion_window": "24h"}, "input_file_id"),
        ({"input_file_id": "f", "endpoint": "/v1/images/generations", "completion_window": "24h"}, "endpoint"),
        ({"input_file_id": "f", "endpoint": CHAT, "completion_window": "0s"}, "completion_window"),
        ({"input_file_id": "f", "endpoint": CHAT, "completion_window": "24h", "metadata": {"a": 1}}, "metadata"),
    ],
)
def test_check_create_batch_rejects(body, param):
    with pytest.raises(OpenAIErrorResponse) as err:
        check_create_batch(body)
    assert err.value.status == 400 and err.value.param == param


def test_check_create_batch_accepts_short_windows():
    assert check_create_batch({"input_file_id": "f", "endpoint": CHAT, "completion_window": "30s"})[3] == 30.0
    assert check_create_batch({"input_file_id": "f", "endpoint": CHAT, "completion_window": "24h"})[3] == 86400.0


# -- upstream mode, end to end -----------------------------------------------------------------


@pytest.fixture
def stub_upstream():
    """A tiny OpenAI-compatible chat server in a thread; `fail_first` 503s per custom_id before succeeding."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: dict[str, int] = {}

    async def chat(request: Request):
        body = await request.json()
        text = body["messages"][-1]["content"]
        seen[text] = seen.get(text, 0) + 1
        if text.endswith("3") and seen[text] == 1:
            return JSONResponse({"error": {"message": "busy"}}, status_code=503, headers={"retry-after": "0"})
        if text.endswith("7"):
            return JSONResponse({"error": {"message": "no", "type": "invalid_request_error"}}, status_code=400)
        return JSONResponse({"object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text.upper()},
                                          "finish_reason": "stop"}]})

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "up-model", "object": "model"}]})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])
    with app_in_thread(app) as root:
        yield f"{root}/v1", seen


@pytest.mark.e2e
def test_upstream_mode_end_to_end(start_server, stub_upstream, tmp_path):
    url, seen = stub_upstream
    server = start_server(extra_args=["--upstream", url, "--concurrency", "4"])
    with httpx.Client(base_url=server.base_url) as http:
        assert [m["id"] for m in http.get("/models").json()["data"]] == ["echo", "up-model"]
        rows = chat_lines(20)
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", rows))
        done = wait_batch(http, create_batch(http, file["id"])["id"], ("completed",))
        output = [json.loads(x) for x in http.get(f"/files/{done['output_file_id']}/content").text.splitlines()]
        errors = [json.loads(x) for x in http.get(f"/files/{done['error_file_id']}/content").text.splitlines()]
    assert {o["custom_id"] for o in output} == {f"req-{i}" for i in range(20) if i % 10 != 7}
    assert {e["custom_id"] for e in errors} == {"req-7", "req-17"}
    assert errors[0]["response"]["status_code"] == 400 and errors[0]["error"] is None
    assert seen["question 3"] == 2  # retried once after the 503
    assert output[0]["response"]["body"]["choices"][0]["message"]["content"] == "QUESTION 0"


@pytest.mark.e2e
def test_unreachable_upstream_gives_error_lines(start_server, tmp_path):
    server = start_server(extra_args=["--upstream", f"http://127.0.0.1:{free_port()}/v1", "--max-retries", "0"])
    with httpx.Client(base_url=server.base_url) as http:
        file = upload(http, write_jsonl(tmp_path / "in.jsonl", chat_lines(5)))
        done = wait_batch(http, create_batch(http, file["id"])["id"], ("completed",))
        errors = [json.loads(x) for x in http.get(f"/files/{done['error_file_id']}/content").text.splitlines()]
    assert done["output_file_id"] is None and done["request_counts"]["failed"] == 5
    assert {e["error"]["code"] for e in errors} == {"upstream_unreachable"} and errors[0]["response"] is None


# -- background autostart ----------------------------------------------------------------------


@pytest.mark.e2e
def test_autostart_status_and_stop(tmp_path):
    data_dir = tmp_path / "data"
    url = f"http://127.0.0.1:{free_port()}/v1"
    said: list[str] = []
    try:
        assert autostart.ensure_local_server(url, data_dir, said.append) is True
        assert len(said) == 1 and "Started the local batch server on http://127.0.0.1:" in said[0]
        status = autostart.server_status(data_dir)
        assert status is not None and status["alive"] and status["url"] == url
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["pid"] == status["pid"]
        assert (data_dir / "server" / "server.db").exists()
        assert autostart.ensure_local_server(url, data_dir, said.append) is False  # already up
        assert len(said) == 1
    finally:
        stopped = autostart.stop_background_server(data_dir)
    assert stopped is True
    assert autostart.server_status(data_dir) is None and not (data_dir / "server.pid").exists()
    assert autostart.stop_background_server(data_dir) is False


def test_autostart_failure_points_at_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(autostart, "START_TIMEOUT", 3.0)
    blocker = Path(tmp_path / "data")
    blocker.mkdir()
    (blocker / "server").write_text("a file where the state dir should be")  # the server cannot start
    with pytest.raises(BatchctlError) as err:
        autostart.ensure_local_server(f"http://127.0.0.1:{free_port()}/v1", blocker, lambda s: None)
    assert "server.log" in (err.value.hint or "")
    assert not (blocker / "server.pid").exists()


def test_an_internal_error_fails_the_batch_instead_of_hanging(tmp_path):
    from batchctl.server.runner import BatchRunner
    from batchctl.server.store import Store

    async def go() -> dict:
        store = Store(tmp_path / "state")
        path = write_jsonl(store.files_dir / "file-in", chat_lines(5))
        store.add_file("file-in", path=path, filename="in.jsonl", purpose="batch")
        batch = store.create_batch(endpoint=CHAT, input_file_id="file-in", completion_window="24h",
                                   window_seconds=86400, metadata=None)  # fmt: skip

        def disk_full(*args, **kwargs):
            raise OSError(28, "No space left on device")

        store.add_results = disk_full  # type: ignore[method-assign]
        runner = BatchRunner(store, EchoExecutor(ServerConfig()))
        await runner._run(batch["id"])
        return store.get_batch(batch["id"])

    batch = run(go())
    assert batch["status"] == "failed" and batch["failed_at"]
    assert "No space left on device" in json.loads(batch["errors"])["data"][0]["message"]


# -- ServerConfig ------------------------------------------------------------------------------


def test_server_config_round_trips_through_argv_and_env(monkeypatch):
    config = ServerConfig(
        host="0.0.0.0", port=9999, data_dir=Path("/srv/batches"), api_key="sk-server", latency=0.5, failure_rate=0.25,
        upstream="http://up.test/v1", upstream_key="sk-up", concurrency=3, max_retries=1, rpm=60, timeout=5.0,
        log_level="info",
    )  # fmt: skip
    argv = config.to_argv()
    # Secrets travel in the environment, never on a command line that `ps` shows.
    assert not any("sk-" in arg for arg in argv)
    assert config.secret_env() == {"BATCHCTL_SERVER_API_KEY": "sk-server", "BATCHCTL_UPSTREAM_KEY": "sk-up"}
    for name, value in config.secret_env().items():
        monkeypatch.setenv(name, value)
    assert ServerConfig.from_argv(argv) == config


def test_an_upstream_with_a_password_travels_as_a_secret(monkeypatch):
    """`--upstream https://user:pw@gw/v1` is handed to a background server in its environment, not on
    the command line `ps` shows; an upstream without one stays on the command line."""
    config = ServerConfig(upstream="https://ana:pw-secret@gateway.test/v1", api_key="sk-clients")
    argv = config.to_argv()
    assert not any("pw-secret" in arg or "gateway.test" in arg for arg in argv) and "--upstream" not in argv
    assert config.secret_env() == {"BATCHCTL_UPSTREAM": "https://ana:pw-secret@gateway.test/v1", "BATCHCTL_SERVER_API_KEY": "sk-clients"}
    for name, value in config.secret_env().items():
        monkeypatch.setenv(name, value)
    assert ServerConfig.from_argv(argv) == config
    plain = ServerConfig(upstream="http://127.0.0.1:8000/v1")
    argv = plain.to_argv()
    assert argv[argv.index("--upstream") + 1] == "http://127.0.0.1:8000/v1" and plain.secret_env() == {}


def test_server_config_defaults_and_checks(monkeypatch):
    monkeypatch.delenv("BATCHCTL_SERVER_API_KEY", raising=False)
    monkeypatch.delenv("BATCHCTL_UPSTREAM_KEY", raising=False)
    monkeypatch.delenv("BATCHCTL_UPSTREAM", raising=False)
    assert ServerConfig.from_argv([]) == ServerConfig()
    assert ServerConfig().secret_env() == {}
    assert ServerConfig(data_dir=Path("/x")).state_dir() == Path("/x")
    for bad in (["--failure-rate", "1.5"], ["--concurrency", "0"], ["--log-level", "loud"]):
        with pytest.raises(SystemExit):
            ServerConfig.from_argv(bad)


# -- multipart uploads -------------------------------------------------------------------------


class FakeUploadRequest:
    """What `receive_upload` reads of a Starlette request: the content type and the body's chunks."""

    def __init__(self, *chunks: bytes | Exception) -> None:
        self.headers = {"content-type": "multipart/form-data; boundary=b"}
        self.chunks = chunks

    async def stream(self):
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk


def form_part(disposition: str, content: bytes) -> bytes:
    return b"--b\r\nContent-Disposition: form-data" + disposition.encode() + b"\r\n\r\n" + content + b"\r\n"


FILE_PART = form_part('; name="file"; filename="in.jsonl"', b'{"custom_id": "a"}\n')


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ((FILE_PART + form_part("", b"x") + b"--b--\r\n",), 'no Content-Disposition "name"'),
        ((FILE_PART + form_part('; name="purpose"', b"x" * 70_000),), "too large"),
        ((FILE_PART[:-10], ConnectionResetError("client went away")), "Could not read the multipart body"),
    ],
)
def test_a_broken_upload_leaves_no_file_behind(tmp_path, chunks, message):
    from batchctl.server.uploads import UploadError, receive_upload

    with pytest.raises(UploadError, match=message):
        run(receive_upload(FakeUploadRequest(*chunks), tmp_path, "file-x.upload"))
    assert list(tmp_path.iterdir()) == []


def test_an_upload_keeps_its_fields_and_file(tmp_path):
    from batchctl.server.uploads import receive_upload

    body = FILE_PART + form_part('; name="purpose"', b"batch") + b"--b--\r\n"
    upload = run(receive_upload(FakeUploadRequest(body[:50], body[50:]), tmp_path, "file-x.upload"))
    assert upload.fields == {"purpose": "batch"} and upload.filename == "in.jsonl"
    assert upload.file_path == tmp_path / "file-x.upload"
    assert upload.file_path.read_bytes() == b'{"custom_id": "a"}\n'


def test_a_background_server_never_forwards_to_an_upstream_left_in_the_shell(monkeypatch):
    """BATCHCTL_UPSTREAM in the user's environment must not turn the local echo server into a forwarder;
    an upstream the config names (with a password: a secret) is handed over in the environment."""
    from batchctl.server.autostart import child_env

    monkeypatch.setenv("BATCHCTL_UPSTREAM", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("BATCHCTL_API_KEY", "sk-client-key")
    echo = child_env(ServerConfig())
    assert "BATCHCTL_UPSTREAM" not in echo and "BATCHCTL_API_KEY" not in echo
    for name in list(os.environ):  # the child's environment, as it will see it
        monkeypatch.delenv(name)
    for name, value in echo.items():
        monkeypatch.setenv(name, value)
    assert ServerConfig.from_argv(ServerConfig().to_argv()).upstream is None
    forwarding = child_env(ServerConfig(upstream="https://ana:pw@gateway.test/v1"))
    assert forwarding["BATCHCTL_UPSTREAM"] == "https://ana:pw@gateway.test/v1"

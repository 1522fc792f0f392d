"""File upload streams from disk; downloads land atomically; and both work over real sockets."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batchctl.api import APIConnectionError, BatchClient, NotFoundError
from batchctl.api import _multipart

BASE = "https://api.example.test/v1"


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart()
    return {
        part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    }


def make_client(handler, **kwargs) -> BatchClient:
    client = BatchClient(BASE, "sk-test-abcdef123456", transport=httpx.MockTransport(handler), **kwargs)
    client._sleep = lambda seconds: None
    return client


def test_upload_body_is_streamed_in_chunks_and_parses_back(tmp_path):
    data = os.urandom(3_000_000) + b"\r\n--not-a-boundary\r\n"
    source = tmp_path / "requests.jsonl"
    source.write_bytes(data)
    seen: dict = {}

    class ChunkRecordingTransport(httpx.BaseTransport):
        # Not MockTransport: that one reads the whole request body before the handler sees it.
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            assert not isinstance(request.stream, httpx.ByteStream)  # not one bytes object built in memory
            seen.update(chunks=list(request.stream), headers=request.headers)
            return httpx.Response(200, json={"id": "file-abc", "object": "file", "bytes": len(data), "purpose": "batch"})

    progress: list[tuple[int, int]] = []
    client = BatchClient(BASE, "sk-test-abcdef123456", transport=ChunkRecordingTransport())
    file = client.files.create(path=source, progress=lambda sent, total: progress.append((sent, total)))

    assert file.id == "file-abc" and file.bytes == len(data)
    chunks: list[bytes] = seen["chunks"]
    body = b"".join(chunks)
    assert len(chunks) >= 3_000_000 // _multipart.CHUNK_SIZE
    assert max(len(c) for c in chunks) <= _multipart.CHUNK_SIZE
    assert int(seen["headers"]["content-length"]) == len(body)
    assert "transfer-encoding" not in seen["headers"]
    parts = parse_multipart(seen["headers"]["content-type"], body)
    assert parts["purpose"] == (None, b"batch")
    assert parts["file"] == ("requests.jsonl", data)
    assert progress[0] == (0, len(data)) and progress[-1] == (len(data), len(data))
    assert [s for s, _ in progress] == sorted(s for s, _ in progress)


def test_upload_of_missing_file_fails_before_any_request(tmp_path):
    calls = []
    client = make_client(lambda request: calls.append(request) or httpx.Response(200))
    with pytest.raises(FileNotFoundError):
        client.files.create(path=tmp_path / "nope.jsonl")
    assert calls == []


def chunks_then(chunks: list[bytes], error: Exception | None) -> Iterator[bytes]:
    yield from chunks
    if error is not None:
        raise error


def test_content_to_path_is_atomic_on_mid_stream_error(tmp_path):
    target = tmp_path / "out.jsonl"

    def handler(request):
        return httpx.Response(
            200, headers={"content-length": "999"}, content=chunks_then([b"a" * 100, b"b" * 100], httpx.ReadError("reset"))
        )

    client = make_client(handler, max_retries=0)
    with pytest.raises(APIConnectionError):
        client.files.download_to("file-out", target)
    assert list(tmp_path.iterdir()) == []


def test_content_error_keeps_existing_file_untouched(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"previous results\n")
    client = make_client(lambda request: httpx.Response(404, json={"error": {"message": "No such file"}}))
    with pytest.raises(NotFoundError):
        client.files.download_to("file-gone", target)
    assert target.read_bytes() == b"previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_content_interrupted_by_the_user_leaves_no_part(tmp_path):
    def handler(request):
        return httpx.Response(200, content=chunks_then([b"x" * 10], KeyboardInterrupt()))

    client = make_client(handler)
    with pytest.raises(KeyboardInterrupt):
        client.files.download_to("file-out", tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_content_restarts_after_a_dropped_connection(tmp_path):
    answers = [
        lambda: chunks_then([b"partial"], httpx.RemoteProtocolError("peer closed connection")),
        lambda: chunks_then([b"line 1\n", b"line 2\n"], None),
    ]
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=answers[len(requests) - 1]())

    target = tmp_path / "out.jsonl"
    progress = []
    client = make_client(handler)
    assert client.files.download_to("file-out", target, progress=lambda r, t: progress.append(r)) == 14
    assert target.read_bytes() == b"line 1\nline 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    assert len(requests) == 2 and progress[-1] == 14


def test_content_chunks_go_to_on_chunk_as_written_each_attempt_after_its_progress_0(tmp_path):
    answers = [[b"line 1\nli"], [b"line 1\nli", b"ne 2\n"]]  # the first attempt cut by a dropped connection
    requests = []

    def handler(request):
        requests.append(request)
        error = httpx.RemoteProtocolError("peer closed connection") if len(requests) == 1 else None
        return httpx.Response(200, content=chunks_then(answers[len(requests) - 1], error))

    target = tmp_path / "out.jsonl"
    calls: list[object] = []

    def on_chunk(chunk: bytes) -> None:
        calls.append(chunk)
        assert Path(f"{target}.part").exists() and not target.exists()

    client = make_client(handler)
    assert client.files.download_to("file-out", target, progress=lambda r, t: calls.append(r), on_chunk=on_chunk) == 14
    assert calls == [0, b"line 1\nli", 9, 0, b"line 1\nli", 9, b"ne 2\n", 14]
    assert target.read_bytes() == b"line 1\nline 2\n"


def test_content_refused_by_on_chunk_leaves_no_part_and_is_not_retried(tmp_path):
    requests = []

    def handler(request):
        requests.append(request)
        return httpx.Response(200, content=chunks_then([b"<html>", b"</html>"], None))

    def on_chunk(chunk: bytes) -> None:
        raise ValueError("not results")

    client = make_client(handler)
    with pytest.raises(ValueError, match="not results"):
        client.files.download_to("file-out", tmp_path / "out.jsonl", on_chunk=on_chunk)
    assert list(tmp_path.iterdir()) == [] and len(requests) == 1


def test_content_without_path_is_an_iterator_of_chunks():
    client = make_client(
        lambda request: httpx.Response(200, headers={"content-length": "12"}, content=chunks_then([b"abc\n", b"defghijk"], None))
    )
    stream = client.files.content("file-out")
    assert stream.total == 12
    assert list(stream) == [b"abc\n", b"defghijk"]


def test_content_iterator_wraps_mid_stream_errors():
    client = make_client(lambda request: httpx.Response(200, content=chunks_then([b"abc"], httpx.ReadError("reset"))))
    stream = client.files.content("file-out")
    assert next(stream) == b"abc"
    with pytest.raises(APIConnectionError, match="reset"):
        next(stream)


# -- a real HTTP server on 127.0.0.1 -----------------------------------------------------------


class TinyFilesAPI(http.server.BaseHTTPRequestHandler):
    """Just enough of /v1/files for a round trip: multipart upload in, raw bytes out."""

    store: dict[str, bytes] = {}
    authorizations: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", "req_tiny")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.authorizations.append(self.headers["Authorization"])
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        parts = parse_multipart(self.headers["Content-Type"], body)
        filename, data = parts["file"]
        file_id = f"file-{len(self.store) + 1}"
        self.store[file_id] = data
        self._json(200, {"id": file_id, "object": "file", "bytes": len(data), "filename": filename,
                         "purpose": parts["purpose"][1].decode(), "created_at": 1722503223})

    def do_GET(self):
        self.authorizations.append(self.headers["Authorization"])
        file_id = self.path.split("/")[3]
        data = self.store.get(file_id)
        if data is None:
            return self._json(404, {"error": {"message": f"No such file: {file_id}", "code": "not_found"}})
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for start in range(0, len(data), 100_000):
            self.wfile.write(data[start : start + 100_000])


@pytest.fixture
def tiny_server():
    TinyFilesAPI.store = {}
    TinyFilesAPI.authorizations = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TinyFilesAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_round_trip_over_real_sockets(tiny_server, tmp_path):
    data = b"".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": {"n": i}}).encode() + b"\n"
        for i in range(40_000)
    )
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    with BatchClient(tiny_server, "sk-real-socket-key1", channel="3", timeout=10) as client:
        uploaded = client.files.create(path=source)
        assert (uploaded.bytes, uploaded.filename, uploaded.purpose) == (len(data), "in.jsonl", "batch")
        target = tmp_path / "out" / "copy.jsonl"
        target.parent.mkdir()
        assert client.files.download_to(uploaded.id, target) == len(data)
        assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
        assert not Path(str(target) + ".part").exists()
        with pytest.raises(NotFoundError) as info:
            client.files.download_to("file-404", tmp_path / "missing.jsonl")
        assert info.value.request_id == "req_tiny"
        assert not (tmp_path / "missing.jsonl").exists() and not (tmp_path / "missing.jsonl.part").exists()
    assert TinyFilesAPI.authorizations == ["Bearer sk-real-socket-key1-3"] * 3

"""Stand-ins for what `batchctl serve --upstream` forwards to, each a real HTTP server on 127.0.0.1 in a thread.

- `ChatUpstream`: a model server or gateway that has only `POST /v1/chat/completions` (no /v1/files,
  no /v1/batches: 404, like vLLM, SGLang, or a New-API gateway that relays neither). It answers
  `reply: <prompt>`, records every call (path, Authorization header, prompt), and can fail calls by a
  rule given to it (`fail(prompt, attempt) -> (status, headers) | None`).
- `Router`: a cluster's router (vLLM's router, a Kubernetes Service, LiteLLM) in front of replicas:
  forwards each request, headers and body as they are, to the next replica in turn.

    with ChatUpstream() as upstream:
        server = start_server(extra_args=["--upstream", upstream.base_url])
        ...
        assert {c.authorization for c in upstream.calls} == {"Bearer sk-gw-2"}
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"
FailRule = Callable[[str, int], "tuple[int, dict[str, str]] | None"]


@dataclass(frozen=True)
class Call:
    path: str
    authorization: str | None
    prompt: str | None
    status: int


class _Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self):  # type: ignore[override]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up mid-answer is not the test's concern


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the server's client pools connections

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _answer(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class ChatUpstream(_Stub):
    """Only `POST /v1/chat/completions`; everything else is 404."""

    def __init__(self, name: str = "upstream", fail: FailRule | None = None) -> None:
        super().__init__(_ChatHandler)
        self.name = name
        self.fail = fail
        self.calls: list[Call] = []
        self.attempts: Counter[str] = Counter()

    @property
    def prompts(self) -> Counter[str]:
        """How often each prompt was answered 200."""
        return Counter(c.prompt for c in self.calls if c.status == 200 and c.prompt is not None)


class _ChatHandler(_Handler):
    server: ChatUpstream

    def do_GET(self) -> None:  # noqa: N802
        self._refuse()

    def do_POST(self) -> None:  # noqa: N802
        raw = self._body()
        if self.path != CHAT_PATH:
            self._refuse()
            return
        body = json.loads(raw)
        prompt = body["messages"][-1]["content"]
        stub = self.server
        with stub.lock:
            stub.attempts[prompt] += 1
            attempt = stub.attempts[prompt]
        failure = stub.fail(prompt, attempt) if stub.fail else None
        status, headers = failure or (200, {"x-request-id": f"req_{stub.name}_{attempt}"})
        with stub.lock:
            stub.calls.append(Call(self.path, self.headers.get("authorization"), prompt, status))
        if status != 200:
            self._answer(status, json.dumps({"error": {"message": f"stub says {status}", "type": "server_error"}}).encode(),
                         headers)  # fmt: skip
            return
        answer = {
            "id": f"chatcmpl-{stub.name}", "object": "chat.completion", "created": 0, "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"reply: {prompt}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            "served_by": stub.name,
        }  # fmt: skip
        self._answer(200, json.dumps(answer).encode(), headers)

    def _refuse(self) -> None:
        with self.server.lock:
            self.server.calls.append(Call(self.path, self.headers.get("authorization"), None, 404))
        self._answer(404, json.dumps({"error": {"message": f"Invalid URL ({self.command} {self.path})"}}).encode())


class Router(_Stub):
    """Round-robin over `replicas` (base URLs with /v1), passing method, path, headers and body through."""

    def __init__(self, replicas: list[str]) -> None:
        super().__init__(_RouterHandler)
        self.targets = [r.removesuffix("/v1").removeprefix("http://") for r in replicas]
        self._next = itertools.cycle(range(len(self.targets)))
        self.forwarded: Counter[str] = Counter()

    def pick(self) -> str:
        with self.lock:
            target = self.targets[next(self._next)]
            self.forwarded[target] += 1
        return target


class _RouterHandler(_Handler):
    server: Router

    def do_POST(self) -> None:  # noqa: N802
        raw = self._body()
        conn = http.client.HTTPConnection(self.server.pick(), timeout=30)
        try:
            headers: dict[str, Any] = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request("POST", self.path, body=raw, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            passed = {k: v for k, v in response.getheaders() if k.lower() in ("retry-after", "x-request-id")}
            self._answer(response.status, payload, passed)
        finally:
            conn.close()

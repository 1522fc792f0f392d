"""Fault injection for the local server (`batchctl serve --faults FILE`, or `BATCHCTL_SERVE_FAULTS`).

Off by default. The rule file is JSON: a list of rules, or `{"rules": [...]}`. A rule matches a method
(default any) and a path glob (`fnmatch`, e.g. `/v1/batches/*`), applies to the first `times` matching
requests (default: all of them) and says what goes wrong:

    {"method": "POST", "path": "/v1/batches", "times": 1,
     "delay": 0.2,                       # seconds before anything else happens
     "status": 503, "retry_after": 1, "retry_after_ms": 50, "message": "overloaded",
     "after": true,                      # run the real handler first, then answer the fault
     "abort": true,                      # drop the connection without an answer
     "reset_after_request_bytes": 1000,  # drop it once this much of the request body came in
     "reset_after_response_bytes": 10,   # drop it after this much of the response body went out
     "truncate": 20,                     # answer only the first N bytes of the body (a complete message)
     "html": true,                       # answer an HTML page instead of the body, same status
     "drop": ["id"], "set": {"status": "weird"}}   # mutate the JSON body (and each item of its `data`)

`docs/reliability.md` describes the format with examples. The middleware is the outermost layer of
the app (see `wrap`), so an abort closes the socket as a crashed server would.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("batchctl.server")

HTML_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
KNOWN_KEYS = {
    "method", "path", "times", "delay", "status", "retry_after", "retry_after_ms", "message", "after", "abort",
    "reset_after_request_bytes", "reset_after_response_bytes", "truncate", "html", "drop", "set",
}  # fmt: skip


# The next step under an error about the rule file: what one is, in the words of docs/reliability.md.
RULES_HINT = 'A faults file is JSON: a list of rules, or {"rules": [...]}; docs/reliability.md ("Fault injection") lists their keys.'


class FaultRuleError(ValueError):
    """The fault rule file is not what `load_rules` expects (`RULES_HINT` says what it should be)."""


@dataclass
class Rule:
    spec: dict[str, Any]
    method: str = "*"
    path: str = "*"
    times: int | None = None
    used: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path)


def load_rules(source: str | Path | list | dict) -> list[Rule]:
    """Rules from a JSON file path (or already parsed JSON); FaultRuleError says what is wrong."""
    if isinstance(source, (str, Path)):
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # an OSError in its words, without the errno and the repeated path
            raise FaultRuleError(f"cannot read the fault rules {source}: {getattr(exc, 'strerror', None) or exc}") from exc
    items = source.get("rules") if isinstance(source, dict) else source
    if not isinstance(items, list):
        raise FaultRuleError('fault rules must be a JSON list of rules, or {"rules": [...]}')
    rules = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) - KNOWN_KEYS:
            unknown = sorted(set(item) - KNOWN_KEYS) if isinstance(item, dict) else "not an object"
            raise FaultRuleError(f"fault rule {i}: unknown keys {unknown}")
        rules.append(Rule(item, str(item.get("method", "*")).upper(), item.get("path", "*"), item.get("times")))
    return rules


def _abort(send: Send) -> None:
    """Close the client's socket at once (uvicorn's transport behind its `send`)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort()


class _Dropped(Exception):
    """The fault dropped the connection; nothing more is sent."""


class FaultInjector:
    """ASGI middleware applying the first matching rule to each request."""

    def __init__(self, app: ASGIApp, rules: list[Rule]) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = None
        if scope["type"] == "http":
            if scope["path"] not in ("/health", "/v1/health"):  # the liveness probe is never faulted
                rule = next((r for r in self.rules if r.matches(scope["method"], scope["path"])), None)
        if rule is None:
            await self.app(scope, receive, send)
            return
        rule.used += 1
        spec = rule.spec
        log.warning("fault %s on %s %s", json.dumps(spec), scope["method"], scope["path"])
        try:
            await self._apply(spec, scope, receive, send)
        except _Dropped:
            return

    async def _apply(self, spec: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
        if spec.get("delay"):
            await asyncio.sleep(float(spec["delay"]))
        if spec.get("abort") and not spec.get("after"):
            _abort(send)
            raise _Dropped
        receive = self._limited_receive(spec, receive, send)
        runs_handler = spec.get("after") or "status" not in spec
        status, headers, body = 200, [], b""
        if runs_handler:
            status, headers, body = await self._run_app(scope, receive)
        if spec.get("abort"):
            _abort(send)
            raise _Dropped
        if "status" in spec:
            status, headers, body = self._error(spec)
        body, headers = self._mutate(spec, body, headers)
        await self._send(spec, send, status, headers, body)

    def _limited_receive(self, spec: dict[str, Any], receive: Receive, send: Send) -> Receive:
        limit = spec.get("reset_after_request_bytes")
        if limit is None:
            return receive
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen >= limit:
                _abort(send)
                raise _Dropped
            return message

        return limited

    async def _run_app(self, scope: Scope, receive: Receive) -> tuple[int, list, bytes]:
        answer: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.app(scope, receive, capture)
        return answer["status"], answer["headers"], bytes(answer["body"])

    @staticmethod
    def _error(spec: dict[str, Any]) -> tuple[int, list, bytes]:
        status = int(spec["status"])
        message = spec.get("message") or f"Injected fault: HTTP {status}."
        kind = "server_error" if status >= 500 else "invalid_request_error"
        body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}}).encode()
        headers = [(b"content-type", b"application/json")]
        if spec.get("retry_after") is not None:
            headers.append((b"retry-after", str(spec["retry_after"]).encode()))
        if spec.get("retry_after_ms") is not None:
            headers.append((b"retry-after-ms", str(spec["retry_after_ms"]).encode()))
        return status, headers, body

    @staticmethod
    def _mutate(spec: dict[str, Any], body: bytes, headers: list) -> tuple[bytes, list]:
        if spec.get("drop") or spec.get("set"):
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                items = [data, *(d for d in data.get("data") or [] if isinstance(d, dict))]
                for item in items:
                    for name in spec.get("drop") or ():
                        item.pop(name, None)
                    item.update(spec.get("set") or {})
                body = json.dumps(data).encode()
        if spec.get("html"):
            body = HTML_PAGE
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            headers.append((b"content-type", b"text/html; charset=utf-8"))
        if spec.get("truncate") is not None:
            body = body[: int(spec["truncate"])]
        return body, headers

    @staticmethod
    async def _send(spec: dict[str, Any], send: Send, status: int, headers: list, body: bytes) -> None:
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        cut = spec.get("reset_after_response_bytes")
        if cut is not None:
            await send({"type": "http.response.body", "body": body[: int(cut)], "more_body": True})
            _abort(send)
            raise _Dropped
        await send({"type": "http.response.body", "body": body})


def wrap(app: ASGIApp, faults: Path | None) -> ASGIApp:
    """`app` behind a FaultInjector when a rule file is given (outermost, so aborts reach the socket)."""
    if faults is None:
        return app
    return FaultInjector(app, load_rules(faults))

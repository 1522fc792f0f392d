"""The local Batch server's Starlette app: the routes of `files` and `batches`, /v1/models and /health,
the api-key check and the error answers.

Errors answer `{"error": {"message", "type", "param", "code"}}` like OpenAI: 400 for an invalid
request, 401 without the right key (when one is required), 404 for an unknown id or route, and 409
for cancelling a batch that has already finished (OpenAI's answer too). Every response carries an
`x-request-id` header; errors that retrying cannot change also `x-should-retry: false` (wire.py).

Files past their `expires_at` are deleted when they are next looked at and by a sweep every
`SWEEP_SECONDS`; `create_app(config, clock=...)` lets tests move the files' clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchctl import __version__
from batchctl.server import batches, files
from batchctl.server.config import ServerConfig, data_dir_id
from batchctl.server.executors import describe_executor, executor_identity, make_executor, serve_for
from batchctl.server.runner import BatchRunner
from batchctl.server.store import Store, new_id
from batchctl.server.wire import JSONResponse, OpenAIErrorResponse

log = logging.getLogger("batchctl.server")

OPEN_PATHS = ("/health", "/v1/health")
SWEEP_SECONDS = 60.0  # how often expired files are deleted when nothing asks for them


# -- middleware --------------------------------------------------------------------------------


class RequestIdAndAuth:
    """Adds `x-request-id` to every response and, with an api key, requires `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req_")
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        if self.api_key and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            error = OpenAIErrorResponse(
                401,
                "Incorrect or missing API key. This server was started with --api-key: send"
                " 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
            await error.response()(scope, receive, send_with_id)
            return
        await self.app(scope, receive, send_with_id)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                # Compared as bytes: a non-ASCII token is just a wrong key (str comparison raises TypeError).
                scheme, _, token = value.partition(b" ")
                expected = (self.api_key or "").encode("utf-8")
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), expected)
        return False


# -- the app -----------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    body = {"status": "ok", "version": __version__, "pid": os.getpid(), "data_dir_id": request.app.state.data_dir_id}
    runner = getattr(request.app.state, "runner", None)
    if runner is not None and runner.waiting:
        # Batches this server leaves alone, created for another executor: the autostart names them (autostart.py).
        body["waiting_batches"] = [{"id": batch_id, "executor": describe_executor(owner), "serve": serve_for(owner)}
                                   for batch_id, owner in runner.waiting.items()]  # fmt: skip
    paused_until = getattr(request.app.state.executor, "paused_until", None)
    until = paused_until() if paused_until is not None else None
    if until is not None:  # the upstream's Retry-After pause: no request of any batch is sent before then
        body["upstream_paused_until"] = int(until + 0.999)
    return JSONResponse(body)


async def list_models(request: Request) -> Response:
    names = await request.app.state.executor.models()
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "batchctl"} for n in dict.fromkeys(names)]
    return JSONResponse({"object": "list", "data": data})


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OpenAIErrorResponse)
    return exc.response()


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown route: {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    code = "not_found" if exc.status_code == 404 else None
    return OpenAIErrorResponse(exc.status_code, message, code=code).response()


async def on_internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return OpenAIErrorResponse(500, f"Internal server error: {exc!r}", type_="server_error").response()


async def sweep_expired_files(store: Store, every: float) -> None:
    while True:
        try:
            if store.delete_expired_files():
                log.info("deleted expired files")
        except Exception:  # a sweep that fails once must not stop the next ones
            log.exception("sweeping expired files failed")
        await asyncio.sleep(every)


def create_app(config: ServerConfig, *, clock: Callable[[], float] = time.time) -> Starlette:
    """The Starlette app serving the Batch API from `config.state_dir()` (created if missing).

    The routes find the store, runner and executor on `app.state`, set up when the app starts.
    `clock` is the files' clock (their `created_at` and expiry).
    """
    data_dir = config.state_dir()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)  # prompts and results are nobody else's business, also in an older dir

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        state = app.state
        state.store = Store(data_dir, clock=clock)
        state.limits = (config.max_file_bytes, config.max_line_bytes)
        state.any_endpoint = bool(config.upstream)  # an upstream serves what the echo model does not
        state.executor = make_executor(config)
        state.runner = BatchRunner(state.store, state.executor, identity=executor_identity(config))
        await state.runner.resume_all()
        sweeper = asyncio.create_task(sweep_expired_files(state.store, SWEEP_SECONDS))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await state.runner.shutdown()
            await state.executor.aclose()
            state.store.close()

    routes = [
        Route("/health", health),
        Route("/v1/health", health),
        *files.ROUTES,
        *batches.ROUTES,
        Route("/v1/models", list_models, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            OpenAIErrorResponse: on_api_error, HTTPException: on_http_error, Exception: on_internal_error
        },
    )  # fmt: skip
    app.state.data_dir_id = data_dir_id(data_dir)  # in /health: whose server this is (autostart.py)
    app.add_middleware(RequestIdAndAuth, api_key=config.api_key)
    return app

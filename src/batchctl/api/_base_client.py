"""The HTTP machinery under every resource: transport, auth, retries, the debug log, JSON parsing.

Resources (`resources/`) say which route to call and what comes back; this decides how it is sent.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from batchctl import __version__
from batchctl.api._multipart import MultipartFileUpload
from batchctl.api._answers import not_json, redact_payload, shape_problem, unexpected
from batchctl.api._response import RawResponse
from batchctl.api.models import Model, ModelError
from batchctl.masking import Redactor, _bearer_token, userinfo_secrets
from batchctl.quirks import OPENAI_WIRE, WireQuirks
from batchctl.api.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    error_for_status,
    raise_for_gateway_failure,
    request_id_from_headers,
)
from batchctl.api.retry import retry_delay, should_retry_exception, should_retry_status
from batchctl.urls import normalize_base_url

USER_AGENT = f"batchctl/{__version__}"
DEBUG_BODY_LIMIT = 4096
# Enough of any answer a probe judges (an error body, a one-item list), without pulling a whole file.
RAW_BODY_LIMIT = 64 * 1024

ModelT = TypeVar("ModelT", bound=Model)
DebugLog = Callable[[str], None]


class _VerifiedContext:
    """httpx's default SSL context (certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR), built when a TLS
    connection first uses it: loading the certificates takes ~20 ms, which a command talking to an
    http:// server (the local one) never needs. httpcore only calls its methods (`set_alpn_protocols`,
    `wrap_socket`), which reach the real context."""

    def __init__(self) -> None:
        self._context: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._context is None:
            self._context = _default_ssl_context()
        return getattr(self._context, name)


def _default_ssl_context() -> Any:
    """httpx's default SSL context; a SSL_CERT_FILE that names no CA bundle is a `BatchctlError` naming
    it (the ssl module's own error names no file: `no such file: None`), raised before a request goes out."""
    try:
        return httpx.create_ssl_context()
    except OSError as exc:  # ssl.SSLError too: a file that holds no certificate
        path = os.environ.get("SSL_CERT_FILE")
        if not path:
            raise
        from batchctl.errors import BatchctlError

        raise BatchctlError(
            f"cannot load CA certificates from SSL_CERT_FILE ({path}): {exc.strerror or exc}",
            hint="Unset SSL_CERT_FILE (certifi's CA bundle is then used), or point it at a CA bundle (a PEM file of certificates).",
        ) from exc


class BaseClient:
    """One httpx connection pool with the key, channel pin, retry policy and debug log of a profile.

    ``channel`` pins a New-API channel: the key is sent as ``Bearer <key>-<channel>``.
    ``debug_log`` receives one line of text at a time describing each HTTP exchange, secrets masked.
    ``transport`` is handed to httpx (tests pass an ``httpx.MockTransport``). ``wire``: the provider's
    dialect (``batchctl.quirks``); ``warn`` gets what a server says in passing (a create's ``warning``);
    ``custom_llm_provider`` routes a LiteLLM proxy's calls (upload form, create body, query).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        channel: str | int | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 2,
        debug_log: DebugLog | None = None,
        transport: httpx.BaseTransport | None = None,
        wire: WireQuirks | None = None,
        warn: Callable[[str], None] | None = None,
        custom_llm_provider: str | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.wire = wire or OPENAI_WIRE
        self._warn = warn
        self.custom_llm_provider = custom_llm_provider or None
        self._api_key = api_key or None
        self.channel = str(channel) if channel not in (None, "") else None
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self._debug_log = debug_log
        self._secrets = (self._api_key, self._bearer_token, *userinfo_secrets(self.base_url))
        self._redact = Redactor(self._secrets)
        # Injectable for tests, which must not really wait.
        self._sleep: Callable[[float], None] = time.sleep
        self._random: Callable[[], float] = random.random
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            verify=_VerifiedContext(),  # type: ignore[arg-type]  # httpx's checks, the certificates loaded when used
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    @property
    def _bearer_token(self) -> str | None:
        return _bearer_token(self._api_key, self.channel)

    def close(self) -> None:
        self._http.close()

    def health(self, timeout: float = 1.0) -> dict | None:
        """`probe_health` of this client's server root, over this client's own connections (a command's
        next request reuses the one it opened), the key sent as with every request; None: nothing healthy."""
        parts = urlsplit(self.base_url)
        raw = self.request_raw("GET", f"{parts.scheme}://{parts.netloc}/health", timeout=timeout, max_body=64 * 1024)
        return health_answer(raw.status, raw.content)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------

    def _build_request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json_body: Any = None,
        upload: MultipartFileUpload | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Request:
        sent: dict[str, str] = {}
        token = self._bearer_token
        if token and self.wire.auth_header == "api-key":
            sent["api-key"] = token  # Azure: the key as is, never in Authorization
        elif token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if self.custom_llm_provider and "custom_llm_provider" not in query:
            query["custom_llm_provider"] = self.custom_llm_provider
        limits = httpx.USE_CLIENT_DEFAULT if timeout is None else timeout
        if upload is not None:
            sent.update(upload.headers)
            # A plain iterable, so httpx streams it; iter() reopens the file each attempt.
            return self._http.build_request(method, url, params=query, headers=sent, content=upload, timeout=limits)
        return self._http.build_request(
            method, url, params=query, headers=sent, json=json_body, files=files, timeout=limits
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        upload: MultipartFileUpload | None = None,
        creates: bool = False,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response (read, or still open when ``stream``), else raise.

        ``creates`` marks requests whose repetition could create a second object; see
        ``batchctl.api.retry`` for when they are re-sent.
        """
        retries_done = 0
        while True:
            request = self._build_request(method, url, params=params, json_body=json_body, upload=upload)
            if json_body is not None:
                self._log(f"> {method} {request.url} {json.dumps(json_body, ensure_ascii=False)}")
            started = time.monotonic()
            response: httpx.Response | None = None
            try:
                response = self._http.send(request, stream=True)
                if not stream or response.is_error:
                    response.read()
            except httpx.TransportError as exc:
                if response is not None:
                    response.close()
                self._log_failure(request, exc, started)
                if retries_done < self.max_retries and should_retry_exception(exc, creates=creates):
                    self._pause(retries_done, None)
                    retries_done += 1
                    continue
                error = self._transport_error(exc, request)
                # Only a failure after the request may have left says "check first"; a refused
                # connection reached nobody.
                if creates and not should_retry_exception(exc, creates=True) and should_retry_exception(exc, creates=False):
                    error.message += "; not re-sent, because the server may have received it: check before trying again"
                raise error from exc

            self._log_exchange(response, started, body=not stream or response.is_error)
            if not response.is_error:
                return response
            if retries_done < self.max_retries and should_retry_status(
                response.status_code, response.headers, creates=creates
            ):
                response.close()
                self._pause(retries_done, response.headers)
                retries_done += 1
                continue
            response.close()
            raise error_for_status(
                response.status_code,
                self._redact(response.text),
                url=str(request.url),
                headers=response.headers,
            )

    def request_raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        timeout: float | None = None,
        max_body: int = RAW_BODY_LIMIT,
    ) -> RawResponse:
        """Send once and report what happened, never raising for a status or a lost connection.

        ``path`` is relative to ``base_url`` unless it is a whole URL. ``headers`` add to (or replace)
        the client's, e.g. another ``Authorization``; ``secrets`` are masked in the log and the error
        text like the key is. At most ``max_body`` bytes of the body are read.
        """
        url = path if "://" in path else f"{self.base_url}{path}"
        redact = Redactor([*self._secrets, *secrets])
        request = self._build_request(method, url, params=params, json_body=json, files=files, headers=headers, timeout=timeout)
        started = time.monotonic()
        response: httpx.Response | None = None
        content = b""
        try:
            response = self._http.send(request, stream=True)
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > max_body:
                    break
        except httpx.HTTPError as exc:
            self._log_failure(request, exc, started, redact)
            return RawResponse(
                method=method,
                url=str(request.url),
                status=response.status_code if response is not None else None,
                headers=response.headers if response is not None else {},
                elapsed_ms=_ms(started),
                error_type=type(exc).__name__,
                error_detail=redact(str(exc)),
                timed_out=isinstance(exc, httpx.TimeoutException),
            )
        finally:
            if response is not None:
                response.close()
        self._log_exchange(response, started, body=content, redact=redact)
        return RawResponse(
            method=method,
            url=str(request.url),
            status=response.status_code,
            reason=response.reason_phrase,
            headers=response.headers,
            content=content[:max_body],
            truncated=len(content) > max_body,
            elapsed_ms=_ms(started),
        )

    def _notice(self, text: str) -> None:
        """Tell the user what the server said in passing (stderr in the CLI), masked like the log."""
        if self._warn is not None:
            self._warn(self._redact(text))

    def _pause(self, retries_done: int, headers: httpx.Headers | None) -> None:
        delay = retry_delay(retries_done, headers, random=self._random)
        self._log(f"retrying in {delay:.2f} s (retry {retries_done + 1} of {self.max_retries})")
        self._sleep(delay)

    def _transport_error(self, exc: Exception, request: httpx.Request) -> APIConnectionError:
        detail = self._redact(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request to {request.url} timed out ({detail})", url=str(request.url))
        return APIConnectionError(f"could not reach {request.url}: {detail}", url=str(request.url))

    def _download_error(self, exc: Exception, url: str) -> APIConnectionError:
        detail = self._redact(str(exc)) or type(exc).__name__
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        return cls(f"Download from {url} broke off: {detail}", url=url)

    # -- answers ---------------------------------------------------------------------------------

    def _payload(self, response: httpx.Response) -> Any:
        """The JSON body of a 2xx answer; a body that is not JSON raises APIResponseValidationError."""
        request = response.request
        try:
            text = response.text
            if "\\" not in text and self._redact(text) == text:
                # No escapes: every string of the payload appears as is in the text, and none holds a
                # secret, so the walk below would change nothing (it cost ~15 % of `list --all`).
                return json.loads(text)
            return redact_payload(json.loads(text), self._redact)
        except ValueError:
            # Redact first, then cut: a key cut at the boundary would show its head.
            snippet = _snippet(self._redact(response.text))
            raise APIResponseValidationError(
                f"Expected JSON from {request.method} {request.url}, got: {snippet or '(empty body)'}",
                status=response.status_code,
                request_id=request_id_from_headers(response.headers),
                url=str(request.url),
            ) from None

    def _json(
        self, response: httpx.Response, model: type[ModelT], adapt: Callable[[Any], Any] | None = None
    ) -> ModelT:
        """The answer as ``model``; ``adapt`` turns a provider's dialect into OpenAI's first (``_dialect``)."""
        request = response.request
        request_id = request_id_from_headers(response.headers)
        where = dict(request_id=request_id, url=str(request.url))
        try:
            payload = self._payload(response)
        except APIResponseValidationError:  # HTML, or no body at all
            raise unexpected(response.status_code, model.__name__, not_json(self._redact(response.text)), **where) from None
        if adapt is not None:
            payload = adapt(payload)
        if isinstance(payload, dict) and "object" not in payload:
            raise_for_gateway_failure(payload, status=response.status_code, request_id=request_id)
        problem = shape_problem(payload, model.__name__)
        if problem is not None:
            raise unexpected(response.status_code, model.__name__, problem, body=payload, **where)
        try:
            return model.model_validate(payload)
        except ModelError as exc:
            raise APIResponseValidationError(
                f"Unexpected response from {request.method} {request.url}: {exc} "
                f"(expected a {model.__name__})",
                status=response.status_code,
                request_id=request_id,
                body=payload,
                url=str(request.url),
            ) from None

    # -- debug log -------------------------------------------------------------------------------

    def _log(self, text: str, redact: Callable[[str], str] | None = None) -> None:
        if self._debug_log is None:
            return
        for line in (redact or self._redact)(text).splitlines() or [""]:
            self._debug_log(line)

    def _log_failure(
        self, request: httpx.Request, exc: Exception, started: float, redact: Callable[[str], str] | None = None
    ) -> None:
        self._log(f"HTTP {request.method} {request.url} -> {type(exc).__name__}: {exc} ({_ms(started)} ms)", redact)

    def _log_exchange(
        self, response: httpx.Response, started: float, *, body: bool | bytes, redact: Callable[[str], str] | None = None
    ) -> None:
        """`HTTP GET <url> -> 200 OK (12 ms, request id req_…)`, then the body (``True``: the response's, read)."""
        if self._debug_log is None:
            return
        request_id = request_id_from_headers(response.headers)
        self._log(
            f"HTTP {response.request.method} {response.request.url} -> {response.status_code} {response.reason_phrase} "
            f"({_ms(started)} ms{', request id ' + request_id if request_id else ''})",
            redact,
        )
        redact = redact or self._redact
        if body is True:  # redacted before it is cut short, and again (a no-op) when logged
            self._log(_body_for_log(redact(response.text)), redact)
        elif body is not False:
            self._log(_body_for_log(redact(body.decode("utf-8", "replace"))), redact)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _snippet(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


def _body_for_log(text: str) -> str:
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    if len(text) > DEBUG_BODY_LIMIT:
        text = f"{text[:DEBUG_BODY_LIMIT]}\n… ({len(text) - DEBUG_BODY_LIMIT} more characters)"
    return text


def _seg(identifier: str) -> str:
    """An id as one path segment (ids are opaque; never let one add path components)."""
    if not identifier:
        raise ValueError("an id is required")
    return quote(str(identifier), safe="")


path_segment = _seg  # public: for callers that build a path themselves (doctor's probes)


def probe_health(root: str, timeout: float = 1.0, *, transport: httpx.BaseTransport | None = None) -> dict | None:
    """The `/health` answer of a batchctl server at `root` (no `/v1`), or None when nothing healthy answers."""
    try:
        verify: Any = _VerifiedContext()
        with httpx.Client(timeout=timeout, transport=transport, verify=verify, headers={"User-Agent": USER_AGENT}) as http:
            response = http.get(root + "/health")
            return health_answer(response.status_code, response.content)
    except httpx.HTTPError:
        return None


def health_answer(status: int | None, content: bytes) -> dict | None:
    """A `/health` body that says a batchctl server is there and well, else None."""
    if status != 200:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("status") == "ok" else None

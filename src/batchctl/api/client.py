"""BatchClient: the HTTP side of OpenAI-compatible Batch APIs (files and batches), with retries and masking."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import pydantic

from batchctl import __version__
from batchctl.api._multipart import MultipartFileUpload, ProgressCallback
from batchctl.api.retry import retry_delay, should_retry_exception, should_retry_status
from batchctl.api._secrets import Redactor, mask_secret
from batchctl.api.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    error_for_status,
    raise_for_gateway_failure,
    request_id_from_headers,
)
from batchctl.api.models import Batch, BatchPage, FileDeleted, FileObject, FilePage

__all__ = ["BatchClient", "ContentStream", "normalize_base_url", "USER_AGENT"]

USER_AGENT = f"batchctl/{__version__}"
DEBUG_BODY_LIMIT = 4096

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
DebugLog = Callable[[str], None]


def bearer_token(api_key: str | None, channel: str | int | None = None) -> str | None:
    """The token after `Bearer `: the key, suffixed `-<channel>` to pin a New-API channel."""
    if not api_key:
        return None
    return f"{api_key}-{channel}" if channel else api_key


def normalize_base_url(base_url: str) -> str:
    """The API root including its version path, without a trailing slash.

    ``https://api.openai.com/v1/`` -> ``https://api.openai.com/v1``; a bare host such as
    ``http://localhost:3000`` gets ``/v1`` (New-API and the local server serve the API there).
    """
    text = (base_url or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL {text!r} must start with http:// or https:// and name a host")
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme.lower()}://{parts.netloc}{path}"


class ContentStream(Iterator[bytes]):
    """The body of a file download as byte chunks; ``close()`` it (or exhaust it) to free the connection."""

    def __init__(self, response: httpx.Response, on_error: Callable[[Exception], APIError]) -> None:
        self.response = response
        length = response.headers.get("content-length")
        self.total: int | None = int(length) if length and length.isdigit() else None
        self._chunks = response.iter_bytes()
        self._on_error = on_error

    def __iter__(self) -> ContentStream:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            self.close()
            raise
        except httpx.TransportError as exc:
            self.close()
            raise self._on_error(exc) from exc

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> ContentStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class BatchClient:
    """A client for one OpenAI-compatible Batch API (OpenAI, DashScope compatible-mode, New-API, local).

    ``channel`` pins a New-API channel: the key is sent as ``Bearer <key>-<channel>``.
    ``debug_log`` receives one line of text at a time describing each HTTP exchange, secrets masked.
    ``transport`` is handed to httpx (tests pass an ``httpx.MockTransport``).
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
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self._api_key = api_key or None
        self.channel = str(channel) if channel not in (None, "") else None
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self._debug_log = debug_log
        self._redact = Redactor([self._api_key, self._bearer_token])
        # Injectable for tests, which must not really wait.
        self._sleep: Callable[[float], None] = time.sleep
        self._random: Callable[[], float] = random.random
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    @property
    def _bearer_token(self) -> str | None:
        return bearer_token(self._api_key, self.channel)

    def __repr__(self) -> str:
        return (
            f"BatchClient(base_url={self.base_url!r}, api_key={mask_secret(self._api_key) or None!r}, "
            f"channel={self.channel!r})"
        )

    @cached_property
    def files(self) -> Files:
        return Files(self)

    @cached_property
    def batches(self) -> Batches:
        return Batches(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BatchClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- HTTP plumbing -------------------------------------------------------------------------

    def _build_request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        upload: MultipartFileUpload | None,
    ) -> httpx.Request:
        headers: dict[str, str] = {}
        token = self._bearer_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if upload is not None:
            headers.update(upload.headers)
            # A plain iterable, so httpx streams it; iter() reopens the file each attempt.
            return self._http.build_request(method, url, params=query, headers=headers, content=upload)
        return self._http.build_request(method, url, params=query, headers=headers, json=json_body)

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
                self._log(f"HTTP {method} {request.url} -> {type(exc).__name__}: {exc} ({_ms(started)} ms)")
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

    def _pause(self, retries_done: int, headers: httpx.Headers | None) -> None:
        delay = retry_delay(retries_done, headers, random=self._random)
        self._log(f"retrying in {delay:.2f} s (retry {retries_done + 1} of {self.max_retries})")
        self._sleep(delay)

    def _transport_error(self, exc: Exception, request: httpx.Request) -> APIConnectionError:
        detail = self._redact(str(exc)) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"request to {request.url} timed out ({detail})")
        return APIConnectionError(f"could not reach {request.url}: {detail}")

    def _download_error(self, exc: Exception, url: str) -> APIConnectionError:
        detail = self._redact(str(exc)) or type(exc).__name__
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        return cls(f"Download from {url} broke off: {detail}")

    def _json(self, response: httpx.Response, model: type[ModelT]) -> ModelT:
        request = response.request
        request_id = request_id_from_headers(response.headers)
        try:
            payload = response.json()
        except ValueError:
            snippet = " ".join(response.text.split())[:200]
            raise APIResponseValidationError(
                f"Expected JSON from {request.method} {request.url}, got: {self._redact(snippet) or '(empty body)'}",
                status=response.status_code,
                request_id=request_id,
            ) from None
        if isinstance(payload, dict) and "object" not in payload:
            raise_for_gateway_failure(payload, status=response.status_code, request_id=request_id)
        try:
            return model.model_validate(payload)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise APIResponseValidationError(
                f"Unexpected response from {request.method} {request.url}: {where}: {first['msg']} "
                f"(expected a {model.__name__})",
                status=response.status_code,
                request_id=request_id,
                body=payload,
            ) from None

    # -- debug log -----------------------------------------------------------------------------

    def _log(self, text: str) -> None:
        if self._debug_log is None:
            return
        for line in self._redact(text).splitlines() or [""]:
            self._debug_log(line)

    def _log_exchange(self, response: httpx.Response, started: float, *, body: bool) -> None:
        if self._debug_log is None:
            return
        self._log(_exchange_line(response, started))
        if body:
            self._log(_body_for_log(response))


def _exchange_line(response: httpx.Response, started: float) -> str:
    """`HTTP GET <url> -> 200 OK (12 ms, request id req_…)`: one exchange for the debug log."""
    request = response.request
    request_id = request_id_from_headers(response.headers)
    return (
        f"HTTP {request.method} {request.url} -> {response.status_code} {response.reason_phrase} "
        f"({_ms(started)} ms{', request id ' + request_id if request_id else ''})"
    )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _body_for_log(response: httpx.Response) -> str:
    text = response.text
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    if len(text) > DEBUG_BODY_LIMIT:
        text = f"{text[:DEBUG_BODY_LIMIT]}\n… ({len(text) - DEBUG_BODY_LIMIT} more characters)"
    return text


class Files:
    """``/files``: upload batch input, download output, list and delete."""

    def __init__(self, client: BatchClient) -> None:
        self._client = client

    def create(
        self,
        *,
        path: str | os.PathLike[str],
        purpose: str = "batch",
        progress: ProgressCallback | None = None,
    ) -> FileObject:
        """Upload ``path`` as multipart/form-data, streamed from disk in chunks.

        ``progress(bytes_sent, total)`` is called as file bytes are handed to the connection
        (and again from 0 if the upload is retried).
        """
        upload = MultipartFileUpload(path, fields={"purpose": purpose}, progress=progress)
        c = self._client
        response = c._request("POST", f"{c.base_url}/files", upload=upload, creates=True)
        return c._json(response, FileObject)

    def retrieve(self, file_id: str) -> FileObject:
        c = self._client
        return c._json(c._request("GET", f"{c.base_url}/files/{_seg(file_id)}"), FileObject)

    def list(self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None) -> FilePage:
        c = self._client
        params = {"purpose": purpose, "limit": limit, "after": after}
        return c._json(c._request("GET", f"{c.base_url}/files", params=params), FilePage)

    def iter(self, *, purpose: str | None = None, limit: int | None = None) -> Iterator[FileObject]:
        """Every file, page after page, with the stop rules of ``Batches.iter``.

        ``limit`` is the page size asked for; cap the total with ``itertools.islice``.
        """
        return _iter_pages(lambda after: self.list(purpose=purpose, limit=limit, after=after))

    def delete(self, file_id: str) -> FileDeleted:
        c = self._client
        return c._json(c._request("DELETE", f"{c.base_url}/files/{_seg(file_id)}"), FileDeleted)

    def content(
        self,
        file_id: str,
        *,
        path: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> int | ContentStream:
        """Download a file's bytes.

        With ``path``: stream to ``<path>.part`` and rename it to ``path`` once complete (a failed
        download leaves neither); returns the byte count. A connection lost mid-way restarts the
        download, within ``max_retries``. Without ``path``: returns a ``ContentStream`` of byte chunks.
        ``progress(bytes_received, total)`` gets ``total`` 0 when the server sends no length.
        """
        c = self._client
        url = f"{c.base_url}/files/{_seg(file_id)}/content"
        if path is None:
            response = c._request("GET", url, stream=True)
            return ContentStream(response, lambda exc: c._download_error(exc, url))
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        retries_done = 0
        while True:
            try:
                received = self._download_to(url, partial, progress)
            except httpx.TransportError as exc:
                partial.unlink(missing_ok=True)
                if retries_done < c.max_retries and should_retry_exception(exc, creates=False):
                    c._pause(retries_done, None)
                    retries_done += 1
                    continue
                raise c._download_error(exc, url) from exc
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, target)
            return received

    def _download_to(self, url: str, partial: Path, progress: ProgressCallback | None) -> int:
        response = self._client._request("GET", url, stream=True)
        try:
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else 0
            received = 0
            if progress:
                progress(0, total)
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    received += len(chunk)
                    if progress:
                        progress(received, total)
            return received
        finally:
            response.close()


class Batches:
    """``/batches``: create, inspect, list and cancel batch jobs."""

    def __init__(self, client: BatchClient) -> None:
        self._client = client

    def create(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
    ) -> Batch:
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata is not None:
            body["metadata"] = metadata
        c = self._client
        return c._json(c._request("POST", f"{c.base_url}/batches", json_body=body, creates=True), Batch)

    def retrieve(self, batch_id: str) -> Batch:
        c = self._client
        return c._json(c._request("GET", f"{c.base_url}/batches/{_seg(batch_id)}"), Batch)

    def cancel(self, batch_id: str) -> Batch:
        # Cancelling twice does no harm, so this POST is retried like a GET.
        c = self._client
        return c._json(c._request("POST", f"{c.base_url}/batches/{_seg(batch_id)}/cancel"), Batch)

    def list(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> BatchPage:
        """One page. ``extra_params`` go to the query string as given (DashScope's ``ds_name``, ``status``...)."""
        params: dict[str, Any] = {k: v for k, v in (extra_params or {}).items() if v is not None}
        params.update({k: v for k, v in (("limit", limit), ("after", after)) if v is not None})
        c = self._client
        return c._json(c._request("GET", f"{c.base_url}/batches", params=params), BatchPage)

    def iter(
        self,
        *,
        limit: int | None = None,
        after: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> Iterator[Batch]:
        """Every batch, page after page, following ``has_more``/``last_id`` (see ``_iter_pages``).

        ``limit`` is the page size asked for.
        """
        return _iter_pages(lambda cursor: self.list(limit=limit, after=cursor, extra_params=extra_params), after)


def _iter_pages(fetch: Callable[[str | None], Any], after: str | None = None) -> Iterator[Any]:
    """The items of page after page of a cursor-paged list; `fetch(after)` gets one page.

    Stops when ``has_more`` is false, a page is empty, or the cursor would repeat (a server
    that ignores ``after`` would otherwise loop forever).
    """
    cursor = after
    seen: set[str] = set() if after is None else {after}
    while True:
        page = fetch(cursor)
        yield from page.data
        if not page.has_more or not page.data:
            return
        cursor = page.last_id or page.data[-1].id
        if cursor in seen:
            return
        seen.add(cursor)


def _seg(identifier: str) -> str:
    """An id as one path segment (ids are opaque; never let one add path components)."""
    if not identifier:
        raise ValueError("an id is required")
    return quote(identifier, safe="")


def debug_event_hooks(debug_log: DebugLog | None, secrets: Iterable[str | None] = ()) -> dict[str, list]:
    """httpx `event_hooks` that log each exchange like BatchClient's `debug_log` does, secrets masked.

    For code that talks HTTP outside BatchClient (doctor's probes, the New-API channel check), so that
    `--debug` shows every exchange the same way. Empty when there is no log.
    """
    if debug_log is None:
        return {}
    redact = Redactor(secrets)

    def log(text: str) -> None:
        for line in redact(text).splitlines() or [""]:
            debug_log(line)

    def on_request(request: httpx.Request) -> None:
        request.extensions["batchctl_started"] = time.monotonic()

    def on_response(response: httpx.Response) -> None:
        response.read()
        log(_exchange_line(response, response.request.extensions.get("batchctl_started", time.monotonic())))
        log(_body_for_log(response))

    return {"request": [on_request], "response": [on_response]}

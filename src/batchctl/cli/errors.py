"""The one map from exceptions to an `Error: ...` line, a hint, and an exit code.

Tracebacks appear only under --debug / BATCHCTL_DEBUG, and never with local variables (they may hold keys).
"""

from __future__ import annotations

import traceback

from batchctl.cli.output import Output
from batchctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, BatchctlError


def _api_error_message(exc: Exception) -> tuple[str, str | None]:
    from batchctl.api import errors as api

    message = getattr(exc, "message", None) or str(exc)
    request_id = getattr(exc, "request_id", None)
    suffix = f" (request id {request_id})" if request_id else ""
    if isinstance(exc, api.APITimeoutError):
        return message, "The server may be busy; try again, or raise the timeout."
    if isinstance(exc, api.APIConnectionError):
        return (
            message,
            "Check the base URL (batchctl profile show) and that the server is running.",
        )
    if isinstance(exc, api.AuthenticationError):
        return (
            f"the server rejected the API key (HTTP 401): {message}{suffix}",
            "Check the key: batchctl profile show, --api-key or BATCHCTL_API_KEY.",
        )
    if isinstance(exc, api.PermissionDeniedError):
        return (
            f"permission denied (HTTP 403): {message}{suffix}",
            "The key is valid but may not use this resource (a New-API channel pin needs an admin key).",
        )
    from batchctl.urls import batch_api_route

    route = batch_api_route(getattr(exc, "url", None))
    if isinstance(exc, api.NotImplementedByServerError) or getattr(exc, "code", None) == "api_not_implemented":
        what = route or "that route"
        return (
            f"this gateway does not relay {what} (HTTP {exc.status} {exc.code or 'not implemented'}): {message}{suffix}",
            "Stock New-API does not implement /v1/files; use a gateway build that relays the Batch API, or "
            "DashScope directly (batchctl profile add NAME --preset dashscope). See: batchctl doctor",
        )
    if isinstance(exc, api.NotFoundError) and route and _is_collection(exc.url):
        # No id in the path, so the 404 is about the route itself: e.g. a gateway without GET /v1/batches.
        return (
            f"this gateway does not serve {route} (HTTP 404): {message}{suffix}",
            "Listing is not available here; commands that take an id still work (batchctl status BATCH_ID). "
            "See: batchctl doctor",
        )
    if isinstance(exc, api.NotFoundError):
        return f"not found (HTTP 404): {message}{suffix}", "Check the id, and that the profile points at the server that created it."
    if isinstance(exc, api.RateLimitError):
        return f"rate limited (HTTP 429): {message}{suffix}", "Wait a little and try again."
    if isinstance(exc, api.InternalServerError):
        return f"the server failed (HTTP {exc.status}): {message}{suffix}", "Try again later; the server had a problem."
    status = getattr(exc, "status", None)
    prefix = f"HTTP {status}: " if status else ""
    return f"{prefix}{message}{suffix}", None


def _is_collection(url: str | None) -> bool:
    from urllib.parse import urlsplit

    path = urlsplit(url or "").path.rstrip("/")
    return path.endswith(("/files", "/batches"))


def exit_code_for(exc: BaseException, out: Output, *, debug: bool) -> int:
    """Report `exc` on stderr and return the exit code it maps to."""
    if isinstance(exc, KeyboardInterrupt):
        out.info("Interrupted.")
        return EXIT_INTERRUPTED
    if debug:
        out.err.print("".join(traceback.format_exception(exc)), markup=False, highlight=False)
    if isinstance(exc, BatchctlError):
        out.error(exc.message, exc.hint)
        return exc.exit_code
    try:
        from batchctl.api.errors import APIError
    except ImportError:  # pragma: no cover - the api package is part of the install
        APIError = ()  # type: ignore[assignment]
    if APIError and isinstance(exc, APIError):
        message, hint = _api_error_message(exc)
        out.error(message, hint)
        return EXIT_ERROR
    if isinstance(exc, IsADirectoryError):
        out.error(f"{exc.filename} is a directory", "Give the path of a file.")
        return EXIT_ERROR
    if isinstance(exc, FileNotFoundError):
        out.error(f"no such file: {exc.filename}", "Check the path.")
        return EXIT_ERROR
    if isinstance(exc, PermissionError):
        out.error(f"permission denied: {exc.filename}", "Check the file's permissions.")
        return EXIT_ERROR
    if isinstance(exc, OSError):
        out.error(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), None)
        return EXIT_ERROR
    out.error(
        f"unexpected {type(exc).__name__}: {exc}",
        None if debug else "Run again with --debug for the traceback, and report it if it persists.",
    )
    return EXIT_ERROR

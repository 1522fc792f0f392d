"""The one map from exceptions to an `Error: ...` line, a hint, and an exit code.

Each rule is one row of a table: an exception type and what to tell people about it. Tracebacks appear
only under --debug / BATCHCTL_DEBUG, and never with local variables (they may hold keys).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from functools import cache
from typing import Any

from batchctl.cli.output import Output
from batchctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, BatchctlError, Terminated, interrupted_exit_code
from batchctl.urls import display_url

# A rule turns an exception into (message, hint); None means "not mine, try the next row".
Rule = Callable[[Any], "tuple[str, str | None] | None"]

CHECK_URL_HINT = "Check the base URL (batchctl profile show) and that the server is running."
CHECK_ID_HINT = "Check the id, and that the profile points at the server that created it."


def _suffix(exc: Any) -> str:
    return f" (request id {exc.request_id})" if getattr(exc, "request_id", None) else ""


def _is_collection(url: str | None) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url or "").path.rstrip("/").endswith(("/files", "/batches"))


def _route_not_relayed(exc: Any) -> tuple[str, str | None] | None:
    from batchctl.api.errors import NotImplementedByServerError
    from batchctl.urls import batch_api_route

    if not (isinstance(exc, NotImplementedByServerError) or exc.code == "api_not_implemented"):
        return None
    what = batch_api_route(exc.url) or "that route"
    return (
        f"this gateway does not relay {what} (HTTP {exc.status} {exc.code or 'not implemented'}): {exc.message}{_suffix(exc)}",
        "Stock New-API does not implement /v1/files; use a gateway build that relays the Batch API, or "
        "DashScope directly (batchctl profile add NAME --preset dashscope). See: batchctl doctor",
    )


def _route_not_served(exc: Any) -> tuple[str, str | None] | None:
    from batchctl.urls import batch_api_route

    route = batch_api_route(exc.url)
    if not (route and _is_collection(exc.url)):
        return None
    # No id in the path, so the 404 is about the route itself: e.g. a gateway without GET /v1/batches.
    return (
        f"this gateway does not serve {route} (HTTP 404): {exc.message}{_suffix(exc)}",
        "Listing is not available here; commands that take an id still work (batchctl status BATCH_ID). "
        "See: batchctl doctor",
    )


def _too_large(exc: Any) -> tuple[str, str | None] | None:
    """HTTP 413: the server's limit is below the profile's, which splits files by its own."""
    if getattr(exc, "status", None) != 413:
        return None
    return (
        f"the server refused the request as too large (HTTP 413): {exc.message}{_suffix(exc)}",
        "Give the profile the server's limits, and submit splits the file into parts within them: "
        "batchctl profile add NAME --base-url URL --max-file-mb MB --max-line-mb MB --force; --force replaces the whole "
        "profile, so repeat its other options too (--provider, --api-key-env or --api-key, --channel, ...: batchctl "
        "profile show NAME lists them).",
    )


def _other_status(exc: Any) -> tuple[str, str | None]:
    status = getattr(exc, "status", None)
    return f"{'HTTP ' + str(status) + ': ' if status else ''}{exc.message or exc}{_suffix(exc)}", None


@cache
def _api_rules() -> tuple[tuple[type, Rule], ...]:
    """The API layer's exceptions, most specific first (built on first use: importing them is not free)."""
    from batchctl.api import errors as api

    return (
        (api.FilesNotServedError, lambda e: (e.message, e.hint)),
        (api.APITimeoutError, lambda e: (e.message, "The server may be busy; try again, or raise the timeout.")),
        (api.APIConnectionError, lambda e: (e.message, CHECK_URL_HINT)),
        (
            api.AuthenticationError,
            lambda e: (
                f"the server rejected the API key (HTTP 401): {e.message}{_suffix(e)}",
                "Check the key: batchctl profile show, --api-key or BATCHCTL_API_KEY.",
            ),
        ),
        (
            api.PermissionDeniedError,
            lambda e: (
                f"permission denied (HTTP 403): {e.message}{_suffix(e)}",
                "The key is valid but may not use this resource (a New-API channel pin needs an admin key).",
            ),
        ),
        (api.APIError, _route_not_relayed),
        (api.NotFoundError, _route_not_served),
        (api.NotFoundError, lambda e: (f"not found (HTTP 404): {e.message}{_suffix(e)}", CHECK_ID_HINT)),
        (api.RateLimitError, lambda e: (f"rate limited (HTTP 429): {e.message}{_suffix(e)}", "Wait a little and try again.")),
        (
            api.InternalServerError,
            lambda e: (f"the server failed (HTTP {e.status}): {e.message}{_suffix(e)}", "Try again later; the server had a problem."),
        ),
        (
            api.APIResponseValidationError,
            lambda e: (
                f"{e.message}{_suffix(e)}",
                "The URL may reach a proxy or a login page instead of the API: check it with batchctl doctor.",
            ),
        ),
        (api.APIError, _too_large),
        (api.APIError, _other_status),
    )


def _not_text(exc: UnicodeEncodeError) -> tuple[str, str | None]:
    """Text that cannot go where it was going. The value itself is not shown: it may be the API key."""
    char = exc.object[exc.start] if isinstance(exc.object, str) and exc.start < len(exc.object) else ""
    code = ord(char) if char else 0
    if 0xDC80 <= code <= 0xDCFF:  # how Python keeps an argv or environment byte that is not UTF-8
        return (
            f"a command-line argument or environment value holds the byte 0x{code - 0xDC00:02x}, which is not UTF-8 text",
            "Give it as UTF-8 (check the terminal's encoding: `locale`).",
        )
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate, as JSON's \\ud800 escape reads
        return (
            f"the data holds a lone surrogate (\\u{code:04x}), which is not valid text",
            "Fix the value: JSON text needs a high and a low surrogate together, or the character itself.",
        )
    if exc.encoding in ("ascii", "latin-1", "iso-8859-1"):  # an HTTP header: the API key, --channel
        return (
            f"a value sent in an HTTP header (the API key, --channel) holds the character U+{code:04X}, which headers cannot carry",
            "Look for a stray character pasted with the key (a space, a quote): batchctl profile show.",
        )
    return f"text that cannot be encoded as {exc.encoding}: {exc.reason}", None


def _database(exc: Exception) -> tuple[str, str | None] | None:
    """The journal file is not a database (damaged, or another file under its name)."""
    import sqlite3

    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return None
    from batchctl.jobs.store import journal_path

    path = journal_path()
    try:
        with open(path, "rb") as f:
            damaged = f.read(16) != b"SQLite format 3\x00"
    except OSError:
        damaged = False
    if not damaged:
        return f"database error: {exc}", None
    return (
        f"the journal {path} is not a readable database ({exc})",
        f"Move it aside and batchctl starts a new one (the jobs it knew are forgotten): mv {path} {path}.broken",
    )


# Local files: the same words whichever command met them. Subclasses come before OSError.
_OS_RULES: tuple[tuple[type, Rule], ...] = (
    (UnicodeEncodeError, _not_text),
    (RecursionError, lambda e: ("the data is nested too deeply to read (thousands of [ or { in one value)",
                                "Check the file: no request nests that deep.")),  # fmt: skip
    (Exception, _database),
    (IsADirectoryError, lambda e: (f"{e.filename} is a directory", "Give the path of a file.")),
    (FileNotFoundError, lambda e: (f"no such file: {e.filename}", "Check the path.")),
    (PermissionError, lambda e: (f"permission denied: {e.filename}", "Check the file's permissions.")),
    (OSError, lambda e: (f"{e.strerror or e}: {e.filename or ''}".rstrip(": "), None)),
)


def describe(exc: BaseException, *, debug: bool = False) -> tuple[str, str | None, int]:
    """(message, hint, exit code) for any exception: the first matching row of the table wins."""
    if isinstance(exc, BatchctlError):
        return exc.message, exc.hint, exc.exit_code
    for kind, rule in (*_api_rules(), *_OS_RULES):
        if isinstance(exc, kind):
            found = rule(exc)
            if found is not None:
                return (*found, EXIT_ERROR)
    hint = None if debug else "Run again with --debug for the traceback, and report it if it persists."
    return f"unexpected {type(exc).__name__}: {exc}", hint, EXIT_ERROR


def report_exception(exc: BaseException, out: Output, *, debug: bool) -> int:
    """Report `exc` on stderr (one `Error:` line and a hint) and return the exit code it maps to.

    Under --json the same goes to stdout as `{"error": {"message", "hint", "exit_code"}}`, so a
    script that reads stdout learns why there is no result (unless a result was printed already).
    """
    if isinstance(exc, Terminated):
        message, hint, code = f"terminated by {exc.name}", None, interrupted_exit_code(exc)
        out.info(f"Terminated by {exc.name}: partial files were removed; nothing was left under a final name.")
    elif isinstance(exc, KeyboardInterrupt):
        message, hint, code = "interrupted", None, EXIT_INTERRUPTED
        out.info("Interrupted: partial files were removed; nothing was left under a final name. Run the same command again to go on.")
    else:
        if debug:
            out.info(display_url("".join(traceback.format_exception(exc))))
        message, hint, code = describe(exc, debug=debug)
        # Whatever raised it, a URL's password is not shown: the message often names the base URL.
        message, hint = display_url(message), display_url(hint) if hint else hint
        out.error(message, hint)
    if not out.printed_json:
        out.result({"error": {"message": message, "hint": hint, "exit_code": code}})
    return code

"""URL helpers shared by the config, the API layer and the CLI: the API root, a gateway's root, a Batch route.

Plain string work (no httpx, no pydantic), so the config and error printing can use it without the API layer.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASKED_PASSWORD = "****"
# The `user:password@` of a URL wherever it stands in a text: the scheme and user (which may hold an `@`
# itself, an e-mail login: `http://bob@corp.com:pw@host`), then the password up to the last `@` before the
# host (it may hold an unescaped `@` or `'`), never past a space, a `"` or a path.
_USERINFO = re.compile(r"(?P<user>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#:\"'<>\\]*):[^\s/?#\"<>\\]+@")


def display_url(text: str) -> str:
    """`text` (a URL, or a message naming URLs) as people and `--json` see it: each URL's password
    masked, its user kept (``http://bob:hunter2@gw/v1`` -> ``http://bob:****@gw/v1``).

    Only what is shown: the config, the journal and the requests keep the real URL.
    """
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m['user']}:{MASKED_PASSWORD}@", text)


def shown_url(url: str) -> str:
    """A URL as an error message may show it: the password masked (`display_url`), a query or fragment
    cut to `?…` / `#…` (a key given as `?key=…` is a secret too).

    The URL is one the parser refused or may misread, so the password is found by the last `@`, not by
    the URL's grammar: one holding a `#`, `?` or `/` (`http://bob:pa#ss@gw`) must not show up to that
    character, which `urlsplit` and `display_url` take for the end of the host."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, after = rest.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        if colon:
            url = f"{scheme}://{user}:{MASKED_PASSWORD}@{after}"
    for mark in ("?", "#"):
        if mark in url:
            url = url.split(mark, 1)[0] + mark + "…"
            break
    return display_url(url)


def normalize_base_url(base_url: str) -> str:
    """The API root including its version path, without a trailing slash.

    ``https://api.openai.com/v1/`` -> ``https://api.openai.com/v1``; a bare host such as
    ``http://localhost:3000`` gets ``/v1`` (New-API and the local server serve the API there). A query
    or a fragment is refused: paths are added after the root, and a `?key=` would be lost (or, for
    `serve --upstream`, sent in the middle of every path). The message never shows either.
    """
    text = (base_url or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL {shown_url(text)!r} must start with http:// or https:// and name a host")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"base URL {shown_url(text)!r} has a query or a fragment: give the API root alone "
                         "(a key goes in its own option, never in the URL)")  # fmt: skip
    try:
        parts.port  # noqa: B018 - raises for a port out of range or not a number
    except ValueError:
        raise ValueError(f"base URL {shown_url(text)!r} has an invalid port") from None
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme.lower()}://{parts.netloc}{path}"


def gateway_root(base_url: str) -> str:
    """The gateway's root: the base URL without its `/v1` (`http://gw:3000/v1` -> `http://gw:3000`)."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


def batch_api_route(url: str | None) -> str | None:
    """The Batch API collection a URL or path belongs to, named as people know it.

    `http://gw/v1/files/file-1/content` -> `/v1/files`; `.../compatible-mode/v1/batches?limit=1` ->
    `/v1/batches`; anything else -> None. Used to say which route a gateway does not relay.
    """
    if not url:
        return None
    path = urlsplit(url).path.rstrip("/")
    for collection in ("/files", "/batches"):
        at = path.find(collection + "/")
        if path.endswith(collection) or at >= 0:
            end = at + len(collection) if at >= 0 else len(path)
            prefix = path[:end]
            return "/v1" + collection if "/v1" in prefix else prefix
    return None


# A base URL's user:password goes as HTTP Basic auth, in the Authorization header the API key needs.
USERINFO_WITH_KEY_HINT = (
    "Drop user:password@ from the base URL (batchctl profile show says where it comes from), or give no "
    "API key if the server takes Basic auth only."
)


def userinfo_with_key(base_url: str, api_key: str | None, *, key_header: str = "bearer") -> str | None:
    """Why `base_url` and `api_key` cannot go together (its user name or password would be sent as HTTP
    Basic auth in place of a `bearer` key, which the server then never sees), or None. A key in a
    header of its own (`api-key`, azure's) goes beside Basic auth."""
    parts = urlsplit(base_url)
    if not api_key or key_header != "bearer" or not (parts.username or parts.password):
        return None
    return f"the base URL {display_url(base_url)} has a user name or password, which is sent as HTTP Basic auth in place of the API key"

"""The one table of provider limits and conventions (OpenAI, DashScope, New-API, the local server).

Everything that differs between providers -- request and size limits, endpoints, completion windows,
how often to poll, whether `request_counts` move while a batch runs -- is read from here, so the
validator, the CLI and the embedded server agree. Stdlib only: this is imported on every command.

Sizes: "MB" in provider docs is taken as MiB (1 MB = 1,048,576 bytes), as most clients compute it
(`200 * 1024 * 1024`). That is 4.9% more lenient than a decimal reading; a profile can override any
limit (`with_overrides`) where a provider turns out to be stricter.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from batchctl.quirks import WireQuirks, wire_of

MB = 1024 * 1024

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A positive integer and one unit, no leading zero, no spaces: "24h", "30s", "14d".
_WINDOW_RE = re.compile(r"([1-9][0-9]*)([smhd])")

OVERRIDABLE_LIMITS = ("max_requests", "max_file_bytes", "max_line_bytes")


def parse_window(window: str) -> float | None:
    """Seconds in a completion window such as "24h", "30s", "90m" or "14d"; None if it is not one."""
    if not isinstance(window, str):
        return None
    m = _WINDOW_RE.fullmatch(window)
    if m is None:
        return None
    return float(int(m.group(1)) * _SECONDS[m.group(2)])


def format_size(n: int) -> str:
    """Bytes for people, in the module's MB (MiB) convention: "200 MB", "6.5 MB", "812 KB", "90 bytes"."""
    if n >= MB:
        value, unit = n / MB, "MB"
    elif n >= 1024:
        value, unit = n / 1024, "KB"
    else:
        return f"{n:,} bytes"
    text = f"{value:,.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text} {unit}"


@dataclass(frozen=True)
class ProviderSpec:
    """Limits and conventions of one kind of Batch API."""

    name: str  # "openai" | "dashscope" | "newapi" | "local"
    max_requests: int
    max_file_bytes: int
    max_line_bytes: int | None  # None: no per-line limit
    endpoints: tuple[str, ...]
    default_poll_interval: float  # seconds between status polls
    live_counts: bool  # False: request_counts are only trustworthy once the batch has ended
    completion_windows: str  # for people: what `completion_window` accepts
    # How check_completion_window decides: allowed units, and the inclusive range in seconds.
    window_units: str = "h"
    min_window_s: float = 86400.0
    max_window_s: float = 86400.0
    # Query parameters its `GET /batches` filters on, beyond limit/after (`batchctl list` passes them through).
    list_filters: tuple[str, ...] = ()

    @property
    def wire(self) -> WireQuirks:
        """How this provider differs from OpenAI on the wire (`quirks.py`)."""
        return wire_of(self.name)

    def check_completion_window(self, window: str) -> str | None:
        """None if this provider accepts `window`, else a message saying what it accepts."""
        seconds = parse_window(window)
        if (
            seconds is not None
            and window[-1] in self.window_units
            and self.min_window_s <= seconds <= self.max_window_s
        ):
            return None
        return f'completion window "{window}" is not accepted by {self.name}: use {self.completion_windows}'

    def with_overrides(self, **kw: int | None) -> ProviderSpec:
        """A copy with per-profile limits (max_requests, max_file_bytes, max_line_bytes).

        A value of None means "no override" (an unset profile field); max_line_bytes=0 removes the
        per-line limit.
        """
        unknown = sorted(set(kw) - set(OVERRIDABLE_LIMITS))
        if unknown:
            raise ValueError(
                f"cannot override {', '.join(unknown)} of a provider: "
                f"only {', '.join(OVERRIDABLE_LIMITS)} can be set per profile"
            )
        changes: dict[str, int | None] = {}
        for key, value in kw.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key} must be a whole number of at least 1, not {value!r}")
            if value == 0:
                if key != "max_line_bytes":
                    raise ValueError(f"{key} must be a whole number of at least 1, not 0")
                changes[key] = None
            else:
                changes[key] = value
        return dataclasses.replace(self, **changes) if changes else self

    def parts_needed(self, requests: int, size_bytes: int) -> int:
        """How many files a batch input must be split into to fit both the request and size limits.

        By size this is a lower bound: lines differ in length, so a splitter must still check each part.
        """
        by_requests = math.ceil(requests / self.max_requests) if requests else 1
        by_size = math.ceil(size_bytes / self.max_file_bytes) if size_bytes else 1
        return max(1, by_requests, by_size)


_CHAT = "/v1/chat/completions"
_EMBEDDINGS = "/v1/embeddings"
_COMPLETIONS = "/v1/completions"
_RESPONSES = "/v1/responses"
_DS_TEST = "/v1/chat/ds-test"  # DashScope's free test endpoint, for the `batch-test-model`

_DASHSCOPE_WINDOWS = "24h to 336h in hours, or 1d to 14d in days (e.g. 24h, 72h, 7d)"
_DASHSCOPE_LIST_FILTERS = ("ds_name", "status", "create_after", "create_before")

PROVIDERS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec(
        name="openai",
        max_requests=50_000,
        max_file_bytes=200 * MB,
        max_line_bytes=None,
        endpoints=(_CHAT, _EMBEDDINGS, _COMPLETIONS, _RESPONSES),
        default_poll_interval=10.0,
        live_counts=True,
        completion_windows="24h (the only window OpenAI offers)",
        window_units="h",
        min_window_s=86400.0,
        max_window_s=86400.0,
    ),
    # Bailian / DashScope compatible mode. Its current docs say 50,000 requests per file; seed 000
    # (the New-API client's README) still says 10,000 -- a profile can lower the limit to that.
    "dashscope": ProviderSpec(
        name="dashscope",
        max_requests=50_000,
        max_file_bytes=500 * MB,
        max_line_bytes=6 * MB,
        endpoints=(_CHAT, _EMBEDDINGS, _DS_TEST),
        default_poll_interval=60.0,  # the docs ask for no more than one poll a minute
        live_counts=False,  # request_counts stay at 0 until the batch ends
        completion_windows=_DASHSCOPE_WINDOWS,
        window_units="hd",
        min_window_s=24 * 3600.0,
        max_window_s=336 * 3600.0,
        list_filters=_DASHSCOPE_LIST_FILTERS,
    ),
    # The embedded server (`batchctl serve`): short windows such as 30s exist so expiry can be tested.
    "local": ProviderSpec(
        name="local",
        max_requests=50_000,
        max_file_bytes=200 * MB,
        max_line_bytes=6 * MB,  # what `batchctl serve --max-line-mb` refuses by default: validate agrees
        # What its echo model answers (server/echo.py); with --upstream, `serve` accepts any /v1/ endpoint.
        endpoints=(_CHAT, _EMBEDDINGS, _COMPLETIONS, _RESPONSES, "/v1/moderations"),
        default_poll_interval=1.0,  # on loopback: polling every second costs nothing
        live_counts=True,
        completion_windows="a duration such as 30s, 10m, 24h or 7d, at most 336h (14d)",
        window_units="smhd",
        min_window_s=1.0,
        max_window_s=336 * 3600.0,
    ),
}

# A New-API gateway relays batches to an upstream channel, in practice DashScope: the upstream's
# limits, endpoints and windows apply, and its counts are as frozen as DashScope's. The gateway itself
# answers quickly, so it is polled at the usual pace.
PROVIDERS["newapi"] = dataclasses.replace(PROVIDERS["dashscope"], name="newapi", default_poll_interval=10.0)


def get_provider(name: str | None, overrides: dict | None = None) -> ProviderSpec:
    """The spec of provider `name` ("local" when None), with a profile's limit overrides applied."""
    key = "local" if name is None else name.strip().lower()
    spec = PROVIDERS.get(key)
    if spec is None:
        raise ValueError(f"unknown provider {name!r}: known providers are {', '.join(sorted(PROVIDERS))}")
    if overrides:
        spec = spec.with_overrides(**overrides)
    return spec


_LIST_TIME_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def parse_list_time(text: str):
    """A `--create-after/--create-before` value as a datetime (local time when no zone is given).

    Accepts DashScope's own `yyyyMMddHHmmss` and the ISO forms `2025-01-31`, `2025-01-31 08:00[:00]`;
    raises ValueError with the accepted forms otherwise.
    """
    from datetime import datetime

    value = text.strip()
    for fmt in _LIST_TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a time: use yyyyMMddHHmmss (20250131080000) or 2025-01-31[ 08:00[:00]]")


def format_list_time(text: str) -> str:
    """A `--create-after/--create-before` value as DashScope wants it: `yyyyMMddHHmmss`."""
    return parse_list_time(text).strftime("%Y%m%d%H%M%S")


def spec_of(settings) -> ProviderSpec:
    """The limits of a profile's provider with the profile's overrides (`settings`: resolved Settings).

    A profile whose provider or limits are not understood is a ConfigError that says how to fix it.
    """
    from batchctl.errors import ConfigError

    try:
        return get_provider(settings.provider, overrides=dict(settings.limits or {}))
    except ValueError as exc:
        raise ConfigError(
            f"profile {settings.profile_name!r}: {exc}", f"Fix it with: batchctl profile add {settings.profile_name} --force ..."
        ) from None

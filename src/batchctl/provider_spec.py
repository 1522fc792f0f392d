"""One provider's limits and conventions (`ProviderSpec`), and the units they are written in.

The table of providers is `providers.py`; this module is the shape of one row, plus the parsing of
completion windows and the printing of sizes that every row shares. Stdlib only.

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

# Endpoints as request lines name them (`url`), shared by the table's rows.
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"
MODERATIONS = "/v1/moderations"
DS_TEST = "/v1/chat/ds-test"  # DashScope's free test endpoint, for the `batch-test-model`

# `verified` of a row whose figures have not been checked against the provider's current docs; people read
# it (`batchctl providers NAME`, the JSON `verified` field), so it is written for them.
VERIFIED_AS_OF = "2026-11-30"
UNVERIFIED = (
    f"unverified ({VERIFIED_AS_OF}): not checked against the provider's current docs; "
    "check the limits there before relying on them"
)

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
    # What people read (`batchctl providers`, docs/providers.md) and `profile add --preset` fills in.
    title: str = ""  # the provider as people name it
    # The API root a preset profile gets; "" when there is no public one (a gateway or proxy you run).
    # May hold `{placeholders}` (azure: `{resource}`) that `profile add` fills from its options.
    base_url: str = ""
    # Other API roots of the same provider, (label, URL): `profile add --preset NAME-LABEL` picks one.
    other_base_urls: tuple[tuple[str, str], ...] = ()
    batch_discount: float | None = None  # what a batch saves on the synchronous price (0.5: half); None: not its own
    docs_url: str = ""  # the provider's Batch API docs
    verified: str = ""  # where the figures come from: a date they were checked, or why they could not be
    notes: tuple[str, ...] = ()  # quirks a user should know, one sentence each
    unsupported: tuple[str, ...] = ()  # what the provider does not serve that OpenAI does
    # Per-endpoint request limits below max_requests, (endpoint, requests) -- zhipu: embeddings 10,000.
    endpoint_max_requests: tuple[tuple[str, int], ...] = ()
    max_embedding_inputs: int | None = None  # inputs summed over all embedding lines of a file (openai: 50,000)
    refused_params: tuple[str, ...] = ()  # body parameters the provider refuses (moonshot: some sampling ones)
    refused_params_verified: bool = True  # False: from second-hand sources; validate warns instead of refusing
    # `doctor` in the provider's words: (collection, what a missing route means, what to do) for a Batch API
    # collection ("files", "batches") the provider does not serve, and one line every doctor run shows.
    route_advice: tuple[tuple[str, str, str], ...] = ()
    doctor_note: str = ""

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

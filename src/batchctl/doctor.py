"""`batchctl doctor`: what the active profile's server can do, as a list of ok/warn/fail lines with what to do.

Checks: reachability, whether the key is accepted, which Batch API routes are served (files: list, upload,
content; batches: list, create, retrieve, cancel), the New-API channel check, and clock skew from the
`Date` header. Route probes have no side effects: list calls ask for one item, create calls are sent
deliberately empty (a server that serves the route answers 400/422 and creates nothing), retrieve and
cancel use an id that cannot exist. Only `full=True` runs a tiny real batch (`doctor_round_trip`) to prove
the whole round trip.

`classify_route`, `key_check`, `clock_skew_check` decide; `probe` and `run_doctor` do the HTTP; a missing
route is then put in the provider's words by `doctor_provider` (from the provider table).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchctl.api import BatchClient
    from batchctl.config import Settings

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"

PROBE_BATCH_ID = "batch_batchctl_doctor_probe"
PROBE_FILE_ID = "file-batchctl-doctor-probe"
MAX_CLOCK_SKEW_S = 30.0

# A 404 with one of these (or with no JSON body at all) is "no such route", not "no such id".
_ROUTE_MISSING_MARKERS = ("invalid url", "page not found", "no route", "unknown url", "not found")


@dataclass
class CheckResult:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass
class DoctorReport:
    profile: str
    provider: str
    base_url: str
    channel: str | None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "provider": self.provider,
            "base_url": self.base_url,
            "channel": self.channel,
            "ok": not self.failed,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass
class Probe:
    """One HTTP exchange's outcome: a status and the error's message/code, or a connection error."""

    method: str
    path: str
    status: int | None = None
    message: str = ""
    code: str | None = None
    json_body: bool = False
    date: str | None = None
    elapsed_ms: int = 0
    error: str | None = None  # no HTTP answer at all

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


# -- deciding (pure) -----------------------------------------------------------------------------------


def route_missing(p: Probe) -> bool:
    """A 404/405 that means the server has no such route (rather than no such id)."""
    if p.status == 405:
        return True
    if p.status != 404:
        return False
    if not p.json_body:
        return True
    text = p.message.lower()
    return any(marker == text or (marker != "not found" and marker in text) for marker in _ROUTE_MISSING_MARKERS)


def classify_route(name: str, p: Probe, *, kind: str) -> CheckResult:
    """What a probe says about a route. `kind`: "list", "create" (sent empty), "item" (an id that cannot exist)
    or "real" (a real object: only 2xx means served)."""
    from batchctl.urls import batch_api_route

    what = p.label
    if p.error:
        return CheckResult(name, FAIL, f"{what}: no answer ({p.error})", "Check the base URL and the network.")
    status = p.status or 0
    said = f": {p.message}" if p.message else ""
    if 200 <= status < 300:
        return CheckResult(name, OK, f"{what} -> {status}")
    if status == 501 or p.code == "api_not_implemented":
        return CheckResult(
            name,
            FAIL,
            f"this gateway does not relay {batch_api_route(p.path) or p.path} ({what} -> {status} {p.code or 'not implemented'})",
            "Use a gateway build (or provider) that relays the Batch API, e.g. DashScope directly: "
            "batchctl profile add NAME --preset dashscope",
        )
    if status == 401:
        return CheckResult(name, FAIL, f"{what} -> 401, the key was rejected{said}", "Check the API key: batchctl profile show")
    if status == 403:
        return CheckResult(
            name,
            FAIL,
            f"{what} -> 403{said}",
            "On New-API, pinning a channel needs an admin user's key, and the channel must be enabled.",
        )
    if route_missing(p):
        if kind == "list":
            return CheckResult(
                name,
                WARN,
                f"this gateway has no list route {what} ({status})",
                "Listing will not work here; commands that take a batch or file id still do.",
            )
        return CheckResult(name, FAIL, f"this gateway does not serve {what} ({status}){said}", "Use a server that serves the Batch API.")
    if kind in ("create", "item") and status in (400, 404, 409, 422):
        expected = "an empty request" if kind == "create" else "an id that does not exist"
        return CheckResult(name, OK, f"{what} -> {status} for {expected}, so the route is served")
    if status == 429:
        return CheckResult(name, WARN, f"{what} -> 429, rate limited{said}", "Wait a minute and run batchctl doctor again.")
    if status >= 500:
        return CheckResult(name, WARN, f"{what} -> {status}, the server failed{said}", "Try again later; it may be temporary.")
    return CheckResult(name, WARN, f"{what} -> {status}{said}", None)


def key_check(settings: Settings, probes: list[Probe]) -> CheckResult:
    """Whether the key was accepted, judged from the route probes."""
    answered = [p for p in probes if p.status is not None]
    rejected = [p for p in answered if p.status == 401]
    if not settings.api_key and settings.provider != "local":
        if settings.missing_key_env:  # the profile names the variable its key comes from, and it is not set
            missing = f"{settings.missing_key_env} is not set (the profile reads its key from it)"
            return CheckResult("api key", FAIL, missing, f"Set it: export {settings.missing_key_env}=...")
        if rejected or not answered:
            return CheckResult(
                "api key", FAIL, "no API key is configured", "Give one: batchctl profile add NAME --api-key KEY --force, or BATCHCTL_API_KEY."
            )
        return CheckResult("api key", WARN, "no API key is configured, but the server did not ask for one")
    if rejected:
        message = rejected[0].message
        return CheckResult(
            "api key",
            FAIL,
            "the server rejected the key (401)" + (f": {message}" if message else ""),
            "Check the key: batchctl profile show (masked), --api-key or BATCHCTL_API_KEY.",
        )
    forbidden = [p for p in answered if p.status == 403]
    if forbidden and settings.channel:
        return CheckResult(
            "api key",
            FAIL,
            f"the key is valid but the gateway refused the pin to channel {settings.channel} (403): {forbidden[0].message}",
            "Only admin users may pin a channel, and the channel must be enabled (see the channel check).",
        )
    if not answered:
        return CheckResult("api key", SKIP, "not checked: the server did not answer")
    pinned = f" (sent as <key>-{settings.channel})" if settings.channel else ""
    return CheckResult("api key", OK, f"accepted{pinned}")


def clock_skew_check(date_header: str | None, now: float) -> CheckResult:
    """Compare the server's `Date` header with the local clock (elapsed times and expiry depend on it)."""
    if not date_header:
        return CheckResult("clock", SKIP, "the server sent no Date header")
    try:
        server = parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError):
        return CheckResult("clock", SKIP, f"unreadable Date header: {date_header!r}")
    skew = now - server
    # The header has one-second resolution and the request takes time: allow a little.
    if abs(skew) <= MAX_CLOCK_SKEW_S:
        return CheckResult("clock", OK, f"in step with the server (skew {skew:+.0f} s)")
    direction = "ahead of" if skew > 0 else "behind"
    return CheckResult(
        "clock",
        WARN,
        f"the local clock is {abs(skew):.0f} s {direction} the server's",
        "Elapsed times and expiry estimates will be off; sync the clock (e.g. timedatectl set-ntp true).",
    )


def channel_line(settings: Settings, check: Any | None) -> CheckResult:
    """The channel check as a doctor line (`check` is a `newapi.ChannelCheck`, or None when not applicable)."""
    from batchctl import newapi

    if settings.provider != "newapi":
        if settings.channel:
            return CheckResult(
                "channel",
                WARN,
                f"channel {settings.channel} is set but the provider is {settings.provider}; the key is still sent as <key>-{settings.channel}",
                "Channel pinning is a New-API feature; remove --channel / BATCHCTL_CHANNEL for other providers.",
            )
        return CheckResult("channel", SKIP, f"not a New-API profile (provider {settings.provider})")
    if not settings.channel:
        return CheckResult(
            "channel",
            WARN,
            "no channel pinned: the gateway cannot route /v1/files and /v1/batches calls (they carry no model)",
            "Pin the DashScope channel: batchctl profile add NAME --preset newapi --channel ID --force",
        )
    assert check is not None
    if check.problem == newapi.PROBLEM_NO_TOKEN:
        return CheckResult("channel", WARN, check.message, check.hint)
    if not check.ok:
        return CheckResult("channel", FAIL, check.message, check.hint)
    details = "; ".join(check.summary_lines())
    status = WARN if check.warnings else OK
    return CheckResult("channel", status, f"{check.message}; {details}" + "".join(f"; {w}" for w in check.warnings))


# -- doing (HTTP) ----------------------------------------------------------------------------------------


def probe(client: BatchClient, method: str, path: str, **kwargs: Any) -> Probe:
    """Send one request (`client.request_raw`, never raising) and summarise the answer."""
    from batchctl.api.errors import parse_error_body

    raw = client.request_raw(method, path, **kwargs)
    result = Probe(method=method, path=f"{_path_of(client.base_url)}{path}", elapsed_ms=raw.elapsed_ms)
    result.status, result.date, result.error = raw.status, raw.headers.get("date"), raw.error
    if raw.is_error and not raw.error:
        try:
            json.loads(raw.content or b"null")
            result.json_body = bool(raw.content.strip())
        except ValueError:
            result.json_body = False
        fields = parse_error_body(raw.content, status=raw.status or 0, url=raw.url)
        result.message = str(fields.get("message") or "")
        result.code = fields.get("code")
    return result


def _path_of(base_url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(base_url).path.rstrip("/")


def _spec_of(settings: Settings):
    """The provider's spec, for its words on missing routes; None when the profile names no known provider."""
    from batchctl.providers import get_provider

    try:
        return get_provider(settings.provider)
    except ValueError:
        return None


def _first_id(client: BatchClient, path: str) -> str | None:
    """The id of the first item a list route returns (to probe a real object), if any."""
    raw = client.request_raw("GET", path, params={"limit": 1})
    payload = raw.json() if raw.ok else None
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("id"):
        return str(data[0]["id"])
    return None


def _run_checks(
    settings: Settings,
    *,
    full: bool = False,
    client: BatchClient | None = None,
    model: str | None = None,
    transport: Any = None,
    timeout: float = 15.0,
    now: Callable[[], float] = time.time,
    progress: Callable[[str], None] | None = None,
    debug_log: Callable[[str], None] | None = None,
) -> DoctorReport:
    """Run every check for `settings`; `client` is needed only for `full` (the real round trip)."""
    from batchctl import newapi
    from batchctl.api import BatchClient
    from batchctl.api import path_segment as _seg  # ids as one path segment (gemini's `batches/…`)
    from batchctl.doctor_provider import in_provider_words, provider_line
    from batchctl.quirks import wire_of
    from batchctl.urls import USERINFO_WITH_KEY_HINT, display_url, userinfo_with_key

    shown = display_url(settings.base_url)  # in the report, the progress lines and the details
    report = DoctorReport(settings.profile_name, settings.provider, shown, settings.channel)
    say = progress or (lambda _text: None)
    key_header = wire_of(settings.provider).auth_header
    if problem := userinfo_with_key(settings.base_url, settings.api_key, key_header=key_header):  # the key would never be sent
        report.checks.append(CheckResult("auth", FAIL, problem, USERINFO_WITH_KEY_HINT))
        return report
    # Probes are sent once each: a retry would only blur what the server does.
    with BatchClient(
        settings.base_url, settings.api_key, channel=settings.channel, timeout=timeout, max_retries=0,
        debug_log=debug_log, transport=transport, wire=wire_of(settings.provider),
        custom_llm_provider=settings.custom_llm_provider,
    ) as http:  # fmt: skip
        say(f"Probing {shown} …")
        files_list = probe(http, "GET", "/files", params={"limit": 1})
        if files_list.error:
            report.checks.append(
                CheckResult("reachable", FAIL, f"no answer from {shown}: {files_list.error}", "Check the base URL (batchctl profile show) and that the server is running.")
            )
            return report
        report.checks.append(CheckResult("reachable", OK, f"{shown} answered in {files_list.elapsed_ms} ms"))

        batches_list = probe(http, "GET", "/batches", params={"limit": 1})
        real_batch = _first_id(http, "/batches") if batches_list.status == 200 else None
        real_file = _first_id(http, "/files") if files_list.status == 200 else None
        route_probes = [
            ("files: list", files_list, "list"),
            ("files: upload", probe(http, "POST", "/files", files={"purpose": (None, "batch")}), "create"),
            ("files: content", probe(http, "GET", f"/files/{_seg(real_file or PROBE_FILE_ID)}/content"), "real" if real_file else "item"),
            ("batches: list", batches_list, "list"),
            ("batches: create", probe(http, "POST", "/batches", json={}), "create"),
            ("batches: retrieve", probe(http, "GET", f"/batches/{_seg(real_batch or PROBE_BATCH_ID)}"), "real" if real_batch else "item"),
            ("batches: cancel", probe(http, "POST", f"/batches/{PROBE_BATCH_ID}/cancel"), "item"),
        ]
    probes = [p for _, p, _ in route_probes]
    report.checks.append(key_check(settings, probes))
    key_failed = report.checks[-1].status == FAIL
    spec = _spec_of(settings)
    for name, p, kind in route_probes:
        if key_failed and p.status in (401, 403):
            report.checks.append(CheckResult(name, SKIP, f"{p.label}: not known, the key was refused"))
        else:
            report.checks.append(in_provider_words(spec, classify_route(name, p, kind=kind), p))
    note = provider_line(spec)
    if note is not None:
        report.checks.append(note)

    channel_check = None
    if settings.provider == "newapi" and settings.channel:
        say(f"Checking channel {settings.channel} …")
        channel_check = newapi.check_channel_for(settings, model, timeout=timeout, transport=transport, debug_log=debug_log)
    report.checks.append(channel_line(settings, channel_check))
    report.checks.append(clock_skew_check(next((p.date for p in probes if p.date), None), now()))

    if full:
        if client is None:
            raise ValueError("full=True needs a client")
        if report.failed:
            report.checks.append(CheckResult("round trip", SKIP, "not run: fix the failures above first"))
        else:
            say("Running a one-request batch (uploaded, created, cancelled, deleted) …")
            from batchctl.doctor_round_trip import round_trip

            report.checks.append(round_trip(client, settings))
    return report


def run_doctor(settings: Settings, **kwargs: Any) -> DoctorReport:
    """Run every check for `settings` (see `_run_checks`), with secrets masked in what servers said.

    A gateway may echo the token it rejected in its error message; the report is printed and
    `--json`-dumped, so every detail and hint goes through the same masking as the API client's errors.
    """
    from batchctl.api import Redactor

    report = _run_checks(settings, **kwargs)
    redact = Redactor.for_key(settings.api_key, settings.channel, [settings.access_token])
    for check in report.checks:
        check.detail = redact(check.detail)
        check.hint = redact(check.hint) if check.hint else check.hint
    return report

"""New-API channels: what a channel is (`ChannelInfo`), whether it can take a batch, and the channel check.

A New-API gateway pins a request to a channel when the key carries a `-<channel id>` suffix (see
`BatchClient(channel=...)`). Before uploading, `submit` asks the gateway's admin API whether that channel
exists, is enabled and serves the batch's model, as the seed client does.

`parse_channel` and `evaluate_channel` are pure; the HTTP is the API layer's (`client.newapi.channel`), whose
errors `fetch_channel` names as problems; `check_channel` combines them and never raises for an expected failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchctl.errors import BatchctlError
from batchctl.urls import display_url

if TYPE_CHECKING:
    from batchctl.config import Settings

# New-API's common.ChannelStatus* constants.
STATUS_ENABLED = 1
STATUS_MANUALLY_DISABLED = 2
STATUS_AUTO_DISABLED = 3
_STATUS_TEXT = {
    0: "unknown status",
    STATUS_ENABLED: "enabled",
    STATUS_MANUALLY_DISABLED: "disabled by an admin",
    STATUS_AUTO_DISABLED: "disabled automatically (after upstream failures)",
}

# New-API's constant.ChannelType*; only the ones people meet with Batch APIs are named.
CHANNEL_TYPE_OPENAI = 1
CHANNEL_TYPE_AZURE = 3
CHANNEL_TYPE_CUSTOM = 8
CHANNEL_TYPE_ALI = 17  # Alibaba Bailian / DashScope
_TYPE_NAMES = {
    CHANNEL_TYPE_OPENAI: "OpenAI",
    CHANNEL_TYPE_AZURE: "Azure OpenAI",
    CHANNEL_TYPE_CUSTOM: "Custom",
    CHANNEL_TYPE_ALI: "Alibaba DashScope",
}
# New-API's default base URL for an Ali channel whose base_url is left empty.
DASHSCOPE_DEFAULT_BASE = "https://dashscope.aliyuncs.com"

ACCESS_TOKEN_HINT = (
    "Give the profile a dashboard access token and your user id: "
    "batchctl profile add NAME --preset newapi --access-token TOKEN --user-id ID --force "
    "(New-API: Personal settings -> Generate access token; the user id is shown there too)."
)


def channel_type_name(channel_type: int | None) -> str:
    if channel_type is None:
        return "unknown type"
    return _TYPE_NAMES.get(channel_type, f"type {channel_type}")


@dataclass(frozen=True)
class ChannelInfo:
    """What the gateway's admin API says about one channel."""

    id: int | str
    name: str
    type: int | None
    status: int | None
    base_url: str
    models: tuple[str, ...] = ()
    model_mapping: Mapping[str, str] = field(default_factory=dict)
    mapping_error: str | None = None  # model_mapping was there but not a JSON object

    @property
    def enabled(self) -> bool:
        return self.status == STATUS_ENABLED

    @property
    def status_text(self) -> str:
        return _STATUS_TEXT.get(self.status or 0, f"status {self.status}")

    @property
    def type_name(self) -> str:
        return channel_type_name(self.type)

    @property
    def is_dashscope(self) -> bool:
        return self.type == CHANNEL_TYPE_ALI

    @property
    def upstream_endpoint(self) -> str | None:
        """Where the gateway relays Batch calls: `{base_url}/compatible-mode/v1` for DashScope channels."""
        base = self.base_url.rstrip("/")
        if self.is_dashscope:
            base = base or DASHSCOPE_DEFAULT_BASE
            return base if base.endswith("/compatible-mode/v1") else f"{base}/compatible-mode/v1"
        return base or None

    def serves(self, model: str) -> bool:
        """True when `model` is one of the channel's models or a key of its model mapping."""
        return model in self.models or model in self.model_mapping

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "type_name": self.type_name,
            "status": self.status,
            "status_text": self.status_text,
            "enabled": self.enabled,
            "base_url": display_url(self.base_url),
            "upstream_endpoint": self.upstream_endpoint,
            "models": list(self.models),
            "model_mapping": dict(self.model_mapping),
        }


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_channel(data: Mapping[str, Any]) -> ChannelInfo:
    """A ChannelInfo from the `data` object of `GET /api/channel/{id}`.

    `models` is a comma-separated string; `model_mapping` a JSON object encoded as a string (or empty).
    """
    raw_models = data.get("models") or ""
    if isinstance(raw_models, str):
        models = tuple(m.strip() for m in raw_models.split(",") if m.strip())
    else:
        models = tuple(str(m).strip() for m in raw_models if str(m).strip())
    mapping: dict[str, str] = {}
    mapping_error = None
    raw_mapping = data.get("model_mapping")
    if isinstance(raw_mapping, str) and raw_mapping.strip():
        try:
            decoded = json.loads(raw_mapping)
        except ValueError as exc:
            decoded, mapping_error = None, f"model_mapping is not valid JSON ({exc.msg})"
        if decoded is not None and not isinstance(decoded, dict):
            mapping_error = "model_mapping is not a JSON object"
        elif isinstance(decoded, dict):
            mapping = {str(k): str(v) for k, v in decoded.items()}
    elif isinstance(raw_mapping, dict):
        mapping = {str(k): str(v) for k, v in raw_mapping.items()}
    return ChannelInfo(
        id=data.get("id", ""),
        name=str(data.get("name") or ""),
        type=_int_or_none(data.get("type")),
        status=_int_or_none(data.get("status")),
        base_url=str(data.get("base_url") or ""),
        models=models,
        model_mapping=mapping,
        mapping_error=mapping_error,
    )


# -- the check -----------------------------------------------------------------------------------------

# Why a check failed; scripts may rely on these names (`--json`).
PROBLEM_NO_TOKEN = "no_access_token"
PROBLEM_UNAUTHORIZED = "unauthorized"
PROBLEM_FORBIDDEN = "forbidden"
PROBLEM_REFUSED = "refused"  # HTTP 200 with success: false, for another reason
PROBLEM_MISSING = "missing"
PROBLEM_DISABLED = "disabled"
PROBLEM_MODEL = "model_not_served"
PROBLEM_UNREACHABLE = "unreachable"
PROBLEM_BAD_RESPONSE = "bad_response"


@dataclass
class ChannelCheck:
    """The outcome of checking a channel: `ok`, or a `problem` with a message and what to do."""

    channel_id: str
    model: str | None = None
    channel: ChannelInfo | None = None
    problem: str | None = None
    message: str = ""
    hint: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def checked(self) -> bool:
        """False when nothing could be asked (no access token): not a failure, just unknown."""
        return self.problem != PROBLEM_NO_TOKEN

    def summary_lines(self) -> list[str]:
        """The seed client's pre-flight lines: channel name and id, upstream endpoint."""
        lines = []
        if self.channel is not None:
            ch = self.channel
            lines.append(f"channel: {ch.name or '(no name)'} (id {ch.id}, {ch.type_name}, {ch.status_text})")
            if ch.upstream_endpoint:
                lines.append(f"upstream endpoint: {ch.upstream_endpoint}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "channel_id": self.channel_id,
            "model": self.model,
            "problem": self.problem,
            "message": self.message,
            "hint": self.hint,
            "warnings": list(self.warnings),
            "channel": self.channel.to_dict() if self.channel else None,
        }

    def to_error(self) -> BatchctlError:
        """A BatchctlError for a failed check (for commands that stop on it)."""
        hint = self.hint
        if self.problem not in (PROBLEM_NO_TOKEN, PROBLEM_UNREACHABLE, PROBLEM_BAD_RESPONSE):
            hint = (hint + " " if hint else "") + "To skip this check: --no-check."
        return BatchctlError(self.message, hint=hint)


def evaluate_channel(info: ChannelInfo, channel_id: str, model: str | None) -> ChannelCheck:
    """Decide whether `info` can take a batch for `model` (None: the model is not checked)."""
    check = ChannelCheck(channel_id=str(channel_id), model=model, channel=info)
    label = f"channel {channel_id}" + (f" ({info.name})" if info.name else "")
    if info.mapping_error:
        check.warnings.append(f"{label}: {info.mapping_error}; only its model list was checked")
    if not info.is_dashscope:
        check.warnings.append(
            f"{label} is a {info.type_name} channel, not DashScope (type {CHANNEL_TYPE_ALI}); "
            "New-API relays batches to DashScope channels, other channels may answer 501"
        )
    if not info.enabled:
        check.problem = PROBLEM_DISABLED
        check.message = f"{label} is {info.status_text}; the gateway refuses requests pinned to it (HTTP 403)"
        check.hint = "Enable it in the New-API dashboard (Channels), or use another channel: --channel ID."
        return check
    if model is not None and not info.serves(model):
        served = ", ".join(sorted(set(info.models) | set(info.model_mapping))) or "none"
        check.problem = PROBLEM_MODEL
        check.message = f"{label} does not serve model {model!r} (it serves: {served})"
        check.hint = (
            "Add the model to the channel's models (or model mapping) in the New-API dashboard, "
            "or pick the channel that serves it: --channel ID."
        )
        return check
    served_note = f" and serves {model!r}" if model else ""
    check.message = f"{label} exists, is enabled{served_note}"
    return check


class ChannelLookupError(BatchctlError):
    """Asking the gateway about a channel failed; `problem` says how (one of the PROBLEM_* names)."""

    def __init__(self, problem: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.problem = problem


_MISSING_HINT = "Check the channel id in the New-API dashboard (Channels), and the profile's --channel."


def _refusal(message: str, status: int, channel_id: str) -> ChannelLookupError:
    lowered = message.lower()
    if "not found" in lowered or "record not found" in lowered:
        return ChannelLookupError(PROBLEM_MISSING, f"channel {channel_id} does not exist on this gateway ({message})", _MISSING_HINT)
    # New-API's admin auth answers 401 for a missing/invalid token or user id, and HTTP 200 with
    # "无权进行此操作，权限不足" ("insufficient permission") for a user who is not an admin.
    if status == 403 or "权限不足" in message or "permission" in lowered or "admin" in lowered:
        return ChannelLookupError(
            PROBLEM_FORBIDDEN,
            f"the access token's user may not read channels (HTTP {status}): {message}",
            "Channel details (and channel pinning) need an admin user's access token and user id.",
        )
    if status == 401 or "access token" in lowered or "new-api-user" in lowered or "无权" in message:
        return ChannelLookupError(
            PROBLEM_UNAUTHORIZED,
            f"the gateway rejected the access token (HTTP {status}): {message}",
            "Check the profile's --access-token (a dashboard access token, not the sk- key) and --user-id "
            "(they must belong to the same user).",
        )
    return ChannelLookupError(
        PROBLEM_REFUSED,
        f"the gateway refused to show channel {channel_id} (HTTP {status}): {message}",
        "Check --access-token and --user-id, and that the user is an admin.",
    )


def fetch_channel(
    base_url: str,
    channel_id: str,
    *,
    access_token: str,
    user_id: str | None,
    timeout: float = 15.0,
    transport: Any = None,
    debug_log: Callable[[str], None] | None = None,
) -> ChannelInfo:
    """`GET {root}/api/channel/{id}` (`client.newapi.channel`); raises ChannelLookupError for every way that can fail."""
    from batchctl.api import APIConnectionError, APIResponseValidationError, APIStatusError, BatchClient, NotFoundError

    with BatchClient(base_url, timeout=timeout, max_retries=0, debug_log=debug_log, transport=transport) as client:
        try:
            data = client.newapi.channel(channel_id, access_token=access_token, user_id=user_id)
        except APIConnectionError as exc:
            raise ChannelLookupError(
                PROBLEM_UNREACHABLE, exc.message, "Check the profile's base URL and that the gateway is running."
            ) from exc
        except NotFoundError as exc:
            said = f": {exc.message}" if exc.message else ""
            raise ChannelLookupError(
                PROBLEM_MISSING, f"channel {channel_id} does not exist on this gateway (HTTP 404){said}", _MISSING_HINT
            ) from exc
        except APIResponseValidationError as exc:
            raise ChannelLookupError(
                PROBLEM_BAD_RESPONSE, exc.message, "Check the profile's base URL; channel checks only work with New-API."
            ) from exc
        except APIStatusError as exc:
            raise _refusal(exc.message, exc.status or 0, channel_id) from exc
    if not isinstance(data, dict) or not data:
        raise ChannelLookupError(
            PROBLEM_MISSING,
            f"channel {channel_id} does not exist on this gateway (the answer has no channel data)",
            _MISSING_HINT,
        )
    return parse_channel(data)


def check_channel(
    base_url: str,
    channel_id: str | None,
    *,
    access_token: str | None,
    user_id: str | None,
    model: str | None = None,
    timeout: float = 15.0,
    transport: Any = None,
    debug_log: Callable[[str], None] | None = None,
) -> ChannelCheck:
    """Check that `channel_id` exists on the gateway, is enabled and serves `model`; never raises for that."""
    channel_id = str(channel_id or "")
    try:
        _askable(channel_id, access_token)
        info = fetch_channel(
            base_url, channel_id, access_token=access_token or "", user_id=user_id,
            timeout=timeout, transport=transport, debug_log=debug_log,
        )  # fmt: skip
    except ChannelLookupError as exc:
        return ChannelCheck(channel_id=channel_id, model=model, problem=exc.problem, message=exc.message, hint=exc.hint)
    return evaluate_channel(info, channel_id, model)


def _askable(channel_id: str, access_token: str | None) -> None:
    """Raise ChannelLookupError when there is nothing to ask: no channel, a non-numeric one, no access token."""
    if not channel_id:
        raise ChannelLookupError(
            PROBLEM_MISSING,
            "no channel to check: the profile pins no New-API channel",
            "Add one: batchctl profile add NAME --preset newapi --channel ID --force, or pass --channel ID.",
        )
    if not channel_id.isdigit():
        raise ChannelLookupError(
            PROBLEM_MISSING,
            f"channel id {channel_id!r} is not a number; the gateway answers 400 to such a pin",
            "Use the numeric id shown in the New-API dashboard (Channels).",
        )
    if not access_token:
        raise ChannelLookupError(
            PROBLEM_NO_TOKEN,
            f"could not check channel {channel_id}: the profile has no New-API access token, so whether it "
            "exists, is enabled and serves the model is unknown",
            ACCESS_TOKEN_HINT,
        )


def check_channel_for(
    settings: Settings,
    model: str | None,
    *,
    timeout: float,
    transport: Any,
    debug_log: Callable[[str], None] | None,
) -> ChannelCheck:
    """`check_channel` for the gateway, pinned channel and admin credentials of resolved `settings`."""
    return check_channel(
        settings.base_url, settings.channel, access_token=settings.access_token, user_id=settings.user_id,
        model=model, timeout=timeout, transport=transport, debug_log=debug_log,
    )  # fmt: skip

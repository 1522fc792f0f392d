"""The one table of provider limits and conventions (OpenAI, DashScope, New-API, the local server).

Everything that differs between providers -- request and size limits, endpoints, completion windows,
how often to poll, whether `request_counts` move while a batch runs -- is read from here, so the
validator, the CLI and the embedded server agree. Stdlib only: this is imported on every command.
The row's shape (`ProviderSpec`) and the units are in `provider_spec.py`; the presets beyond OpenAI,
DashScope, New-API and the local server (groq, together, zhipu, moonshot, gemini, azure, litellm) are in
`provider_presets.py`. docs/providers.md says where each figure comes from.
"""

from __future__ import annotations

import dataclasses

from batchctl.provider_presets import PRESET_PROVIDERS

# The shape of a row and its units live in provider_spec.py; re-exported here, where callers look.
from batchctl.provider_spec import (  # noqa: F401
    CHAT as _CHAT,
    COMPLETIONS as _COMPLETIONS,
    DS_TEST as _DS_TEST,
    EMBEDDINGS as _EMBEDDINGS,
    MB,
    MODERATIONS as _MODERATIONS,
    OVERRIDABLE_LIMITS,
    RESPONSES as _RESPONSES,
    UNVERIFIED as _UNVERIFIED,
    VERIFIED_AS_OF,
    ProviderSpec,
    format_size,
    parse_window,
)

_OPENAI_MEDIA = ("/v1/images/generations", "/v1/images/edits", "/v1/videos")

_DASHSCOPE_WINDOWS = "24h to 336h in hours, or 1d to 14d in days (e.g. 24h, 72h, 7d)"
_DASHSCOPE_LIST_FILTERS = ("ds_name", "status", "create_after", "create_before")

PROVIDERS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec(
        name="openai",
        max_requests=50_000,
        max_file_bytes=200 * MB,
        max_line_bytes=None,
        endpoints=(_RESPONSES, _CHAT, _EMBEDDINGS, _COMPLETIONS, _MODERATIONS, *_OPENAI_MEDIA),
        default_poll_interval=10.0,
        live_counts=True,
        completion_windows="24h (the only window OpenAI offers)",
        window_units="h",
        min_window_s=86400.0,
        max_window_s=86400.0,
        title="OpenAI",
        base_url="https://api.openai.com/v1",
        batch_discount=0.5,
        docs_url="https://platform.openai.com/docs/guides/batch",
        verified=_UNVERIFIED,
        max_embedding_inputs=50_000,
        notes=(
            "`output_expires_after` sets how long the output file is kept.",
            "A finished batch reports its token `usage` and `model`.",
        ),
    ),
    # Bailian / DashScope compatible mode. Its docs say 50,000 requests per file; the New-API client's
    # README still says 10,000 -- a profile can lower the limit to that.
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
        title="DashScope (Alibaba Cloud Bailian / Model Studio, compatible mode)",
        base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        batch_discount=0.5,
        other_base_urls=(
            ("intl", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),  # Singapore
            # The workspace endpoint (unverified): `--workspace-id ID` fills it in.
            ("intl-workspace", "https://{workspace_id}.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1"),
        ),
        docs_url="https://help.aliyun.com/zh/model-studio/batch-interfaces-compatible-with-openai",
        verified=(
            "routes and behaviour checked against the New-API client and its README (2025-10-23); limits, "
            f"endpoints, windows and the workspace endpoint unverified ({VERIFIED_AS_OF}): not checked against "
            "the provider's current docs; check the limits there before relying on them"
        ),
        notes=(
            "`request_counts` stay at 0 until the batch ends.",
            "The free `batch-test-model` answers on /v1/chat/ds-test: try a file without cost.",
            "`metadata.ds_name` / `ds_description` name the task in the console.",
            "Poll at most once a minute; batches stay retrievable for 30 days.",
        ),
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
PROVIDERS["newapi"] = dataclasses.replace(
    PROVIDERS["dashscope"],
    name="newapi",
    default_poll_interval=10.0,
    title="New-API gateway (relaying to DashScope)",
    base_url="http://localhost:3000/v1",
    other_base_urls=(),
    docs_url="https://github.com/QuantumNous/new-api",
    verified=(
        "checked against the New-API client's README (2025-10-23) and a stand-in of the gateway; the limits "
        "are DashScope's (see `batchctl providers dashscope`)"
    ),
    notes=(
        "Pin the DashScope channel: the key becomes `sk-KEY-<channel>` (`--channel`).",
        "Limits, endpoints and windows are the upstream's (DashScope).",
    ),
    unsupported=("stock New-API does not relay /v1/files (501): use `batchctl serve --upstream` in front of it",),
    route_advice=(
        (
            "files",
            "this gateway does not relay /v1/files: use `batchctl serve --upstream` in front of it",
            "batchctl serve --upstream GATEWAY_URL/v1 --upstream-key KEY runs the batch itself and sends each "
            "request through the gateway (they carry a model, so no channel pin is needed); then use a profile "
            "of that server (--preset local).",
        ),
    ),
)
PROVIDERS.update(PRESET_PROVIDERS)


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

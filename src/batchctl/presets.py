"""Presets and the provider catalogue: what `profile add --preset NAME` fills in, and what
`batchctl providers` shows of each row of the provider table (`providers.py`). No network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict

from batchctl.config import PRESETS
from batchctl.errors import EXIT_USAGE, BatchctlError
from batchctl.providers import PROVIDERS, ProviderSpec

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _metavar(placeholder: str) -> str:
    """How the option's help names its value: `--workspace-id ID`, `--resource NAME`."""
    return "ID" if placeholder.endswith("_id") else "NAME"


def preset_base_url(preset: str, values: Mapping[str, str | None], *, base_url: str | None = None) -> tuple[str, str]:
    """(base URL, provider) of `profile add --preset NAME`, its `{placeholders}` filled from `values`.

    `values` maps a placeholder (`resource`, `workspace_id`) to the value of its option (`--resource`);
    an explicit `base_url` wins and needs none. A usage error (EXIT_USAGE) says which preset is unknown
    or which option is missing, with the URL it would fill.
    """
    if preset not in PRESETS:
        raise BatchctlError(
            f"unknown preset {preset!r}", f"Use one of: {', '.join(PRESETS)} (see: batchctl providers).", EXIT_USAGE
        )
    template, provider = PRESETS[preset]
    wanted = _PLACEHOLDER.findall(template)
    unused = [key for key, value in values.items() if value and key not in wanted]
    if unused:
        option = "--" + unused[0].replace("_", "-")
        raise BatchctlError(f"{option} is not used by preset {preset} (its base URL is {template})", None, EXIT_USAGE)
    if base_url:
        given = [key for key in wanted if values.get(key)]
        if given:
            option = "--" + given[0].replace("_", "-")
            raise BatchctlError(
                f"{option} fills preset {preset}'s base URL ({template}), but --base-url gives the whole URL",
                f"Give one of them: --preset {preset} {option} {_metavar(given[0])}, or --preset {preset} --base-url URL.",
                EXIT_USAGE,
            )
        return base_url, provider
    url = template
    for key in wanted:
        value = (values.get(key) or "").strip()
        option = "--" + key.replace("_", "-")
        if not value:
            raise BatchctlError(
                f"preset {preset} needs {option} {_metavar(key)} to fill its base URL {template}",
                f"Add {option} {_metavar(key)}, or give the whole URL with --base-url URL.",
                EXIT_USAGE,
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", value):
            raise BatchctlError(f"{option} {value!r} is not a host name label", "Use letters, digits and '-'.", EXIT_USAGE)
        url = url.replace("{" + key + "}", value)
    return url, provider


def provider_view(spec: ProviderSpec) -> dict:
    """One provider as `batchctl providers --json` prints it (docs/json.md: Provider)."""
    presets = {name: url for name, (url, provider) in PRESETS.items() if provider == spec.name}
    return {
        "name": spec.name,
        "title": spec.title or spec.name,
        "base_url": presets.get(spec.name, spec.base_url) or None,
        "presets": presets,
        "max_requests": spec.max_requests,
        "max_file_bytes": spec.max_file_bytes,
        "max_line_bytes": spec.max_line_bytes,
        "max_embedding_inputs": spec.max_embedding_inputs,
        "endpoint_max_requests": dict(spec.endpoint_max_requests),
        "endpoints": list(spec.endpoints),
        "completion_windows": spec.completion_windows,
        "default_poll_interval": spec.default_poll_interval,
        "live_counts": spec.live_counts,
        "list_filters": list(spec.list_filters),
        "batch_discount": spec.batch_discount,
        "notes": list(spec.notes),
        "unsupported": list(spec.unsupported),
        "refused_params": list(spec.refused_params),
        "refused_params_verified": spec.refused_params_verified,
        "wire": asdict(spec.wire),
        "docs_url": spec.docs_url or None,
        "verified": spec.verified or None,
    }


def provider_views(name: str | None = None) -> list[dict]:
    """Every provider of the table (or the one named), in the table's order; unknown `name` is a usage error."""
    if name is None:
        return [provider_view(spec) for spec in PROVIDERS.values()]
    spec = PROVIDERS.get(name.strip().lower())
    if spec is None:
        raise BatchctlError(
            f"unknown provider {name!r}", f"Known providers: {', '.join(PROVIDERS)} (batchctl providers).", EXIT_USAGE
        )
    return [provider_view(spec)]

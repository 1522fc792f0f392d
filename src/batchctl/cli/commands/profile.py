"""`batchctl profile ...`: add, list, use, show and remove connection profiles."""

from __future__ import annotations

import os
import re
import sys
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, complete_presets, complete_profile_names, complete_provider_kinds

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)

NameArg = Annotated[str, typer.Argument(help="Profile name.", autocompletion=complete_profile_names, show_default=False, metavar="NAME")]


# What `profile add` accepts as a name: one word for -p NAME, config.toml and shell history.
PROFILE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _mask(secret: str | None) -> str | None:
    from batchctl.masking import mask_secret

    return mask_secret(secret) if secret else None


def profile_view(profile, *, active: bool) -> dict:
    """What people and scripts see of a profile: the resolved URL, secrets (a URL's password too) masked;
    the `local` profile's URL where its server runs (`BATCHCTL_SERVE_PORT` moves it)."""
    from batchctl.config import LOCAL_PROFILE, _on_serve_port
    from batchctl.urls import display_url, normalize_base_url, shown_url

    try:
        normalized = normalize_base_url(profile.base_url)
    except ValueError:  # stored before such URLs were refused (a query): shown, refused when used
        url = shown_url(profile.base_url)
    else:
        if profile.name == LOCAL_PROFILE and profile.provider == "local":
            # Where commands reach it (`resolve_settings`): a loopback URL on BATCHCTL_SERVE_PORT's port when
            # set; another machine's as stored (not the built-in URL `local_server_url` falls back to).
            normalized = _on_serve_port(normalized, os.environ)
        url = display_url(normalized)
    return {
        "name": profile.name,
        "active": active,
        "provider": profile.provider,
        "base_url": url,
        "api_key": _mask(profile.api_key),
        "api_key_env": profile.api_key_env,
        "api_key_env_set": bool(os.environ.get(profile.api_key_env)) if profile.api_key_env else None,
        "channel": profile.channel,
        "poll_interval": profile.poll_interval,
        "access_token": _mask(profile.access_token),
        "user_id": profile.user_id,
        "limits": dict(profile.limits) or None,
        "custom_llm_provider": profile.custom_llm_provider,  # LiteLLM's routing field (config.toml)
    }


# Where the profile in use was chosen, as people name it (Settings.sources["profile"] -> words).
_IN_USE_FROM = {"flag": "-p/--profile", "env BATCHCTL_PROFILE": "BATCHCTL_PROFILE", "config": "profile use", "default": "the default"}


def _active_name(config) -> str:
    from batchctl.config import LOCAL_PROFILE

    return config.active or LOCAL_PROFILE


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="API root, e.g. https://api.openai.com/v1 (a bare host gets /v1).")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Fill in base URL and provider from a preset (list: batchctl providers), e.g. openai, dashscope, "
            "dashscope-intl, newapi, groq, together, zhipu, moonshot, gemini, azure, litellm, local.",
            autocompletion=complete_presets,
        ),
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", metavar="NAME", help="Azure resource name: --preset azure fills https://NAME.openai.azure.com/openai/v1/.")
    ] = None,
    workspace_id: Annotated[
        str | None, typer.Option("--workspace-id", metavar="ID", help="DashScope workspace id, for --preset dashscope-intl-workspace.")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider", help="Provider kind (selects limits; list: batchctl providers).", autocompletion=complete_provider_kinds
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="API key to store (prompted, hidden, when omitted on a terminal).")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Read the key from this environment variable instead of storing it.")
    ] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="New-API channel id to pin requests to.")] = None,
    access_token: Annotated[
        str | None, typer.Option("--access-token", help="New-API dashboard access token (for the channel check).")
    ] = None,
    user_id: Annotated[str | None, typer.Option("--user-id", help="New-API user id (sent as New-Api-User).")] = None,
    poll_interval: Annotated[
        float | None, typer.Option("--poll-interval", min=0.1, help="Default seconds between status polls.")
    ] = None,
    max_requests: Annotated[int | None, typer.Option("--max-requests", min=1, help="Override the provider's request limit per file.")] = None,
    max_file_mb: Annotated[float | None, typer.Option("--max-file-mb", min=0.001, help="Override the provider's file size limit (MB; 0.5 for 512 KB).")] = None,
    max_line_mb: Annotated[float | None, typer.Option("--max-line-mb", min=0.001, help="Override the provider's per-line size limit (MB).")] = None,
    use: Annotated[bool, typer.Option("--use/--no-use", help="Make it the active profile.")] = True,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace an existing profile of that name.")] = False,
) -> None:
    """Add a profile (or replace one with --force); it becomes the active one unless --no-use.

    Example: batchctl profile add work --preset openai --api-key-env OPENAI_API_KEY
    """
    from batchctl.config import PROVIDER_KINDS, Profile, load_config, save_config
    from batchctl.presets import preset_base_url
    from batchctl.errors import BatchctlError

    state = AppState.get(ctx)
    out = state.out
    if not PROFILE_NAME.fullmatch(name):
        raise BatchctlError(f"{name!r} is not a usable profile name",
                            "Use letters, digits, '_', '.' and '-' only (e.g. work-eu).")  # fmt: skip
    placeholders = {"resource": resource, "workspace_id": workspace_id}
    if preset is not None:
        explicit = base_url
        base_url, preset_provider = preset_base_url(preset, placeholders, base_url=base_url)
        provider = provider or preset_provider
        if preset_provider == "local" and not explicit:  # this data dir's local server, where it runs (BATCHCTL_SERVE_PORT)
            from batchctl.config import local_server_url

            base_url = local_server_url()
    elif resource or workspace_id:
        raise typer.BadParameter("--resource and --workspace-id fill a preset's URL: give --preset too", param_hint="--preset")
    if not base_url:
        raise typer.BadParameter("give --base-url URL or --preset NAME", param_hint="--base-url")
    from batchctl.urls import normalize_base_url

    try:
        normalize_base_url(base_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--base-url") from None
    provider = provider or "openai"
    if provider not in PROVIDER_KINDS:
        raise typer.BadParameter(f"unknown provider {provider!r}; use one of: {', '.join(PROVIDER_KINDS)}", param_hint="--provider")

    from batchctl.config import channel_warning, check_channel
    from batchctl.masking import userinfo_secrets

    channel = check_channel(channel, "--channel")
    config = load_config()
    if name in config.profiles and not force:
        raise BatchctlError(f"a profile named {name!r} already exists", hint=f"Use --force to replace it, or: batchctl profile remove {name}")
    if api_key is None and api_key_env is None and provider != "local" and sys.stdin.isatty():
        api_key = typer.prompt("API key (hidden, empty for none)", hide_input=True, default="", show_default=False) or None

    limits = {}
    if max_requests:
        limits["max_requests"] = max_requests
    if max_file_mb:
        limits["max_file_bytes"] = int(max_file_mb * 1024 * 1024)
    if max_line_mb:
        limits["max_line_bytes"] = int(max_line_mb * 1024 * 1024)
    profile = Profile(
        name=name,
        base_url=base_url,
        provider=provider,
        api_key=api_key,
        api_key_env=api_key_env,
        channel=channel,
        poll_interval=poll_interval,
        access_token=access_token,
        user_id=user_id,
        limits=limits,
    )
    config.profiles[name] = profile
    if use:
        config.active = name
    path = save_config(config)
    active = _active_name(config) == name
    out.result(profile_view(profile, active=active))
    out.success(f"Saved profile {name!r} to {path}" + (" (active)" if active else ""))
    if api_key_env and not os.environ.get(api_key_env) and not api_key:
        out.warn(f"{api_key_env} is not set: commands with this profile will stop until it is (export {api_key_env}=...)")
    if warning := channel_warning(provider, channel):
        out.warn(warning)
    if not api_key and not api_key_env and provider != "local" and not userinfo_secrets(base_url):
        # A URL's user:password authenticates by itself (Basic): a key beside it is refused.
        out.warn("no API key stored; give one with --api-key, BATCHCTL_API_KEY, or --api-key-env NAME")


@app.command("list")
def list_profiles(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List profiles; the active one is marked with *, keys are masked.

    Example: batchctl profile list --json
    """
    from batchctl.config import BUILTIN_LOCAL, LOCAL_PROFILE, load_config

    state = AppState.get(ctx, json_=json_)
    config = load_config()
    active = _active_name(config)
    profiles = dict(config.profiles)
    profiles.setdefault(LOCAL_PROFILE, BUILTIN_LOCAL)
    views = [profile_view(p, active=p.name == active) for _, p in sorted(profiles.items())]
    state.out.result(
        views,
        human=lambda: state.out.table(
            ["", "name", "provider", "base URL", "API key", "channel"],
            [
                ["*" if v["active"] else "", v["name"], v["provider"], v["base_url"], v["api_key"] or (f"${v['api_key_env']}" if v["api_key_env"] else "-"), v["channel"] or ""]
                for v in views
            ],
        ),
        ids=[v["name"] for v in views],
    )


@app.command("use")
def use_profile(ctx: typer.Context, name: NameArg) -> None:
    """Make NAME the active profile (a -p NAME or BATCHCTL_PROFILE still wins for one command).

    Example: batchctl profile use bailian
    """
    from batchctl.config import load_config, save_config

    state = AppState.get(ctx)
    config = load_config()
    config.get(name)  # raises a ConfigError listing the known names
    config.active = name
    save_config(config)
    state.out.success(f"Active profile: {name}")


@app.command("show")
def show_profile(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Profile name (default: the one in use).", autocompletion=complete_profile_names, metavar="NAME")] = None,
    json_: JsonOpt = False,
) -> None:
    """Show a profile with its resolved base URL (keys masked) and, for the one in use, where each value comes from.

    Example: batchctl profile show -p work
    """
    from batchctl.masking import mask_secret
    from batchctl.config import load_config
    from batchctl.urls import display_url

    state = AppState.get(ctx, json_=json_)
    config = load_config()
    if name is None:
        settings = state.settings()
        view = profile_view(config.get(settings.profile_name), active=settings.profile_name == _active_name(config))
        # The effective values after flags and env vars, which is what commands will use.
        view.update(
            base_url=display_url(settings.base_url),
            provider=settings.provider,
            api_key=mask_secret(settings.api_key) if settings.api_key else None,
            channel=settings.channel,
            in_use=_IN_USE_FROM.get(settings.sources.get("profile", ""), settings.sources.get("profile")),
            sources=dict(settings.sources),
        )
    else:
        view = profile_view(config.get(name), active=name == _active_name(config))

    def show() -> None:
        width = max(len(key) for key in view if key not in ("sources", "api_key_env_set"))
        for key, value in view.items():
            if key in ("sources", "api_key_env_set"):
                continue
            if key == "in_use":
                value = f"yes (from {value})"
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            elif key == "api_key_env" and value and not view["api_key_env_set"]:
                value = f"{value} (not set)"
            source = view.get("sources", {}).get(key)
            state.out.line(f"{key:<{width}} {'-' if value is None or value == '' else value}" + (f"  ({source})" if source else ""))

    state.out.result(view, human=show)


@app.command("remove")
def remove_profile(ctx: typer.Context, name: NameArg) -> None:
    """Remove the profile NAME (its batches stay on the server; the journal still knows them).

    Example: batchctl profile remove old-gateway
    """
    from batchctl.config import load_config, save_config
    from batchctl.errors import BatchctlError

    state = AppState.get(ctx)
    config = load_config()
    if name not in config.profiles:
        from batchctl.config import LOCAL_PROFILE

        if name == LOCAL_PROFILE:
            raise BatchctlError(
                "the 'local' profile is built in and cannot be removed",
                hint="Make another one active instead: batchctl profile use NAME",
            )
        raise BatchctlError(f"no profile named {name!r}", hint="See them with: batchctl profile list")
    del config.profiles[name]
    if config.active == name:
        config.active = None
    save_config(config)
    state.out.success(f"Removed profile {name!r}" + ("; the built-in 'local' profile is active now" if config.active is None else ""))

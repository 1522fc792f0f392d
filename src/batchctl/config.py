"""Profiles and settings: one TOML file under platformdirs' config dir, plus the data dir.

`BATCHCTL_CONFIG_DIR` and `BATCHCTL_DATA_DIR` override the directories (tests use them). Settings are
resolved with the precedence command-line flag > environment variable > active profile > the
built-in `local` profile, which points at the embedded server (`batchctl serve`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from batchctl.errors import ConfigError
from batchctl.providers import PROVIDERS

APP_NAME = "batchctl"
CONFIG_FILENAME = "config.toml"

LOCAL_PROFILE = "local"
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 8765
LOCAL_BASE_URL = f"http://{LOCAL_HOST}:{LOCAL_PORT}/v1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

PROVIDER_KINDS = tuple(PROVIDERS)


def _presets() -> dict[str, tuple[str, str]]:
    """`profile add --preset NAME`: base URL and provider kind, from the provider table.

    Each provider is a preset of its own name; its other API roots are `NAME-LABEL` (`dashscope-intl`).
    A URL may hold `{placeholders}` (azure's `{resource}`) that `presets.preset_base_url` fills.
    """
    presets = {name: (spec.base_url, name) for name, spec in PROVIDERS.items() if spec.base_url}
    for name, spec in PROVIDERS.items():
        presets.update({f"{name}-{label}": (url, name) for label, url in spec.other_base_urls})
    presets["local"] = (LOCAL_BASE_URL, "local")
    return presets


PRESETS: dict[str, tuple[str, str]] = _presets()


ENV_PROFILE = "BATCHCTL_PROFILE"
ENV_BASE_URL = "BATCHCTL_BASE_URL"
ENV_API_KEY = "BATCHCTL_API_KEY"
ENV_CHANNEL = "BATCHCTL_CHANNEL"
ENV_CONFIG_DIR = "BATCHCTL_CONFIG_DIR"
ENV_DATA_DIR = "BATCHCTL_DATA_DIR"
# The port of `batchctl serve --port`, and of the `local` profile's server: it moves both (`local_server_url`).
ENV_SERVE_PORT = "BATCHCTL_SERVE_PORT"



CHANNEL_HINT = "A New-API channel id is a whole number: the ID column of the gateway's Channels page (e.g. --channel 7)."
CHANNEL_PROVIDER = "newapi"


def check_channel(value: str | int | None, where: str) -> str | None:
    """`value` as a New-API channel id (digits only), or a ConfigError naming `where` it came from."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise ConfigError(f"channel {str(value)!r} ({where}) is not a New-API channel id", hint=CHANNEL_HINT)
    return text


def channel_warning(provider: str, channel: str | None, where: str = "--channel") -> str | None:
    """What to say when a channel pin meets a provider that is not a New-API gateway (None: all is well)."""
    if not channel or provider == CHANNEL_PROVIDER:
        return None
    return (f"{where} pins a New-API channel; provider {provider} has no channels, yet the key is still sent as "
            f"<key>-{channel} (drop the channel, or use a profile with --provider newapi)")  # fmt: skip


def config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG_DIR)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME))


def config_path() -> Path:
    return config_dir() / CONFIG_FILENAME


def data_dir() -> Path:
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME))


@dataclass
class Profile:
    """One named connection: where the Batch API is, how to authenticate, and which conventions apply."""

    name: str
    base_url: str
    provider: str = "openai"
    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable instead of storing it
    channel: str | None = None  # New-API channel id to pin every request to
    poll_interval: float | None = None  # seconds; None means the provider's default
    access_token: str | None = None  # New-API dashboard access token (a secret, like the key)
    user_id: str | None = None  # New-API user id sent as `New-Api-User`
    limits: dict[str, int] = field(default_factory=dict)
    custom_llm_provider: str | None = None  # LiteLLM proxy: sent with uploads and creates to route them
    # cost: model prices and `confirm_above`, read and checked by batchctl.cost.prices (docs/cost.md)
    prices: dict[str, object] = field(default_factory=dict)

    def resolved_api_key(self, env: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if env is None else env
        if self.api_key_env:
            return env.get(self.api_key_env) or self.api_key
        return self.api_key

    def to_toml(self) -> dict:
        table = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name" or value is None or value == {}:
                continue
            table[f.name] = value
        return table

    @classmethod
    def from_toml(cls, name: str, table: object, path: Path) -> Profile:
        if not isinstance(table, dict):
            raise ConfigError(
                f"profile {name!r} in {path} is not a table",
                hint=f"Fix or remove the [profiles.{name}] entry in {path}.",
            )
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"profile {name!r} in {path} has unknown keys: {', '.join(unknown)}",
                hint=f"Known keys: {', '.join(sorted(known))}.",
            )
        if "base_url" not in table:
            raise ConfigError(
                f"profile {name!r} in {path} has no base_url",
                hint=f"Add base_url, or re-create it: batchctl profile add {name} --base-url URL",
            )
        provider = table.get("provider", "openai")
        if provider not in PROVIDER_KINDS:
            raise ConfigError(
                f"profile {name!r} in {path} has unknown provider {provider!r}",
                hint=f"Use one of: {', '.join(PROVIDER_KINDS)}.",
            )
        expected = {
            "base_url": str, "provider": str, "api_key": str, "api_key_env": str, "access_token": str,
            "channel": (str, int), "user_id": (str, int), "poll_interval": (int, float), "limits": dict,
            "prices": dict, "custom_llm_provider": str,
        }  # fmt: skip
        for key, kinds in expected.items():
            if key in table and not isinstance(table[key], kinds) or isinstance(table.get(key), bool):
                raise ConfigError(
                    f"profile {name!r} in {path}: {key} has the wrong type ({type(table[key]).__name__})",
                    hint=f"Fix {key} in [profiles.{name}] of {path}, or re-add the profile.",
                )
        from batchctl.providers import OVERRIDABLE_LIMITS

        for key, value in table.get("limits", {}).items():
            if key not in OVERRIDABLE_LIMITS or not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(
                    f"profile {name!r} in {path}: limits.{key} = {value!r} is not allowed",
                    hint=f"Limits are whole numbers for: {', '.join(OVERRIDABLE_LIMITS)}.",
                )
        try:
            profile = cls(name=name, **table)
            if profile.channel is not None:
                profile.channel = check_channel(profile.channel, f"profile {name!r} in {path}")
            if profile.user_id is not None:
                profile.user_id = str(profile.user_id)
            if profile.poll_interval is not None:
                profile.poll_interval = float(profile.poll_interval)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"profile {name!r} in {path} is invalid: {exc}") from exc
        return profile


BUILTIN_LOCAL = Profile(name=LOCAL_PROFILE, base_url=LOCAL_BASE_URL, provider="local")

OPENAI_PROFILE = "openai"
ENV_OPENAI_API_KEY = "OPENAI_API_KEY"
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"


def builtin_openai(env: Mapping[str, str] | None = None) -> Profile:
    """The built-in `openai` profile (when no profile of that name is configured), read from the
    environment the way the OpenAI SDK reads it: `OPENAI_API_KEY`, and `OPENAI_BASE_URL` if set.
    Only chosen explicitly (`--profile openai`, `profile use openai`): an OpenAI key in the environment
    never redirects the default `local` profile."""
    env = os.environ if env is None else env
    return Profile(
        name=OPENAI_PROFILE,
        base_url=env.get(ENV_OPENAI_BASE_URL) or PRESETS["openai"][0],
        provider="openai",
        api_key_env=ENV_OPENAI_API_KEY,
    )


@dataclass
class Config:
    """The whole config file: the active profile's name and every profile."""

    active: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    path: Path | None = None

    def get(self, name: str) -> Profile:
        if name in self.profiles:
            return self.profiles[name]
        if name == LOCAL_PROFILE:
            return BUILTIN_LOCAL
        if name == OPENAI_PROFILE:
            return builtin_openai()
        known = sorted(set(self.profiles) | {LOCAL_PROFILE})
        raise ConfigError(
            f"no profile named {name!r}",
            hint=f"Known profiles: {', '.join(known)}. Add one with: batchctl profile add {name} --base-url URL",
        )

    def names(self) -> list[str]:
        return sorted(set(self.profiles) | {LOCAL_PROFILE})


def load_config(path: Path | None = None) -> Config:
    """Read the config file; a missing file is an empty config, a broken one a ConfigError naming file and line."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    import tomllib  # here: without a config file (the built-in profiles) it is never needed

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text", hint=f"Fix or delete {path}.") from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already names the line and column: "Expected '=' ... (at line 3, column 7)".
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}",
            hint=f"Fix the line it names, or delete {path} and re-add your profiles.",
        ) from exc
    active = data.get("active")
    if active is not None and not isinstance(active, str):
        raise ConfigError(f"`active` in {path} must be a profile name", hint=f"Fix it in {path}.")
    profiles_table = data.get("profiles", {})
    if not isinstance(profiles_table, dict):
        raise ConfigError(f"`profiles` in {path} must be a table of profiles", hint=f"Fix it in {path}.")
    profiles = {name: Profile.from_toml(name, table, path) for name, table in profiles_table.items()}
    return Config(active=active, profiles=profiles, path=path)


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write the config atomically (temp file + rename) with mode 0600 in a 0700 directory: it holds keys."""
    import tomli_w

    path = path or config.path or config_path()
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    document: dict = {}
    if config.active:
        document["active"] = config.active
    document["profiles"] = {name: p.to_toml() for name, p in sorted(config.profiles.items())}
    payload = tomli_w.dumps(document).encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to talk to a Batch API, resolved from flags, env and the profile."""

    profile_name: str
    base_url: str
    provider: str
    api_key: str | None = None
    channel: str | None = None
    poll_interval: float | None = None
    access_token: str | None = None
    user_id: str | None = None
    limits: Mapping[str, int] = field(default_factory=dict)
    custom_llm_provider: str | None = None  # LiteLLM's routing field, from the profile
    sources: Mapping[str, str] = field(default_factory=dict)  # field -> "flag" | "env NAME" | "profile NAME"
    # The env var the profile reads its key from, when that variable is not set (and no key came otherwise).
    missing_key_env: str | None = None
    # Start a background `batchctl serve` when nothing answers: only for a `local` profile's own URL,
    # never for a URL given by flag or env var (that names somebody else's server).
    autostart: bool = False

    @property
    def is_local(self) -> bool:
        return self.provider == "local"


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` (a URL's hostname, or a --host value as typed) names this machine's loopback."""
    return host in LOOPBACK_HOSTS


def serve_port_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """`BATCHCTL_SERVE_PORT` as a port number, None when unset or empty; ConfigError when it is no port."""
    env = os.environ if env is None else env
    raw = (env.get(ENV_SERVE_PORT) or "").strip()
    if not raw:
        return None
    port = int(raw) if raw.isdigit() else 0
    if not 1 <= port <= 65535:
        raise ConfigError(
            f"{ENV_SERVE_PORT}={raw!r} is not a port number",
            hint=f"Set it to a port from 1 to 65535 (the local server's), or unset it: unset {ENV_SERVE_PORT}",
        )
    return port


def _on_serve_port(url: str, env: Mapping[str, str]) -> str:
    """`url`, a loopback URL of the `local` profile, on `BATCHCTL_SERVE_PORT`'s port when that is set."""
    port = serve_port_from_env(env)
    parts = urlsplit(url)
    if port is None or not is_loopback_host(parts.hostname):
        return url
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    userinfo = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=(userinfo + "@" if userinfo else "") + f"{host}:{port}").geturl()


def local_server_url(env: Mapping[str, str] | None = None, config: Config | None = None) -> str:
    """The base URL of this data dir's local server: where the autostart starts it, and where `batchctl serve`
    (foreground, --background, --status, --stop) listens or looks when no --port is given.

    It is the `local` profile's URL: the built-in `LOCAL_BASE_URL`, or the one stored by `batchctl profile
    add local --provider local --base-url http://127.0.0.1:PORT/v1 --force`; `BATCHCTL_SERVE_PORT` (the env
    var of `serve --port`), when set, moves its port, as `resolve_settings` moves the profile's. A `local`
    profile of another provider, or on another machine, leaves the built-in URL.
    """
    env = os.environ if env is None else env
    config = config if config is not None else load_config()
    profile = config.get(LOCAL_PROFILE)
    url = LOCAL_BASE_URL
    if profile.provider == "local":
        from batchctl.urls import normalize_base_url

        try:
            stored = normalize_base_url(profile.base_url)
        except ValueError:
            stored = url
        if is_loopback_host(urlsplit(stored).hostname):
            url = stored
    return _on_serve_port(url, env)


def resolve_settings(
    profile: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    channel: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config: Config | None = None,
) -> Settings:
    """Resolve settings with the precedence flag > env var > profile > built-in `local`.

    Flags are the arguments; env vars are read here so that non-CLI callers get the same rules.
    `OPENAI_API_KEY` is a last fallback for an `openai` profile that gives no key.
    """
    env = os.environ if env is None else env
    config = config if config is not None else load_config()
    sources: dict[str, str] = {}

    if profile:
        name, sources["profile"] = profile, "flag"
    elif env.get(ENV_PROFILE):
        name, sources["profile"] = env[ENV_PROFILE], f"env {ENV_PROFILE}"
    elif config.active:
        name, sources["profile"] = config.active, "config"
    else:
        name, sources["profile"] = LOCAL_PROFILE, "default"
    chosen = builtin_openai(env) if name == OPENAI_PROFILE and name not in config.profiles else config.get(name)

    def pick(key: str, flag_value: str | None, env_name: str, profile_value: str | None) -> str | None:
        if flag_value:
            sources[key] = "flag"
            return flag_value
        if env.get(env_name):
            sources[key] = f"env {env_name}"
            return env[env_name]
        if profile_value:
            sources[key] = f"profile {chosen.name}"
        return profile_value

    resolved_url = pick("base_url", base_url, ENV_BASE_URL, chosen.base_url) or chosen.base_url
    resolved_key = pick("api_key", api_key, ENV_API_KEY, chosen.resolved_api_key(env))
    if not resolved_key and chosen.provider == "openai" and env.get("OPENAI_API_KEY"):
        resolved_key, sources["api_key"] = env["OPENAI_API_KEY"], "env OPENAI_API_KEY"
    if resolved_key is not None:
        # A pasted key often brings a newline along; a control character cannot go in a header, and
        # httpx's error about it showed the key whole.
        resolved_key = resolved_key.strip() or None
        if resolved_key and any(ord(c) < 32 or ord(c) == 127 for c in resolved_key):
            raise ConfigError(
                f"the API key (from {sources.get('api_key', 'profile ' + chosen.name)}) holds a control character",
                hint="Give the key as it is, without line breaks or tabs.",
            )
    resolved_channel = pick("channel", channel, ENV_CHANNEL, chosen.channel)
    channel_from = sources.get("channel", "")
    where = {"flag": "--channel"}.get(channel_from) or (channel_from.replace("env ", "") if channel_from.startswith("env ") else channel_from)
    resolved_channel = check_channel(resolved_channel, where)
    if name == OPENAI_PROFILE and name not in config.profiles:  # the built-in one reads the OpenAI SDK's env vars
        for key, env_name in (("base_url", ENV_OPENAI_BASE_URL), ("api_key", ENV_OPENAI_API_KEY)):
            if sources.get(key) == f"profile {OPENAI_PROFILE}" and env.get(env_name):
                sources[key] = f"env {env_name}"

    from batchctl.urls import normalize_base_url, shown_url

    try:
        normalized_url = normalize_base_url(resolved_url)
    except ValueError as exc:
        raise ConfigError(
            f"invalid base URL {shown_url(resolved_url)!r} (from {sources.get('base_url', 'profile ' + chosen.name)}): {exc}",
            hint="Give an http(s) URL such as https://api.openai.com/v1 or http://localhost:3000.",
        ) from exc
    url_overridden = not sources.get("base_url", "profile").startswith("profile")
    if name == LOCAL_PROFILE and chosen.provider == "local" and not url_overridden:
        # BATCHCTL_SERVE_PORT moves the local server (`local_server_url`): the profile follows it there.
        moved = _on_serve_port(normalized_url, env)
        if moved != normalized_url:
            normalized_url, sources["base_url"] = moved, f"env {ENV_SERVE_PORT}"
    provider = chosen.provider
    if chosen is BUILTIN_LOCAL and url_overridden and not is_loopback_host(urlsplit(normalized_url).hostname):
        # `--base-url https://gateway.example` with nothing configured: a remote OpenAI-compatible
        # server, not our embedded one, so none of the local server's conventions apply.
        provider = "openai"

    return Settings(
        profile_name=chosen.name,
        base_url=normalized_url,
        provider=provider,
        autostart=provider == "local" and not url_overridden,
        api_key=resolved_key,
        channel=str(resolved_channel) if resolved_channel else None,
        poll_interval=chosen.poll_interval,
        access_token=chosen.access_token,
        user_id=chosen.user_id,
        limits=dict(chosen.limits),
        custom_llm_provider=chosen.custom_llm_provider,
        sources=sources,
        missing_key_env=chosen.api_key_env if not resolved_key and chosen.api_key_env and not env.get(chosen.api_key_env) else None,
    )

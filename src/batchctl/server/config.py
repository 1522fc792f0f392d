"""`ServerConfig`: everything the local server is started with, in one shape from the command line to the executors.

The `python -m batchctl.server` options are built from its fields, so `to_argv()` and `from_argv()`
agree by construction. Stdlib only: the CLI and the autostart import it without the server.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from batchctl.config import LOCAL_HOST, LOCAL_PORT

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
LOOPS = ("auto", "asyncio", "uvloop")
DEFAULT_MAX_FILE_MB = 200.0  # OpenAI's limit for a batch input file
DEFAULT_MAX_LINE_MB = 6.0  # a request line; far above any chat request, small enough to hold in memory
FAULTS_ENV = "BATCHCTL_SERVE_FAULTS"
UPSTREAM_USERINFO_HINT = (
    "Drop user:password@ from --upstream to send the key as Bearer, or give no --upstream-key"
    " (unset BATCHCTL_UPSTREAM_KEY) if the upstream takes Basic auth only."
)


def _always(value: Any) -> bool:
    return True


def _has_userinfo(url: Any) -> bool:
    """An URL with a `user:password@` part: a secret, however ordinary the rest of it."""
    return isinstance(url, str) and bool(urlsplit(url).username or urlsplit(url).password)


def _option(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    secret: Callable[[Any], bool] = _always,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A field that is also a `python -m batchctl.server` option.

    A field with `env` may hold a secret (always, or when `secret(value)` says so): its value is then
    handed to a background server in that environment variable, never on a command line that `ps`
    shows; the option's default is read from the variable.
    """
    return field(default=default, metadata={"help": help, "env": env, "secret": secret, "choices": choices})


@dataclass(frozen=True)
class ServerConfig:
    """How the local server listens, where it keeps its state and how it executes requests."""

    host: str = _option(LOCAL_HOST, f"address to bind (default {LOCAL_HOST})")
    port: int = _option(LOCAL_PORT, f"port (default {LOCAL_PORT})")
    data_dir: Path | None = _option(None, "state directory (default <data dir>/server)")
    api_key: str | None = _option(
        None, "require 'Authorization: Bearer KEY' (env BATCHCTL_SERVER_API_KEY)", env="BATCHCTL_SERVER_API_KEY"
    )
    latency: float = _option(0.0, "seconds per request of the echo model")
    failure_rate: float = _option(0.0, "share of echo requests that fail (0..1)")
    upstream: str | None = _option(  # e.g. vLLM's /v1; one with user:password@ travels as a secret
        None, "forward requests to this OpenAI-compatible base URL (env BATCHCTL_UPSTREAM)", env="BATCHCTL_UPSTREAM",
        secret=_has_userinfo,
    )
    upstream_key: str | None = _option(
        None, "key for --upstream (env BATCHCTL_UPSTREAM_KEY)", env="BATCHCTL_UPSTREAM_KEY"
    )
    upstream_channel: str | None = _option(
        None, "pin a New-API channel: the upstream key is sent as KEY-CHANNEL (the sk-KEY-N convention)"
    )
    concurrency: int = _option(8, "requests in flight at once (default 8)")
    max_retries: int = _option(
        4, "retries of an upstream 408/409/429/5xx (not 501), timeout or connection failure (default 4)"
    )
    rpm: int | None = _option(None, "cap on upstream requests per minute")
    tpm: int | None = _option(None, "cap on upstream tokens per minute, estimated from each request")
    timeout: float = _option(600.0, "seconds to wait for an upstream answer (default 600)")
    log_level: str = _option("warning", "uvicorn's log level (default warning)", choices=LOG_LEVELS)
    loop: str = _option(
        "auto", "event loop: auto (uvloop, which batchctl installs except on Windows), asyncio or uvloop", choices=LOOPS
    )
    max_file_mb: float = _option(
        DEFAULT_MAX_FILE_MB, f"largest upload in MB, answered 413 above (default {DEFAULT_MAX_FILE_MB:g}, OpenAI's)"
    )
    max_line_mb: float = _option(
        DEFAULT_MAX_LINE_MB, f"longest line of an upload in MB, answered 400 above (default {DEFAULT_MAX_LINE_MB:g})"
    )
    allow_no_auth: bool = _option(False, "allow a non-loopback --host without --api-key")
    faults: Path | None = _option(None, "JSON file of fault rules to inject (env BATCHCTL_SERVE_FAULTS)")

    def state_dir(self) -> Path:
        """`data_dir`, or `<batchctl data dir>/server` when none was given."""
        if self.data_dir is not None:
            return Path(self.data_dir)
        from batchctl.config import data_dir

        return data_dir() / "server"

    def problem(self) -> str | None:
        """What makes this configuration unusable, or None."""
        if not 0.0 <= self.failure_rate <= 1.0:
            return "--failure-rate must be between 0 and 1"
        if self.concurrency < 1:
            return "--concurrency must be at least 1"
        if (self.rpm is not None and self.rpm < 1) or (self.tpm is not None and self.tpm < 1):
            return "--rpm and --tpm must be at least 1"
        if self.upstream is not None:
            from batchctl.urls import normalize_base_url

            try:
                normalize_base_url(self.upstream)
            except ValueError as exc:
                return f"--upstream: {exc}"
        if problem := self.upstream_auth_problem():
            return problem
        if self.upstream_channel is not None and not self.upstream:
            return "--upstream-channel pins a channel of --upstream: give --upstream URL too"
        if self.upstream_channel is not None and not self.upstream_channel.isdigit():
            return f"--upstream-channel must be a New-API channel id (digits, e.g. 2), not {self.upstream_channel!r}"
        if self.upstream_channel is not None and not self.upstream_key:
            return "--upstream-channel needs the gateway's key: give --upstream-key KEY (or BATCHCTL_UPSTREAM_KEY)"
        if self.max_file_mb <= 0 or self.max_line_mb <= 0:
            return "--max-file-mb and --max-line-mb must be positive"
        if problem := self.faults_problem():
            return problem
        from batchctl.config import is_loopback_host

        if not is_loopback_host(self.host) and not self.api_key and not self.allow_no_auth:
            return (
                f"--host {self.host} exposes the server to the network: give --api-key KEY"
                " (or --allow-no-auth to serve anyone who can reach the port)"
            )
        return None

    def upstream_auth_problem(self) -> str | None:
        """Why --upstream and --upstream-key cannot go together, or None: a `user:password@` in the URL goes
        as HTTP Basic auth in the Authorization header the key fills, and the HTTP client refuses both
        (on every request). Under it, a person reads `UPSTREAM_USERINFO_HINT`."""
        if self.upstream is None or not self.upstream_key or not _has_userinfo(self.upstream):
            return None
        from batchctl.urls import display_url

        return (
            f"--upstream {display_url(self.upstream)} has a user name or password, sent as HTTP Basic auth in the"
            " header that --upstream-key (or BATCHCTL_UPSTREAM_KEY) fills: give one of them"
        )

    def faults_problem(self) -> str | None:
        """What is wrong with the fault rule file, or None (none given, or a good one); under it, a person
        reads `faults.RULES_HINT`."""
        if self.faults is None:
            return None
        from batchctl.server.faults import FaultRuleError, load_rules

        try:
            load_rules(self.faults)
        except FaultRuleError as exc:
            return str(exc)
        return None

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_line_bytes(self) -> int:
        return int(self.max_line_mb * 1024 * 1024)

    def to_argv(self) -> list[str]:
        """The `python -m batchctl.server` options that rebuild this configuration, secrets excepted."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                argv += [_flag(f.name)] if value else []
            elif value is not None and not _is_secret(f, value):
                argv += [_flag(f.name), str(value)]
        return argv

    def secret_env(self) -> dict[str, str]:
        """The environment variables that carry the secrets `to_argv` leaves out."""
        values = ((f, getattr(self, f.name)) for f in fields(self))
        return {f.metadata["env"]: value for f, value in values if value and _is_secret(f, value)}

    @classmethod
    def from_argv(cls, argv: list[str] | None = None) -> ServerConfig:
        """Parse `python -m batchctl.server` options (secrets default to their environment variables)."""
        parser = argument_parser()
        args = vars(parser.parse_args(argv))
        config = cls(**args)
        problem = config.problem()
        if problem:
            parser.error(problem)
        return config


def data_dir_id(path: Path | str) -> str:
    """The identity a server gives of its state dir in `/health`: the sha256 of its resolved path (not the path,
    which may name a user). The `local` profile only uses a server whose identity is its own data dir's."""
    import hashlib

    return hashlib.sha256(str(Path(path).expanduser().resolve()).encode("utf-8")).hexdigest()


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m batchctl.server",
        description="Run the embedded OpenAI-compatible Batch server in the foreground.",
    )
    # Field annotations are strings (postponed evaluation): the type of an option follows its default,
    # except the few whose default is None.
    types = {"data_dir": Path, "rpm": int, "tpm": int, "faults": Path}
    for f in fields(ServerConfig):
        assert f.default is not MISSING
        if isinstance(f.default, bool):
            parser.add_argument(_flag(f.name), dest=f.name, action="store_true", help=f.metadata["help"])
            continue
        default = os.environ.get(f.metadata["env"]) if f.metadata["env"] else f.default
        if f.name == "faults":
            default = os.environ.get(FAULTS_ENV) or None
        kind = types.get(f.name) or (type(f.default) if f.default is not None else str)
        parser.add_argument(
            _flag(f.name), dest=f.name, type=kind, default=default, choices=f.metadata["choices"],
            help=f.metadata["help"],
        )  # fmt: skip
    return parser


def _is_secret(f: Any, value: Any) -> bool:
    return bool(f.metadata["env"]) and f.metadata["secret"](value)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")

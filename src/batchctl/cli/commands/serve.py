"""`batchctl serve`: run the embedded OpenAI-compatible Batch server (foreground or background), see or stop it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt
from batchctl.config import LOCAL_HOST, is_loopback_host
from batchctl.errors import EXIT_ERROR
from batchctl.server.config import DEFAULT_MAX_FILE_MB, DEFAULT_MAX_LINE_MB

EPILOG = (
    "Examples: batchctl serve (foreground, Ctrl+C stops it); batchctl serve --latency 0.2 --failure-rate 0.05; "
    "batchctl serve --upstream http://127.0.0.1:8000/v1 --concurrency 16 (e.g. vLLM or Ollama); "
    "batchctl serve --upstream https://gateway.example/v1 --upstream-key KEY --upstream-channel 2 --rpm 600 "
    "(a New-API gateway, channel 2; docs/serve.md); "
    "batchctl serve --background; batchctl serve --status; batchctl serve --stop. "
    "Exit codes: 0 ok (--status: a server answers); 1 error (--status: none answers)."
)

HostOpt = Annotated[str, typer.Option("--host", help="Address to bind. Anything but 127.0.0.1 exposes the server.")]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, envvar="BATCHCTL_SERVE_PORT", show_envvar=False,
                 help="Port (default: the local profile's, 8765 built in). [env var: BATCHCTL_SERVE_PORT, which moves"
                 " the local profile's server too]"),
]  # fmt: skip
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where batches, files and results are kept (default: <data dir>/server).",
                 file_okay=False),
]  # fmt: skip
ServerKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="Require 'Authorization: Bearer KEY' from clients. [env var: BATCHCTL_SERVER_API_KEY]",
        envvar="BATCHCTL_SERVER_API_KEY",
        show_envvar=False,
    ),
]
LatencyOpt = Annotated[float, typer.Option("--latency", min=0.0, help="Seconds each request of the echo model takes.")]
FailureRateOpt = Annotated[
    float,
    typer.Option("--failure-rate", min=0.0, max=1.0, help="Share of echo requests that fail with a 500 (0..1)."),
]
UpstreamOpt = Annotated[
    str | None,
    typer.Option("--upstream", help="Forward requests to this OpenAI-compatible base URL instead of the echo model."),
]
UpstreamKeyOpt = Annotated[
    str | None,
    typer.Option("--upstream-key", help="API key for --upstream. [env var: BATCHCTL_UPSTREAM_KEY]",
                 envvar="BATCHCTL_UPSTREAM_KEY", show_envvar=False),
]  # fmt: skip
UpstreamChannelOpt = Annotated[
    str | None,
    typer.Option("--upstream-channel", metavar="N", help="Pin a channel of a New-API gateway --upstream: the key is"
                 " sent as KEY-N on every forwarded call."),
]  # fmt: skip
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, help="Requests in flight at once.")]
RpmOpt = Annotated[int | None, typer.Option("--rpm", min=1, help="Cap on upstream requests per minute.")]
TpmOpt = Annotated[
    int | None,
    typer.Option("--tpm", min=1, help="Cap on upstream tokens per minute (estimated: the request's text / 4 + its max_tokens)."),
]
MaxRetriesOpt = Annotated[
    int,
    typer.Option("--max-retries", min=0, help="Retries per request of an upstream 408/409/429/5xx (not 501) answer,"
                 " timeout or connection failure."),
]  # fmt: skip
UpstreamTimeoutOpt = Annotated[
    float, typer.Option("--upstream-timeout", min=0.1, help="Seconds to wait for one upstream answer.")
]
MaxFileOpt = Annotated[
    float, typer.Option("--max-file-mb", min=0.001, help="Largest upload in MB; larger ones are answered 413.")
]
MaxLineOpt = Annotated[
    float, typer.Option("--max-line-mb", min=0.001, help="Longest line of an upload in MB; longer ones are answered 400.")
]
AllowNoAuthOpt = Annotated[
    bool, typer.Option("--allow-no-auth", help="Serve a non-loopback --host without --api-key (anyone may use it).")
]
FaultsOpt = Annotated[
    Path | None,
    typer.Option("--faults", help="JSON file of fault rules to inject, for tests and demos (docs/reliability.md)."
                 " [env var: BATCHCTL_SERVE_FAULTS]", envvar="BATCHCTL_SERVE_FAULTS", show_envvar=False,
                 dir_okay=False),
]  # fmt: skip


def serve(
    ctx: typer.Context,
    host: HostOpt = LOCAL_HOST,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    api_key: ServerKeyOpt = None,
    latency: LatencyOpt = 0.0,
    failure_rate: FailureRateOpt = 0.0,
    upstream: UpstreamOpt = None,
    upstream_key: UpstreamKeyOpt = None,
    upstream_channel: UpstreamChannelOpt = None,
    concurrency: ConcurrencyOpt = 8,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_retries: MaxRetriesOpt = 4,
    upstream_timeout: UpstreamTimeoutOpt = 600.0,
    max_file_mb: MaxFileOpt = DEFAULT_MAX_FILE_MB,
    max_line_mb: MaxLineOpt = DEFAULT_MAX_LINE_MB,
    allow_no_auth: AllowNoAuthOpt = False,
    faults: FaultsOpt = None,
    background: Annotated[bool, typer.Option("--background", help="Start in the background and return.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Show whether a server answers on --port (default: where"
                      " --data-dir's background server runs), and whether it keeps this data dir; exit.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the background server of --data-dir (default: this data"
                    " dir's), and exit.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Run the embedded OpenAI-compatible Batch server: no key, no network needed.

    It serves /v1/files, /v1/batches and /v1/models like OpenAI, runs batches with the offline `echo`
    model (or forwards them to --upstream), and keeps its state across restarts. The `local` profile
    uses the server on its port that keeps this data dir, and starts one in the background when none
    answers.

    Example: batchctl serve --port 8765 --latency 0.1
    """
    from dataclasses import replace

    from batchctl.config import data_dir as batchctl_data_dir
    from batchctl.errors import BatchctlError
    from batchctl.server.config import ServerConfig

    state = AppState.get(ctx, json_=json_)
    out = state.out
    if sum((status, stop, background)) > 1:
        raise BatchctlError("choose one of --status, --stop and --background", exit_code=2)
    home = batchctl_data_dir()
    # Only --port on the command line is the user's choice of port. Without it (BATCHCTL_SERVE_PORT included,
    # which moves the local profile too), the server is the local profile's: on its port, as the autostart
    # starts it, so that `serve`, --background, --status and --stop all find the server the profile uses.
    source = ctx.get_parameter_source("port")
    port_given = source is not None and source.name == "COMMANDLINE"
    if not port_given:
        from batchctl.config import local_server_url
        from batchctl.server.autostart import server_root

        port = server_root(local_server_url())[2]
    assert port is not None
    url = f"http://{_connect_host(host)}:{port}/v1"
    config = ServerConfig(
        host=host, port=port, data_dir=data_dir or home / "server", api_key=api_key, latency=latency,
        failure_rate=failure_rate, upstream=upstream, upstream_key=upstream_key, upstream_channel=upstream_channel,
        concurrency=concurrency, rpm=rpm, tpm=tpm, max_retries=max_retries, timeout=upstream_timeout,
        max_file_mb=max_file_mb, max_line_mb=max_line_mb, allow_no_auth=allow_no_auth, faults=faults,
    )  # fmt: skip

    # --port given: --status and --stop look there; else where the background server of --data-dir was
    # started, wherever that is (then on the local profile's port).
    if status:
        info = _status(home, url, config.state_dir(), port_given=port_given)

        def show() -> None:
            if info["running"]:
                pid = f" (pid {info['pid']}" + (f", log {info['log']})" if info.get("log") else ")")
                if info["this_data_dir"]:
                    out.success(f"A local batch server for this data dir answers on {info['url']}{pid}")
                else:
                    out.warn(
                        f"a batch server for another data dir answers on {info['url']}{pid}:"
                        " the local profile of this data dir does not use it"
                    )
            else:
                out.info(f"No local batch server answers on {url}.")

        out.result(info, human=show)
        raise typer.Exit(0 if info["running"] else EXIT_ERROR)

    if stop:
        _stop(out, home, url, config.state_dir(), port if port_given else None)
        return

    if upstream is not None:
        from batchctl.urls import normalize_base_url, shown_url

        try:
            normalize_base_url(upstream)
        except ValueError as exc:
            raise BatchctlError(
                f"invalid --upstream URL {shown_url(upstream)!r}: {exc}",
                hint="Give the OpenAI base URL of the server to forward to, /v1 included, such as http://127.0.0.1:8000/v1.",
            ) from exc
    if problem := config.upstream_auth_problem():
        from batchctl.server.config import UPSTREAM_USERINFO_HINT

        raise BatchctlError(problem, hint=UPSTREAM_USERINFO_HINT, exit_code=2)
    if problem := config.faults_problem():
        from batchctl.server.faults import RULES_HINT

        raise BatchctlError(problem, hint=RULES_HINT, exit_code=2)
    problem = config.problem()
    if problem:
        raise BatchctlError(problem, hint="batchctl serve -h lists the options and their values.", exit_code=2)

    if upstream is not None and (unreachable := _upstream_unreachable(upstream)):
        out.warn(unreachable)  # a typo in the URL shows now, not as upstream_unreachable on every line of a batch
    if background:
        from batchctl.server.autostart import ensure_local_server, is_healthy

        # Not is_loopback_host: the background server binds 127.0.0.1, which ::1 does not reach.
        if host not in (LOCAL_HOST, "localhost"):
            raise BatchctlError("--background binds 127.0.0.1 only", hint="Run `batchctl serve --host H` in the foreground.")
        if not ensure_local_server(url, home, out.info, config=config, warn=out.warn):
            health = is_healthy(url.removesuffix("/v1")) or {}
            out.info(f"A local batch server already answers on {url} (pid {health.get('pid', '?')}).")
            from batchctl.server.autostart import waiting_notes

            for note in waiting_notes(health):
                out.warn(note)
        return

    from batchctl.server import run
    from batchctl.urls import display_url

    if not is_loopback_host(host) and not api_key:
        out.warn(f"binding {host} without --api-key: anyone who can reach this port can use the server")
    _check_bindable(host, port)
    from batchctl.server import claim_state_dir

    claim_state_dir(config.state_dir())
    if state.debug:
        config = replace(config, log_level="info")  # and uvicorn's access log
    pin = f" (channel {upstream_channel})" if upstream_channel else ""
    engine = f"upstream {display_url(upstream)}{pin}" if upstream else "the echo model"
    out.info(
        f"Serving the Batch API on http://{host}:{port}/v1 with {engine} (state in {config.data_dir}). Ctrl+C stops it."
    )
    run(config)


def _upstream_unreachable(upstream: str, timeout: float = 2.0) -> str | None:
    """Why nothing answers at the upstream's host and port (a connection, no request), or None. A
    warning only: an upstream may start after the server, and its requests are retried."""
    import socket
    from urllib.parse import urlsplit

    from batchctl.urls import shown_url

    parts = urlsplit(upstream)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return (f"nothing answers at the upstream {shown_url(upstream)} ({reason}): its requests fail as "
                "upstream_unreachable, after their retries, until it does; check the URL")  # fmt: skip


def _check_bindable(host: str, port: int) -> None:
    """Raise BatchctlError (exit 1) when the server could not listen on host:port, before it says it serves."""
    import errno
    import socket

    from batchctl.errors import BatchctlError

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise BatchctlError(
            f"cannot listen on {host}: {exc.strerror or exc}", hint="Give an address of this machine as --host."
        ) from exc
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BatchctlError(
                f"port {port} on {host} is in use",
                hint="Give another --port, or see whether a batch server answers there:"
                f" batchctl serve --status --port {port}",
            ) from exc
        raise BatchctlError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="Give an address of this machine as --host, and a port you may use as --port (1024 and above).",
        ) from exc


def _stop(out, home: Path, url: str, state_dir: Path, port: int | None) -> None:
    """Stop the background server of `state_dir` (on `port` only, when given), or say why none was stopped."""
    from batchctl.server.autostart import server_root, server_status, stop_background_server

    recorded = server_status(home, state_dir)
    elsewhere = recorded and recorded["alive"] and recorded["url"] and server_root(recorded["url"])[2] != port
    if port is not None and elsewhere:
        note = _not_stopped_note(_status(home, url, state_dir))
        out.info(
            f"This data dir's background batch server runs on {recorded['url']} (pid {recorded['pid']}), not on"
            f" port {port}: it was not stopped (`batchctl serve --stop` without --port stops it).{note}"
        )
        return
    if stop_background_server(home, state_dir):
        out.success(f"Stopped the local batch server (pid {recorded['pid'] if recorded else '?'}).")
        return
    note = _not_stopped_note(_status(home, url, state_dir))
    if note:
        out.info(f"No background batch server of this data dir was running.{note}")
    else:
        out.info("No background batch server was running.")


def _not_stopped_note(seen: dict) -> str:
    """What answers on the port asked about, when `serve --stop` leaves it running ("" when nothing does)."""
    if not seen["running"] or seen["background"]:
        return ""
    if not seen["this_data_dir"]:
        return (
            f" The one on {seen['url']} (pid {seen['pid']}) keeps another data dir and was not stopped:"
            " `batchctl serve --stop --data-dir DIR` with its data dir stops it."
        )
    return (
        f" The one on {seen['url']} (pid {seen['pid']}) keeps this data dir but runs in the foreground:"
        f" stop it with Ctrl+C where it runs, or `kill {seen['pid']}`."
    )


def _connect_host(host: str) -> str:
    return LOCAL_HOST if host in ("0.0.0.0", "::", "") else host


def _status(home: Path, url: str, state_dir: Path, *, port_given: bool = True) -> dict:
    """Whether a server answers on `url` or where the background server of `state_dir` recorded it (there
    first unless `port_given`), with pid and log, and whether it keeps `state_dir` (`this_data_dir`; None
    when none answers)."""
    from batchctl.server.autostart import is_healthy, server_status, serves_data_dir

    recorded = server_status(home, state_dir)
    candidates = [url]
    if recorded and recorded["alive"] and recorded["url"] and recorded["url"] != url:
        candidates.insert(len(candidates) if port_given else 0, recorded["url"])
    health = None
    for candidate in candidates:
        health = is_healthy(candidate.removesuffix("/v1"))
        if health is not None:
            url = candidate
            break
    ours = bool(recorded and health and recorded["pid"] == health.get("pid"))
    return {
        "running": health is not None,
        "url": url,
        "pid": health.get("pid") if health else None,
        "background": ours,
        "log": recorded["log"] if ours and recorded else None,
        "this_data_dir": serves_data_dir(health, home, state_dir) if health else None,
    }

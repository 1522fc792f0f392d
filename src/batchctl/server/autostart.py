"""Starting, finding and stopping a background local server (pid and log: `background_files`).

Used by the CLI when the `local` profile is active and nothing answers on its URL, and by
`batchctl serve --status/--stop`. Stdlib only (the health probe is the API layer's); the server itself
runs in a detached `python -m batchctl.server` process so it outlives the command that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from batchctl.config import LOCAL_HOST, is_loopback_host
from batchctl.errors import BatchctlError
from batchctl.scratch import process_alive
from batchctl.server.config import ServerConfig, data_dir_id
from batchctl.urls import display_url

PID_FILE = "server.pid"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def server_root(base_url: str) -> tuple[str, str, int]:
    """(root URL without /v1, host, port) of a base URL such as http://127.0.0.1:8765/v1."""
    parts = urlsplit(base_url if "://" in base_url else "http://" + base_url)
    host = parts.hostname or LOCAL_HOST
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.netloc}", host, port


def is_healthy(root: str, timeout: float = 1.0) -> dict | None:
    """The /health answer of a server at `root`, or None when nothing (healthy) answers."""
    from batchctl.api import probe_health

    return probe_health(root, timeout)


def serves_data_dir(health: dict, data_dir: Path, state_dir: Path | None = None) -> bool:
    """Whether the server that gave `health` keeps its state in `state_dir` (default `data_dir/server`).

    Its `/health` names it by `data_dir_id`. A server too old to say so counts as ours only when it is
    the background server recorded in `data_dir` (same pid); any other is another data dir's.
    """
    state_dir = Path(state_dir) if state_dir is not None else Path(data_dir) / "server"
    if "data_dir_id" in health:
        return health["data_dir_id"] == data_dir_id(state_dir)
    recorded = _read_pid_file(background_files(data_dir, state_dir)[0])
    return bool(recorded and recorded["pid"] == health.get("pid"))


def serve_command(base_url: str, *options: str) -> str:
    """`batchctl serve OPTIONS` for the server at `base_url`: with `--port P` unless P is the local profile's
    port (`local_server_url`), where `batchctl serve` goes without it."""
    from batchctl.config import local_server_url

    port = server_root(base_url)[2]
    try:
        default = server_root(local_server_url())[2]
    except BatchctlError:
        default = None
    return " ".join(["batchctl serve", *options, *(() if port == default else ("--port", str(port)))])


def require_own_server(health: dict, root: str, data_dir: Path, state_dir: Path | None = None) -> None:
    """Raise BatchctlError unless the server that gave `health` at `root` is `data_dir`'s (serves_data_dir)."""
    if serves_data_dir(health, data_dir, state_dir):
        return
    _, host, port = server_root(root)
    raise BatchctlError(
        f"a batch server for another data dir answers on {host}:{port}",
        hint="This data dir's batches do not go there. Stop it (`batchctl serve --stop` with its data dir),"
        f" or give this data dir's local profile another port: `batchctl profile add local --provider local"
        f" --base-url http://{LOCAL_HOST}:PORT/v1 --force`, or BATCHCTL_SERVE_PORT=PORT"
        f" (`batchctl serve --status --port {port}` says whose server answers).",
    )


def ensure_local_server(
    base_url: str,
    data_dir: Path,
    notify: Callable[[str], None],
    *,
    config: ServerConfig | None = None,
    own_only: bool = True,
    warn: Callable[[str], None] | None = None,
) -> bool:
    """Start a background server for `base_url` unless one answers; True if one was started.

    `warn` (default `notify`) hears of the batches the new server leaves alone, created for another executor
    (`waiting_notes`).

    The server keeps its state in `data_dir/server`, its pid and log where `background_files` says
    (`data_dir/server.pid` and `data_dir/server.log` by default). `config` sets the rest (its own
    `data_dir` wins; host and port come from `base_url`); its secrets go in the environment, not on a
    command line that `ps` shows. Raises BatchctlError, naming the log, if it does not come up in
    ~10 s, and (`own_only`) when the server that answers keeps another data dir than this one
    (`require_own_server`).
    """
    root, host, port = server_root(base_url)
    data_dir = Path(data_dir)
    state_dir = config.data_dir if config is not None and config.data_dir else data_dir / "server"
    health = is_healthy(root)
    if health is not None:
        if own_only:
            require_own_server(health, root, data_dir, state_dir)
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    # Two commands starting the server at once: the second waits for the first, then finds it healthy.
    with _start_lock(data_dir):
        health = is_healthy(root)
        if health is not None:
            if own_only:
                require_own_server(health, root, data_dir, state_dir)
            return False
        return _start(root, host, port, data_dir, notify, config, state_dir, own_only, warn or notify)


@contextlib.contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    """An exclusive `fcntl.flock` on `<data dir>/server.lock`, held while a server is being started."""
    import fcntl

    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed, even by a crash
        yield
    finally:
        os.close(fd)


def _start(
    root: str,
    host: str,
    port: int,
    data_dir: Path,
    notify: Callable[[str], None],
    config: ServerConfig | None,
    state_dir: Path,
    own_only: bool,
    warn: Callable[[str], None],
) -> bool:
    if _port_open(host, port):
        # Something listens: a busy server answers slowly, so give it longer before deciding it is
        # not ours (starting a second one would only fail on the taken port).
        health = is_healthy(root, timeout=10.0)
        if health is not None:
            if own_only:
                require_own_server(health, root, data_dir, state_dir)
            return False
        raise BatchctlError(
            f"something listens on {root} but does not answer as a batchctl server",
            hint=f"Point the profile at another port, or stop what runs on port {port}.",
        )
    if not is_loopback_host(host):
        raise BatchctlError(
            f"Nothing answers at {root}, and a local server can only be started on this machine.",
            hint="Start the server there with `batchctl serve`, or point the profile at 127.0.0.1.",
        )
    from batchctl.server import state_dir_holder

    holder = state_dir_holder(state_dir)
    if holder is not None:
        raise BatchctlError(
            f"this data dir's batch server (pid {holder}) already runs, but not on {root}",
            hint="One server per data dir (a second would run its batches twice): use its port "
            f"(`batchctl serve --status` names it), or stop it (`batchctl serve --stop`) and start it again on port {port}.",
        )
    pid_file, log_path = background_files(data_dir, state_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = config or ServerConfig()
    config = replace(config, host=LOCAL_HOST, port=port, data_dir=state_dir)
    command = [sys.executable, "-m", "batchctl.server", *config.to_argv()]
    env = child_env(config)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed by Ctrl+C in the terminal that started it
            close_fds=True,
        )
    pid_file.write_text(json.dumps({"pid": proc.pid, "url": root + "/v1"}))
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        health = is_healthy(root, timeout=0.5)
        if health:
            forwarding = f", forwarding to {display_url(config.upstream)}" if config.upstream else ""
            notify(f"Started the local batch server on {display_url(root)}/v1{forwarding} (pid {proc.pid}, log {log_path})")
            for note in waiting_notes(health):
                warn(note)
            return True
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() is None:
        proc.terminate()
    pid_file.unlink(missing_ok=True)
    raise BatchctlError(
        f"The local batch server did not start on {root}.",
        hint=f"See its log: {log_path}. Is port {port} taken by another program? Use another port: `batchctl serve"
        " --port N`, or for the local profile BATCHCTL_SERVE_PORT=N (docs/serve.md).",
    )


def waiting_notes(health: dict) -> list[str]:
    """What a server's `/health` says of the batches it leaves alone, created for another executor (one line
    each): `batch_… waits for `batchctl serve --upstream http://…``."""
    notes = []
    for item in health.get("waiting_batches") or []:
        if isinstance(item, dict) and item.get("id"):
            notes.append(
                f"{item['id']} was created for {item.get('executor', 'another executor')} and waits: this server does"
                f" not run it. Stop this one (`batchctl serve --stop`) and start `{item.get('serve', 'batchctl serve')}`"
                " on this data dir, or cancel the batch."
            )
    return notes


def child_env(config: ServerConfig) -> dict[str, str]:
    """The environment of a background server for `config`: this one's, without the client's own
    secrets (the server outlives this command) and without an upstream of its own (the server
    forwards where `config` says, or answers with the echo model: never to a `BATCHCTL_UPSTREAM` left
    in the shell); `config`'s secrets added; the same batchctl importable, installed or not."""
    env = {k: v for k, v in os.environ.items() if k not in ("BATCHCTL_API_KEY", "OPENAI_API_KEY", "BATCHCTL_UPSTREAM")}
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.update(config.secret_env())
    return env


def _port_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def background_files(data_dir: Path, state_dir: Path | None = None) -> tuple[Path, Path]:
    """(pid file, log) of the background server that keeps its state in `state_dir`, started from the
    batchctl data dir `data_dir`.

    For the default state dir (`data_dir/server`, also when `state_dir` is None) they are
    `data_dir/server.pid` and `data_dir/server.log`; for any other (`serve --data-dir X`) they are
    `X/server.pid` and `X/server.log`, beside that server's state. One server per state dir (its lock),
    so no two background servers ever share a pid file or a log.
    """
    data_dir = Path(data_dir)
    if state_dir is None or _same_path(state_dir, data_dir / "server"):
        return data_dir / PID_FILE, data_dir / LOG_FILE
    state_dir = Path(state_dir).expanduser().resolve()
    return state_dir / PID_FILE, state_dir / LOG_FILE


def _same_path(a: Path, b: Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _read_pid_file(pid_file: Path) -> dict | None:
    try:
        info = json.loads(Path(pid_file).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def server_status(data_dir: Path, state_dir: Path | None = None) -> dict | None:
    """{"pid", "url", "alive", "log"} of the background server recorded for `state_dir` (default
    `data_dir/server`; `background_files` says where), or None."""
    pid_file, log_path = background_files(data_dir, state_dir)
    info = _read_pid_file(pid_file)
    if info is None:
        return None
    return {
        "pid": info["pid"],
        "url": info.get("url"),
        "alive": process_alive(info["pid"]),
        "log": str(log_path),
    }


def stop_background_server(data_dir: Path, state_dir: Path | None = None) -> bool:
    """SIGTERM the background server recorded for `state_dir` (default `data_dir/server`) and wait for
    it; True if one was stopped."""
    pid_file = background_files(data_dir, state_dir)[0]
    info = _read_pid_file(pid_file)
    if info is None:
        return False
    pid = info["pid"]
    if not process_alive(pid):
        pid_file.unlink(missing_ok=True)
        return False
    # The pid may have been reused by any program since: signal it only if it answers as our server.
    health = is_healthy(str(info.get("url") or "").removesuffix("/v1"), timeout=2.0) if info.get("url") else None
    if not health or health.get("pid") != pid:
        raise BatchctlError(
            f"process {pid}, named in {pid_file}, does not answer as the local batch server"
            + (f" on {info['url']}" if info.get("url") else ""),
            hint=f"It was not stopped. If no batchctl server runs, delete {pid_file}; if one hangs, `kill {pid}`.",
        )
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.05)
    if process_alive(pid):
        raise BatchctlError(
            f"The local batch server (pid {pid}) did not stop within {STOP_TIMEOUT:.0f} s.",
            hint=f"Stop it with `kill -9 {pid}`; its state is safe, unfinished batches resume on the next start.",
        )
    pid_file.unlink(missing_ok=True)
    return True

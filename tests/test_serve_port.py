"""The local server's port has one source: the `local` profile's URL (8765 built in, moved by `profile add local
--base-url … --force` or by BATCHCTL_SERVE_PORT). `batchctl serve` (foreground and --background), --status,
--stop, the autostart and the hints all default to it; an explicit --port still wins. And `serve` refuses an
--upstream with a password together with an upstream key, which would fail every forwarded request.

Every server these tests start is stopped at teardown (`servers`), whatever the test asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from server_fixture import free_port
from typer.testing import CliRunner

from batchctl.cli.app import app

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def servers(tmp_path, monkeypatch):
    """Kills at teardown every background server recorded in the data dirs `track(dir)` names (this test's
    data dir is tracked already), and every process `track_proc(popen)` names."""
    dirs: list[Path] = [Path(os.environ["BATCHCTL_DATA_DIR"])]
    procs: list[subprocess.Popen] = []

    class Tracker:
        def track(self, data_dir: Path) -> None:
            dirs.append(Path(data_dir))

        def track_proc(self, proc: subprocess.Popen) -> None:
            procs.append(proc)

    yield Tracker()
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    for data_dir in dirs:
        pid_file = data_dir / "server.pid"
        try:
            pid = json.loads(pid_file.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _alive(pid):  # gone in ~0.1 s on SIGTERM
                time.sleep(0.02)
            if not _alive(pid):
                break


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a child of this process (the foreground one) is gone once reaped
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _answers(port: int | str) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).json()
    except httpx.HTTPError:
        return None


def _cli_env(**extra: str) -> dict[str, str]:
    """The test's environment for a `python -m batchctl` subprocess, the tested batchctl first on the path."""
    import batchctl

    env = {**os.environ, **extra}
    src = str(Path(batchctl.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


# --- --upstream with user:password@ and an upstream key ------------------------------------------------


UPSTREAM = "http://bob:pw-trial-0000001234@127.0.0.1:9/v1"
UPSTREAM_KEY = "sk-trial-upstream-00005678"


def _refused_at_startup(result_output: str, exit_code: int) -> None:
    assert exit_code == 2, result_output
    error, hint = result_output.strip().splitlines()
    assert error == (
        "Error: --upstream http://bob:****@127.0.0.1:9/v1 has a user name or password, sent as HTTP Basic auth in"
        " the header that --upstream-key (or BATCHCTL_UPSTREAM_KEY) fills: give one of them"
    )
    assert hint.startswith("Drop user:password@ from --upstream") and "give no --upstream-key" in hint
    assert "pw-trial" not in result_output and "00005678" not in result_output


def test_serve_refuses_an_upstream_with_a_password_and_an_upstream_key(servers):
    port = free_port()
    # Foreground, in a subprocess: before the fix it served (and failed every forwarded request).
    try:
        fg = subprocess.run(
            [sys.executable, "-m", "batchctl", "serve", "--port", str(port), "--upstream", UPSTREAM,
             "--upstream-key", UPSTREAM_KEY],
            env=_cli_env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("serve ran instead of refusing --upstream user:password@ with --upstream-key")
    _refused_at_startup(fg.stderr, fg.returncode)
    assert fg.stdout == ""

    # The key from BATCHCTL_UPSTREAM_KEY, in the background: refused the same way, and nothing started.
    bg = runner.invoke(
        app, ["serve", "--background", "--port", str(port), "--upstream", UPSTREAM],
        env={"BATCHCTL_UPSTREAM_KEY": UPSTREAM_KEY},
    )  # fmt: skip
    _refused_at_startup(bg.stderr, bg.exit_code)
    assert _answers(port) is None

    # `python -m batchctl.server` with both from the environment (BATCHCTL_UPSTREAM, BATCHCTL_UPSTREAM_KEY).
    try:
        bare = subprocess.run(
            [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(Path(os.environ["BATCHCTL_DATA_DIR"]) / "bare")],
            env=_cli_env(BATCHCTL_UPSTREAM=UPSTREAM, BATCHCTL_UPSTREAM_KEY=UPSTREAM_KEY),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("python -m batchctl.server ran instead of refusing BATCHCTL_UPSTREAM with a password and a key")
    assert bare.returncode == 2
    assert "has a user name or password" in bare.stderr and "bob:****@" in bare.stderr
    assert "pw-trial" not in bare.stderr and "00005678" not in bare.stderr

    # Either one alone is fine (checked without starting anything: the URL alone goes as Basic, the key as Bearer).
    from batchctl.server.config import ServerConfig

    assert ServerConfig(upstream=UPSTREAM).problem() is None
    assert ServerConfig(upstream="http://127.0.0.1:9/v1", upstream_key=UPSTREAM_KEY).problem() is None


# --- the local server's port ---------------------------------------------------------------------------


def test_batchctl_serve_port_moves_the_autostart_and_every_serve_command(servers, monkeypatch):
    port = free_port()
    monkeypatch.setenv("BATCHCTL_SERVE_PORT", str(port))
    # The local profile follows BATCHCTL_SERVE_PORT (checked first: before the fix it named 8765, and the
    # autostart below would have started a server there).
    shown = runner.invoke(app, ["profile", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["base_url"] == f"http://127.0.0.1:{port}/v1"

    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert f"Started the local batch server on http://127.0.0.1:{port}/v1" in listed.stderr
    pid = _answers(port)["pid"]

    status = runner.invoke(app, ["serve", "--status", "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert (info["url"], info["pid"], info["this_data_dir"], info["background"]) == (
        f"http://127.0.0.1:{port}/v1", pid, True, True
    )
    again = runner.invoke(app, ["serve", "--background"])
    assert again.exit_code == 0 and f"already answers on http://127.0.0.1:{port}/v1" in again.output

    stopped = runner.invoke(app, ["serve", "--stop"])
    assert stopped.exit_code == 0, stopped.output
    assert f"Stopped the local batch server (pid {pid})" in stopped.output
    assert _answers(port) is None


def test_serve_stop_with_batchctl_serve_port_stops_this_data_dirs_server_wherever_it_runs(servers, monkeypatch):
    """BATCHCTL_SERVE_PORT is no --port: `serve --stop` stops this data dir's background server, even one
    started on another port (before the fix: "not on port N: it was not stopped", naming a --port never given)."""
    started_on, env_port = free_port(), free_port()
    started = runner.invoke(app, ["serve", "--background", "--port", str(started_on)])
    assert started.exit_code == 0, started.output
    pid = _answers(started_on)["pid"]
    monkeypatch.setenv("BATCHCTL_SERVE_PORT", str(env_port))
    stopped = runner.invoke(app, ["serve", "--stop"])
    assert stopped.exit_code == 0, stopped.output
    assert f"Stopped the local batch server (pid {pid})" in stopped.output and "not on port" not in stopped.output
    assert _answers(started_on) is None


def test_serve_defaults_to_the_stored_local_profiles_port(servers, monkeypatch):
    port = free_port()
    added = runner.invoke(app, ["profile", "add", "local", "--provider", "local", "--base-url", f"http://127.0.0.1:{port}/v1"])
    assert added.exit_code == 0, added.output

    # Nothing runs yet: --status looks on the profile's port (checked first: before the fix it looked on
    # 8765, and --background below started a server there).
    status = runner.invoke(app, ["serve", "--status", "--json"])
    assert status.exit_code == 1, status.output
    assert json.loads(status.stdout)["url"] == f"http://127.0.0.1:{port}/v1"
    refused = runner.invoke(app, ["list"])  # BATCHCTL_AUTOSTART=0 (conftest): the hint starts it where the profile looks
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[1] == "Start one with `batchctl serve --background`, or unset BATCHCTL_AUTOSTART."

    started = runner.invoke(app, ["serve", "--background"])
    assert started.exit_code == 0, started.output
    assert f"Started the local batch server on http://127.0.0.1:{port}/v1" in started.output
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    listed = runner.invoke(app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output  # the profile uses it: no "already runs, but not on …"
    assert "Started" not in listed.stderr
    info = json.loads(runner.invoke(app, ["serve", "--status", "--json"]).stdout)
    assert info["url"] == f"http://127.0.0.1:{port}/v1" and info["this_data_dir"] is True
    stopped = runner.invoke(app, ["serve", "--stop"])
    assert stopped.exit_code == 0 and "Stopped the local batch server" in stopped.output
    assert _answers(port) is None

    # The foreground server listens there too; an explicit --port still wins.
    foreground = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "serve"], env=_cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    servers.track_proc(foreground)
    deadline = time.monotonic() + 15
    while _answers(port) is None and foreground.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _answers(port) is not None and _answers(port)["pid"] == foreground.pid
    foreground.send_signal(signal.SIGINT)
    foreground.wait(15)
    other = free_port()
    explicit = runner.invoke(app, ["serve", "--background", "--port", str(other)])
    assert explicit.exit_code == 0 and f"on http://127.0.0.1:{other}/v1" in explicit.output, explicit.output
    assert _answers(port) is None
    runner.invoke(app, ["serve", "--stop"])


def test_the_hints_name_the_port_and_commands_that_work(servers, tmp_path, monkeypatch):
    # A local server of another data dir answers on the local profile's port.
    port = free_port()
    added = runner.invoke(app, ["profile", "add", "local", "--provider", "local", "--base-url", f"http://127.0.0.1:{port}/v1"])
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    theirs = tmp_path / "theirs"
    servers.track(theirs)
    first = runner.invoke(app, ["list"], env={"BATCHCTL_DATA_DIR": str(theirs)})
    assert first.exit_code == 0, first.output

    refused = runner.invoke(app, ["list"])
    assert refused.exit_code == 1
    hint = refused.stderr.splitlines()[1]
    assert f"(`batchctl serve --status --port {port}` says whose server answers)" in hint
    status = runner.invoke(app, ["serve", "--status", "--port", str(port)])
    assert "a batch server for another data dir answers" in status.stderr
    # The hint's command works as given, a local profile being stored already.
    command = hint.split("`")[3]
    assert command.startswith("batchctl profile add local --provider local --base-url") and command.endswith("--force")
    moved = free_port()
    redo = runner.invoke(app, command.replace("PORT", str(moved)).split()[1:])
    assert redo.exit_code == 0, redo.output
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0 and f"Started the local batch server on http://127.0.0.1:{moved}/v1" in listed.stderr

    # BATCHCTL_AUTOSTART=0, a local-provider profile of another name: its port is named.
    mine = free_port()
    runner.invoke(app, ["profile", "add", "mine", "--provider", "local", "--base-url", f"http://127.0.0.1:{mine}/v1", "--no-use"])
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "0")
    forbidden = runner.invoke(app, ["-p", "mine", "list"])
    assert forbidden.exit_code == 1
    assert f"Start one with `batchctl serve --background --port {mine}`" in forbidden.stderr


def test_an_invalid_batchctl_serve_port_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("BATCHCTL_SERVE_PORT", "eighty")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: BATCHCTL_SERVE_PORT='eighty' is not a port number",
        "Set it to a port from 1 to 65535 (the local server's), or unset it: unset BATCHCTL_SERVE_PORT",
    ]

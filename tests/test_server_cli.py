"""`batchctl serve`: --background, --status, --stop through Typer, and a foreground server in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest
import typer
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.cli.commands.serve import serve
from server_fixture import ServerHandle, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli():
    # The command alone, as app.py registers it (`app.command("serve", epilog=EPILOG)(serve)`).
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("serve")(serve)
    app.command("unused")(lambda: None)  # keep `serve` a subcommand, as in the real app
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["serve", *args])


def test_background_status_stop(cli, tmp_path):
    port = str(free_port())
    try:
        started = cli("--background", "--port", port, "--latency", "0.01")
        assert started.exit_code == 0, started.output
        assert "Started the local batch server on http://127.0.0.1:" in started.output
        again = cli("--background", "--port", port)
        assert again.exit_code == 0 and "already answers" in again.output

        status = cli("--status", "--port", port, "--json")
        assert status.exit_code == 0, status.output
        info = json.loads(status.stdout)
        assert info["running"] and info["background"] and info["url"] == f"http://127.0.0.1:{port}/v1"
        assert info["log"].endswith("server.log")
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["pid"] == info["pid"]
    finally:
        stopped = cli("--stop")
    assert stopped.exit_code == 0 and "Stopped the local batch server" in stopped.output
    assert cli("--stop").exit_code == 0
    gone = cli("--status", "--port", port)
    assert gone.exit_code == 1 and "No local batch server answers" in gone.output


def test_conflicting_modes_are_a_usage_error(cli):
    result = cli("--stop", "--status")
    assert result.exit_code != 0


def serve_in_foreground(tmp_path, *args: str) -> ServerHandle:
    """`batchctl serve --port P --data-dir D ARGS` in a subprocess, its output in `handle.log()`."""
    code = (
        "import typer; from batchctl.cli.commands.serve import serve; app = typer.Typer(); "
        "app.command('serve')(serve); app.command('x')(lambda: None); app()"
    )

    def launcher(handle: ServerHandle) -> list[str]:
        return [sys.executable, "-c", code, "serve", "--port", str(handle.port), "--data-dir", str(handle.data_dir)]

    return ServerHandle(port=free_port(), data_dir=tmp_path / "state", args=list(args), launcher=launcher).start()


def test_foreground_serve_in_a_subprocess(tmp_path):
    handle = serve_in_foreground(tmp_path, "--api-key", "k")
    try:
        handle.wait_healthy()
        assert httpx.get(handle.base_url + "/models").status_code == 401
        assert httpx.get(handle.base_url + "/models", headers={"Authorization": "Bearer k"}).status_code == 200
        assert (handle.data_dir / "server.db").exists()
    finally:
        handle.proc.send_signal(signal.SIGINT)
        handle.proc.wait(10)
    assert "Serving the Batch API on http://127.0.0.1:" in handle.log()


def test_foreground_serve_masks_the_password_of_its_upstream(tmp_path):
    """The foreground `Serving ... with upstream URL` line shows `user:****@`, as errors and doctor do."""
    handle = serve_in_foreground(tmp_path, "--upstream", "http://bob:hunter2pass@127.0.0.1:9/v1")
    try:
        handle.wait_healthy()
    finally:
        handle.proc.send_signal(signal.SIGINT)
        handle.proc.wait(10)
    assert "with upstream http://bob:****@127.0.0.1:9/v1 (state in" in handle.log()
    assert "hunter2pass" not in handle.log()


@pytest.mark.parametrize("args", [["--upstream-channel", "2"], ["--upstream-channel", "abc", "--upstream", "http://127.0.0.1:9/v1"]])
def test_serve_refuses_a_bad_setting_with_where_to_look(args):
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 2
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"Error: {args[0]} ") and hint == "batchctl serve -h lists the options and their values."


def test_a_second_background_server_of_another_data_dir_keeps_its_own_pid_file_and_log(cli, tmp_path):
    import os

    from batchctl.scratch import process_alive

    home = tmp_path / "data"  # BATCHCTL_DATA_DIR (conftest)
    other = tmp_path / "elsewhere"
    ours_port, other_port = str(free_port()), str(free_port())
    started: list[int] = []
    try:
        assert cli("--background", "--port", ours_port).exit_code == 0
        started.append(httpx.get(f"http://127.0.0.1:{ours_port}/health").json()["pid"])
        second = cli("--background", "--port", other_port, "--failure-rate", "0.3", "--data-dir", str(other))
        assert second.exit_code == 0, second.output
        started.append(httpx.get(f"http://127.0.0.1:{other_port}/health").json()["pid"])
        ours, theirs = started

        # Nothing of this data dir's was overwritten: each server has its own pid file and log.
        assert json.loads((home / "server.pid").read_text())["pid"] == ours
        assert json.loads((other / "server.pid").read_text())["pid"] == theirs
        assert f"log {other / 'server.log'}" in second.output and (other / "server.log").exists()

        # --status finds the server of the data dir asked for, wherever it runs.
        mine = json.loads(cli("--status", "--json").stdout)
        assert (mine["pid"], mine["background"], mine["log"]) == (ours, True, str(home / "server.log"))
        assert mine["url"] == f"http://127.0.0.1:{ours_port}/v1" and mine["this_data_dir"] is True
        info = json.loads(cli("--status", "--json", "--data-dir", str(other)).stdout)
        assert (info["pid"], info["background"], info["log"]) == (theirs, True, str(other / "server.log"))
        assert info["this_data_dir"] is True

        # --stop on the other's port, without its data dir: neither server is stopped, and it says why.
        refused = cli("--stop", "--port", other_port)
        assert refused.exit_code == 0, refused.output
        assert f"runs on http://127.0.0.1:{ours_port}/v1 (pid {ours}), not on port {other_port}" in refused.output
        assert process_alive(ours) and process_alive(theirs)

        stopped = cli("--stop", "--port", other_port, "--data-dir", str(other))
        assert stopped.exit_code == 0 and f"Stopped the local batch server (pid {theirs})" in stopped.output
        assert not process_alive(theirs) and not (other / "server.pid").exists()
        assert process_alive(ours)
        stopped = cli("--stop")
        assert stopped.exit_code == 0 and f"Stopped the local batch server (pid {ours})" in stopped.output
        assert not process_alive(ours) and not (home / "server.pid").exists()
    finally:
        for pid in started:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_harness_moves_to_another_port_when_another_server_took_its_own(tmp_path):
    """`free_port()` hands out a port that another test worker's server may bind first: the handle must not take
    that server for its own (it answers /health too), and starts on another port."""
    squatter = ServerHandle(port=free_port(), data_dir=tmp_path / "squatter", args=[]).start()
    try:
        late = ServerHandle(port=squatter.port, data_dir=tmp_path / "late", args=[]).start()
        try:
            assert late.port != squatter.port
            assert httpx.get(late.root + "/health").json()["pid"] == late.proc.pid
            assert "address already in use" in late.log()
        finally:
            late.kill()
    finally:
        squatter.kill()


def test_the_harness_keeps_a_restarted_server_on_its_port(tmp_path):
    """A restart keeps the handle's port: the test's clients and profiles still name the old URL. When another
    server took the port while this one was down, moving elsewhere would leave them talking to that other
    server (another test's), so the restart fails with PortTaken instead."""
    from server_fixture import PortTaken

    handle = ServerHandle(port=free_port(), data_dir=tmp_path / "first", args=[]).start()
    url = handle.base_url
    handle.kill()
    squatter = ServerHandle(port=handle.port, data_dir=tmp_path / "squatter", args=[]).start()
    try:
        with pytest.raises(PortTaken):
            handle.start()
        assert handle.base_url == url
    finally:
        handle.kill()
        squatter.kill()

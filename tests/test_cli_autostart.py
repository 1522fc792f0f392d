"""A `local` profile starts a background server when nothing answers at its own URL, and says so.

A URL given by flag or env var names somebody else's server: it is never started, only reached.
"""

from __future__ import annotations

import json

from server_fixture import free_port
from typer.testing import CliRunner

from batchctl.cli.app import app

runner = CliRunner()


def add_local_profile(url: str) -> None:
    result = runner.invoke(app, ["profile", "add", "mine", "--provider", "local", "--base-url", url])
    assert result.exit_code == 0, result.output


def test_local_profile_autostarts_a_background_server(monkeypatch):
    add_local_profile(f"http://127.0.0.1:{free_port()}/v1")
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    try:
        first = runner.invoke(app, ["list", "--json"])
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout) == []
        assert "Started the local batch server" in first.stderr
        second = runner.invoke(app, ["list", "--json"])
        assert second.exit_code == 0
        assert "Started" not in second.stderr  # the first one is reused
    finally:
        stopped = runner.invoke(app, ["serve", "--stop"])
    assert stopped.exit_code == 0, stopped.output


def test_autostart_can_be_forbidden():
    url = f"http://127.0.0.1:{free_port()}/v1"
    add_local_profile(url)  # BATCHCTL_AUTOSTART=0 comes from the isolation fixture
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: nothing answers at {url}")
    assert "batchctl serve" in result.stderr


def test_a_base_url_flag_is_reached_never_started(monkeypatch):
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    url = f"http://localhost:{free_port()}"
    result = runner.invoke(app, ["--base-url", url, "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: could not reach http://localhost:")
    assert "Started" not in result.stderr


def test_a_remote_base_url_is_not_the_local_provider():
    shown = runner.invoke(app, ["--base-url", "https://gateway.example.com", "profile", "show", "--json"])
    view = json.loads(shown.stdout)
    assert view["base_url"] == "https://gateway.example.com/v1"
    assert view["provider"] == "openai"


def test_invalid_base_url_is_a_clear_error():
    result = runner.invoke(app, ["--base-url", "ftp://x", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: invalid base URL 'ftp://x' (from flag)")
    assert "Traceback" not in result.output


def test_a_port_taken_by_something_else_is_named_not_fought_over(monkeypatch):
    import socket

    with socket.socket() as sock:  # listens, but never speaks HTTP
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        add_local_profile(f"http://127.0.0.1:{sock.getsockname()[1]}/v1")
        monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
        monkeypatch.setattr("batchctl.server.autostart.is_healthy", lambda root, timeout=1.0: None)
        result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert "does not answer as a batchctl server" in result.stderr
    assert "Started" not in result.stderr

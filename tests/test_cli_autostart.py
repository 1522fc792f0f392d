"""The built-in `local` profile starts a background server when nothing answers, and says so."""

from __future__ import annotations

import json

from server_fixture import free_port
from typer.testing import CliRunner

from batchctl.cli.app import app

runner = CliRunner()


def test_local_profile_autostarts_a_background_server(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    monkeypatch.setenv("BATCHCTL_BASE_URL", url)
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


def test_autostart_can_be_forbidden(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv("BATCHCTL_BASE_URL", url)  # BATCHCTL_AUTOSTART=0 comes from the isolation fixture
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: nothing answers at {url}")
    assert "batchctl serve" in result.stderr

"""`serve --stop` signals only our server; two commands starting the local server at once start one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.errors import BatchctlError
from batchctl.server.autostart import PID_FILE, ensure_local_server, server_status, stop_background_server
from server_fixture import free_port


def test_stop_refuses_a_pid_that_does_not_answer_as_our_server(tmp_path):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / PID_FILE).write_text(json.dumps({"pid": stranger.pid, "url": f"http://127.0.0.1:{free_port()}/v1"}))
        with pytest.raises(BatchctlError, match=f"process {stranger.pid}, named in .* does not answer as the local"):
            stop_background_server(tmp_path)
        assert stranger.poll() is None  # not signalled
        result = CliRunner().invoke(app, ["serve", "--stop"], env={"BATCHCTL_DATA_DIR": str(tmp_path)})
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: process {stranger.pid}, named in")
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_two_starters_at_once_start_one_server(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    started: list[bool] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            started.append(ensure_local_server(url, tmp_path, lambda text: None))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        assert sorted(started) == [False, True]
        status = server_status(tmp_path)
        assert status and status["alive"]
    finally:
        assert stop_background_server(tmp_path)  # our server answers with its pid: stopped
    assert (tmp_path / "server.lock").exists()

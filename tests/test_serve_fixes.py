"""`batchctl serve` and the `local` profile: a server is used only by its own data dir; port, upstream and
background output checked at start-up."""

from __future__ import annotations

import json

import httpx
import pytest
from server_fixture import free_port
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.server.config import data_dir_id

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def two_data_dirs(tmp_path, monkeypatch):
    """The `local` profile on a free port, and two data dirs A and B; yields (url, use) where
    `use("A")` makes A the data dir of the commands that follow. Stops A's and B's servers at the end."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    added = runner.invoke(app, ["profile", "add", "local", "--provider", "local", "--base-url", url])
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    dirs = {name: tmp_path / f"data-{name}" for name in "AB"}

    def use(name: str) -> None:
        monkeypatch.setenv("BATCHCTL_DATA_DIR", str(dirs[name]))

    yield url, use, dirs
    for name in "AB":
        use(name)
        runner.invoke(app, ["serve", "--stop"])


def test_the_local_profile_refuses_another_data_dirs_server(two_data_dirs):
    url, use, dirs = two_data_dirs
    root = url.removesuffix("/v1")
    use("A")
    first = runner.invoke(app, ["list", "--json"])
    assert first.exit_code == 0, first.output
    assert "Started the local batch server" in first.stderr
    health = httpx.get(root + "/health").json()
    assert health["data_dir_id"] == data_dir_id(dirs["A"] / "server")
    assert str(dirs["A"]) not in json.dumps(health)  # an identity, not the path

    use("B")
    refused = runner.invoke(app, ["list", "--json"])
    assert refused.exit_code == 1, refused.output
    port = url.split(":")[-1].removesuffix("/v1")
    assert refused.stderr.startswith(f"Error: a batch server for another data dir answers on 127.0.0.1:{port}\n")
    assert "--base-url" in refused.stderr and "Traceback" not in refused.output
    assert not (dirs["B"] / "server").exists()  # nothing of B's went anywhere

    status = runner.invoke(app, ["serve", "--status", "--port", port, "--json"])
    assert status.exit_code == 0, status.output
    info = json.loads(status.stdout)
    assert info["running"] and info["this_data_dir"] is False and not info["background"]
    human = runner.invoke(app, ["serve", "--status", "--port", port])
    assert "another data dir" in human.stderr
    stop = runner.invoke(app, ["serve", "--stop", "--port", port])
    assert stop.exit_code == 0 and "keeps another data dir and was not stopped" in stop.output

    use("A")
    again = runner.invoke(app, ["list", "--json"])
    assert again.exit_code == 0 and "Started" not in again.stderr
    ours = json.loads(runner.invoke(app, ["serve", "--status", "--port", port, "--json"]).stdout)
    assert ours["this_data_dir"] is True and ours["background"] is True


def test_serve_background_refuses_another_data_dirs_server(two_data_dirs):
    url, use, _ = two_data_dirs
    port = url.split(":")[-1].removesuffix("/v1")
    use("A")
    assert runner.invoke(app, ["serve", "--background", "--port", port]).exit_code == 0
    use("B")
    result = runner.invoke(app, ["serve", "--background", "--port", port])
    assert result.exit_code == 1, result.output
    assert "Error: a batch server for another data dir answers" in result.stderr


def test_a_server_without_an_identity_is_ours_only_if_recorded_in_this_data_dir(tmp_path):
    from batchctl.server.autostart import PID_FILE, serves_data_dir

    old = {"status": "ok", "version": "0.0", "pid": 4242}
    assert not serves_data_dir(old, tmp_path)
    (tmp_path / PID_FILE).write_text(json.dumps({"pid": 4242, "url": "http://127.0.0.1:1/v1"}))
    assert serves_data_dir(old, tmp_path)
    assert not serves_data_dir({**old, "data_dir_id": data_dir_id(tmp_path / "elsewhere")}, tmp_path)


def test_serve_on_a_port_in_use_is_one_clear_error():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: port {port} on 127.0.0.1 is in use\n")
    assert "--port" in result.stderr and "batchctl serve --status" in result.stderr
    assert "Serving" not in result.output and "Errno" not in result.output


@pytest.mark.parametrize("mode", [[], ["--background"]])
@pytest.mark.parametrize("upstream", ["notaurl", "ftp://host/v1", "http://"])
def test_an_invalid_upstream_is_refused_at_start(mode, upstream, monkeypatch):
    port = str(free_port())
    ran = []
    monkeypatch.setattr("batchctl.server.run", ran.append)  # a foreground server would not return
    try:
        result = runner.invoke(app, ["serve", *mode, "--port", port, "--upstream", upstream])
    finally:
        runner.invoke(app, ["serve", "--stop"])
    assert not ran
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: invalid --upstream URL {upstream!r}")
    assert "http://127.0.0.1:8000/v1" in result.stderr  # the hint
    assert "Serving" not in result.output and "Started" not in result.output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)


def test_python_m_server_refuses_an_invalid_upstream():
    from batchctl.server.config import ServerConfig

    assert ServerConfig(upstream="notaurl").problem() == "--upstream: base URL 'notaurl' must start with http:// or https:// and name a host"
    assert ServerConfig(upstream="http://127.0.0.1:8000/v1").problem() is None


def test_serve_background_prints_the_base_url_and_the_upstream_never_the_key(monkeypatch):
    port = str(free_port())
    try:
        started = runner.invoke(
            app, ["serve", "--background", "--port", port, "--upstream", "http://user:pw@127.0.0.1:9/v1"]
        )
        assert started.exit_code == 0, started.output
        said = f"Started the local batch server on http://127.0.0.1:{port}/v1, forwarding to http://user:****@127.0.0.1:9/v1 (pid"
        assert said in started.output
        assert "pw@" not in started.output
        assert runner.invoke(app, ["serve", "--stop"]).exit_code == 0
        monkeypatch.setenv("BATCHCTL_UPSTREAM_KEY", "sk-secret-upstream")  # with a URL without user:password@
        keyed_port = str(free_port())
        keyed = runner.invoke(app, ["serve", "--background", "--port", keyed_port, "--upstream", "http://127.0.0.1:9/v1"])
        assert keyed.exit_code == 0, keyed.output
        assert "forwarding to http://127.0.0.1:9/v1 (pid" in keyed.output and "sk-secret-upstream" not in keyed.output
        assert runner.invoke(app, ["serve", "--stop"]).exit_code == 0
        monkeypatch.delenv("BATCHCTL_UPSTREAM_KEY")
        plain_port = str(free_port())
        plain = runner.invoke(app, ["serve", "--background", "--port", plain_port])
        assert f"on http://127.0.0.1:{plain_port}/v1 (pid" in plain.output and "forwarding" not in plain.output
    finally:
        runner.invoke(app, ["serve", "--stop"])


def test_the_retry_statuses_are_told_as_the_code_has_them():
    from pathlib import Path

    from batchctl.api.retry import RETRYABLE_STATUSES

    assert RETRYABLE_STATUSES == {408, 409, 429} | set(range(500, 600)) - {501}
    said = "408/409/429/5xx (not 501)"
    help_text = " ".join(runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "400"}).output.split())
    assert said in help_text and "timeout or connection failure" in help_text
    doc = (Path(__file__).resolve().parents[1] / "docs" / "serve.md").read_text()
    assert f"retries of a {said} answer, a timeout or a connection failure" in doc
    assert "nothing is deleted until" not in doc and "expires 30 days after upload" in " ".join(doc.split())


def test_a_profile_of_another_name_uses_the_server_its_url_names(start_server, monkeypatch):
    server = start_server()  # its own data dir, not this one's
    added = runner.invoke(app, ["profile", "add", "mine", "--provider", "local", "--base-url", server.base_url])
    assert added.exit_code == 0, added.output
    monkeypatch.setenv("BATCHCTL_AUTOSTART", "1")
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    assert "Started" not in result.stderr


def test_one_server_per_data_dir_a_second_on_another_port_is_refused(two_data_dirs):
    """Two servers on one state dir would each resume its unfinished batches: the second must not start,
    whichever way it is started (background, foreground, `python -m batchctl.server`)."""
    import subprocess
    import sys

    url, use, dirs = two_data_dirs
    port = url.split(":")[-1].removesuffix("/v1")
    use("A")
    assert runner.invoke(app, ["serve", "--background", "--port", port]).exit_code == 0
    pid = httpx.get(url.removesuffix("/v1") + "/health").json()["pid"]
    other = str(free_port())

    background = runner.invoke(app, ["serve", "--background", "--port", other])
    assert background.exit_code == 1, background.output
    assert background.stderr.startswith(f"Error: this data dir's batch server (pid {pid}) already runs, but not on")

    foreground = runner.invoke(app, ["serve", "--port", other])
    assert foreground.exit_code == 1, foreground.output
    assert f"Error: another batchctl server (pid {pid}) already keeps its state in" in foreground.stderr
    assert "Serving the Batch API" not in foreground.output and "Traceback" not in foreground.output

    direct = subprocess.run(
        [sys.executable, "-m", "batchctl.server", "--port", other, "--data-dir", str(dirs["A"] / "server")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert direct.returncode == 1 and direct.stderr.startswith(f"Error: another batchctl server (pid {pid})")
    assert "Traceback" not in direct.stderr


def test_serving_freezes_the_startup_objects_out_of_the_collector_and_undoes_it(tmp_path, monkeypatch):
    """`run` tunes the collector while uvicorn serves (a larger young generation; what the imports and
    the app built frozen), and gives the process its collector back when it returns."""
    import gc

    import uvicorn

    from batchctl import server
    from batchctl.server.config import ServerConfig

    seen = {}

    def fake_run(app, **kwargs):
        seen["frozen"], seen["threshold"] = gc.get_freeze_count(), gc.get_threshold()[0]

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(server, "claim_state_dir", lambda path: None)
    before = gc.get_threshold()
    server.run(ServerConfig(data_dir=str(tmp_path / "state")))
    assert seen["frozen"] > 1000 and seen["threshold"] == server.GC_YOUNG_THRESHOLD
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_serve_warns_at_once_when_nothing_answers_at_the_upstream(tmp_path):
    """A typo in --upstream showed only as upstream_unreachable on every line of the first batch; the
    server still starts (an upstream may come up after it) but says so before it serves."""
    import os
    import subprocess
    import sys

    from server_fixture import free_port
    from upstream_stubs import ChatUpstream

    def first_lines(upstream: str) -> str:
        env = {**os.environ, "BATCHCTL_CONFIG_DIR": str(tmp_path / "cfg"), "BATCHCTL_DATA_DIR": str(tmp_path / "data")}
        proc = subprocess.Popen([sys.executable, "-m", "batchctl", "serve", "--port", str(free_port()), "--upstream", upstream],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)  # fmt: skip
        try:
            lines = []
            for line in proc.stderr:
                lines.append(line)
                if line.startswith("Serving the Batch API"):
                    return "".join(lines)
            return "".join(lines)
        finally:
            proc.kill()
            proc.wait(10)

    closed = f"http://127.0.0.1:{free_port()}/v1"
    said = first_lines(closed)
    assert f"Warning: nothing answers at the upstream {closed} (Connection refused)" in said, said
    with ChatUpstream("up") as upstream:
        assert "nothing answers" not in first_lines(upstream.base_url)

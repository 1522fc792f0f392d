"""`batchctl status` and `status --watch` against a real local server: lines, NDJSON, exit codes, Ctrl+C, the TTY."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import create_batch, retrieve
from server_fixture import sigint_by_default
from batchctl.cli.app import app

pytestmark = pytest.mark.e2e
runner = CliRunner()

# 30 requests x 0.02 s, one at a time: about 0.6 s of visible progress per batch.
SLOW = {"latency": 0.02, "extra_args": ["--concurrency", "1"]}
LINE = re.compile(
    r"^(?P<id>batch_\w+)  (?P<status>validating|in_progress|finalizing|completed|failed|expired|cancelling|cancelled)"
    r"  (?P<done>\d+)/(?P<total>\d+) \(ok (?P<ok>\d+), failed (?P<failed>\d+)\)(?:  (?P<pct>\d+)%)?"
    r"  elapsed \d+:\d\d:\d\d$"
)
ORDER = ["validating", "in_progress", "finalizing", "completed"]


@pytest.fixture
def server(start_server, monkeypatch):
    handle = start_server(**SLOW)
    monkeypatch.setenv("BATCHCTL_BASE_URL", handle.base_url)
    return handle


def parse_lines(stdout: str) -> list[dict]:
    """The change lines at the start of stdout (the final panels follow them)."""
    parsed = []
    for line in stdout.splitlines():
        match = LINE.match(line)
        if not match:
            break
        parsed.append(match.groupdict())
    return parsed


def assert_monotonic_to_completion(lines: list[dict], total: int) -> None:
    assert lines, "no change lines"
    assert [ORDER.index(line["status"]) for line in lines] == sorted(ORDER.index(line["status"]) for line in lines)
    done = [int(line["done"]) for line in lines]
    assert done == sorted(done)
    for line in lines:
        assert int(line["ok"]) + int(line["failed"]) == int(line["done"])
        if int(line["total"]):
            assert line["pct"] == str(round(100 * int(line["done"]) / int(line["total"])))
    assert (lines[-1]["status"], lines[-1]["done"], lines[-1]["total"]) == ("completed", str(total), str(total))
    # One line per change: never the same state twice in a row.
    keys = [(line["status"], line["done"], line["total"]) for line in lines]
    assert all(a != b for a, b in zip(keys, keys[1:]))


def test_status_json_is_always_a_list(server, tmp_path):
    first = create_batch(server.base_url, tmp_path, 3)
    second = create_batch(server.base_url, tmp_path, 3)
    one = runner.invoke(app, ["status", first, "--json"])
    assert one.exit_code == 0, one.output
    assert [b["id"] for b in json.loads(one.stdout)] == [first]  # a list for one id too: one shape
    two = runner.invoke(app, ["status", first, second, "--json"])
    assert two.exit_code == 0, two.output
    assert [b["id"] for b in json.loads(two.stdout)] == [first, second]
    # An unknown id among several: the others are still shown, the missing one named, exit 1.
    mixed = runner.invoke(app, ["status", first, "batch_nope", "--json"])
    assert mixed.exit_code == 1
    assert [b["id"] for b in json.loads(mixed.stdout)] == [first]
    assert mixed.stderr.startswith("Error: no batch batch_nope on this server (HTTP 404)")


def test_status_panel_for_people(server, tmp_path):
    batch_id = create_batch(server.base_url, tmp_path, 3, metadata={"description": "panel test"})
    result = runner.invoke(app, ["status", batch_id])
    assert result.exit_code == 0, result.output
    for text in (batch_id, "status", "progress", "/v1/chat/completions", "description: panel test", "input  file-"):
        assert text in result.stdout


def test_watch_one_batch_prints_a_line_per_change_until_completed(server, tmp_path):
    batch_id = create_batch(server.base_url, tmp_path, 30)
    result = runner.invoke(app, ["status", batch_id, "--watch", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    lines = parse_lines(result.stdout)
    assert {line["id"] for line in lines} == {batch_id}
    assert_monotonic_to_completion(lines, 30)
    assert len(lines) >= 3, "progress should be visible between start and end"
    assert any(line["status"] == "in_progress" and 0 < int(line["done"]) < 30 for line in lines)
    # After the lines: the final panel, and the download command on stderr.
    assert "╭" in result.stdout.split("\n", len(lines))[-1]
    assert f"batchctl download {batch_id}" in result.stderr


def test_watch_several_batches(server, tmp_path):
    ids = [create_batch(server.base_url, tmp_path, n) for n in (10, 20, 5)]
    result = runner.invoke(app, ["status", *ids, "--watch", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    lines = parse_lines(result.stdout)
    for batch_id, n in zip(ids, (10, 20, 5)):
        assert_monotonic_to_completion([line for line in lines if line["id"] == batch_id], n)
        assert f"batchctl download {batch_id}" in result.stderr


def test_watch_json_is_ndjson_and_nothing_else(server, tmp_path):
    ids = [create_batch(server.base_url, tmp_path, n) for n in (20, 10)]
    result = runner.invoke(app, ["status", *ids, "--watch", "--json", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.stdout.splitlines()]  # every line is one JSON object
    assert result.stdout.endswith("\n") and "\n\n" not in result.stdout
    for batch_id, n in zip(ids, (20, 10)):
        mine = [o for o in objects if o["id"] == batch_id]
        states = [(ORDER.index(o["status"]), o["request_counts"]["completed"]) for o in mine]
        assert states == sorted(states) and len(set(states)) == len(states)
        assert mine[-1]["status"] == "completed"
        assert mine[-1]["request_counts"] == {"total": n, "completed": n, "failed": 0}


def test_watch_exit_code_failed(server, tmp_path):
    batch_id = create_batch(server.base_url, tmp_path, 5, broken_line=2)
    result = runner.invoke(app, ["status", batch_id, "--watch", "--interval", "0.1"])
    assert result.exit_code == 3, result.output
    assert parse_lines(result.stdout)[-1]["status"] == "failed"
    assert re.search(r"line 2: \[\w+\]", result.stdout), result.stdout  # errors.data in the final panel


def test_watch_exit_code_expired(start_server, monkeypatch, tmp_path):
    server = start_server(latency=0.2, extra_args=["--concurrency", "1"])
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    batch_id = create_batch(server.base_url, tmp_path, 20, window="1s")
    result = runner.invoke(app, ["status", batch_id, "--watch", "--interval", "0.2"])
    assert result.exit_code == 4, result.output
    assert parse_lines(result.stdout)[-1]["status"] == "expired"
    assert "batchctl download" not in result.stderr


def test_watch_exit_code_cancelled_and_worst_of_several(server, tmp_path):
    cancelled = create_batch(server.base_url, tmp_path, 30)
    failed = create_batch(server.base_url, tmp_path, 3, broken_line=1)
    with httpx.Client() as http:
        assert http.post(f"{server.base_url}/batches/{cancelled}/cancel").status_code == 200
    result = runner.invoke(app, ["status", cancelled, "--watch", "--interval", "0.1"])
    assert result.exit_code == 5, result.output
    both = runner.invoke(app, ["status", cancelled, failed, "--watch", "--interval", "0.1"])
    assert both.exit_code == 3, both.output  # failed outranks cancelled


def test_status_of_an_unknown_batch_is_one_error_line(server):
    result = runner.invoke(app, ["status", "batch_nope", "--watch", "--interval", "0.1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: not found (HTTP 404)")
    assert "Traceback" not in result.output


def test_watch_waits_out_a_429(monkeypatch):
    """A server that rate-limits: the watcher waits at least Retry-After before asking again, then goes
    back to its interval (pauses recorded by an injected sleep, so a slow machine cannot fail this)."""
    from batchctl.api import BatchClient
    from batchctl.cli.context import AppState
    from batchctl.cli.watch import watch_batches

    answers = [
        httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "7"}),
        httpx.Response(200, json={"id": "batch_x", "status": "in_progress", "request_counts": {"total": 2}}),
        httpx.Response(200, json={"id": "batch_x", "status": "completed",
                                  "request_counts": {"total": 2, "completed": 2}}),
    ]  # fmt: skip
    pauses: list[float] = []
    monkeypatch.setenv("BATCHCTL_BASE_URL", "http://gateway.invalid/v1")
    client = BatchClient("http://gateway.invalid/v1", max_retries=0, transport=httpx.MockTransport(lambda r: answers.pop(0)))
    state = AppState(json=True)
    final = watch_batches(state, ["batch_x"], interval=0.1, clients={"batch_x": client}, sleep=pauses.append)
    assert [b.status for b in final] == ["completed"]
    assert pauses[0] >= 7  # the 429's Retry-After
    assert pauses[1] < 1  # then the 0.1 s interval (grown a little while nothing changed, not 7 s)


# -- real processes -------------------------------------------------------------------------------


def _env(server) -> dict[str, str]:
    env = dict(os.environ)
    env["BATCHCTL_BASE_URL"] = server.base_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_ctrl_c_stops_watching_only(start_server, tmp_path):
    server = start_server(latency=0.05, extra_args=["--concurrency", "1"])  # ~3 s for 60 requests
    batch_id = create_batch(server.base_url, tmp_path, 60)
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "status", "--watch", "--interval", "0.1", batch_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(server), preexec_fn=sigint_by_default,
    )
    # Wait until the watcher has printed its first line, then interrupt it mid-run.
    first = proc.stdout.readline()
    assert first.startswith(batch_id), first + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert f"Re-attach with: batchctl status --watch {batch_id}" in stderr
    assert "Traceback" not in stderr
    assert retrieve(server.base_url, batch_id).status in ("validating", "in_progress", "finalizing")
    deadline = time.monotonic() + 20
    while (batch := retrieve(server.base_url, batch_id)).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert batch.status == "completed"
    assert batch.request_counts.completed == 60


def run_in_pty(argv: list[str], env: dict[str, str], *, columns=120, rows=40, timeout=30.0) -> tuple[int, bytes]:
    """Run a command on a pseudo-terminal of columns x rows; return its exit code and everything it drew."""
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the pty
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        os.execve(sys.executable, [sys.executable, "-m", "batchctl", *argv], env)
    output = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), bytes(output)


ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
FRAME_SEPARATOR = re.compile(rb"\r(?:\x1b\[2K\x1b\[1A)+\x1b\[2K")


def test_tty_shows_a_live_dashboard(start_server, tmp_path):
    server = start_server(latency=0.05, extra_args=["--concurrency", "1"])  # ~2 s: several frames mid-run
    batch_id = create_batch(server.base_url, tmp_path, 40)
    env = _env(server)
    for var in ("NO_COLOR", "COLUMNS", "LINES", "CI"):
        env.pop(var, None)
    env["TERM"] = "xterm-256color"
    code, raw = run_in_pty(["status", "--watch", "--interval", "0.1", batch_id], env)
    assert code == 0, raw.decode(errors="replace")
    assert b"\x1b[" in raw  # drawn with terminal control codes, in colour
    text = ANSI.sub(b"", raw).decode("utf-8", errors="replace")
    assert "Watching 1 batch, polling every 0.1 s" in text
    # Live redraws in place: split what it drew into frames at its cursor-up redraws.
    frames = [ANSI.sub(b"", f).decode("utf-8", errors="replace") for f in FRAME_SEPARATOR.split(raw)]
    mid_run = [f for f in frames if "in_progress" in f and re.search(r"━ (\d|[1-3]\d)/40  \d+%", f)]
    assert mid_run, text  # a frame with the status and a partly filled progress bar
    assert "40/40  100%" in text  # and the final panel
    assert f"batchctl download {batch_id}" in text
    assert LINE.search(text) is None  # no line-per-change output on a terminal

"""Two downloads to one path at once: the second is refused before it writes a byte, so the file that
gets the name is one download's whole file, never bytes of both (they shared `<name>.part.part`: the
second truncated it under the first, which then renamed the mix into place and reported success)."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from batchctl.api import BatchClient
from batchctl.errors import BatchctlError


def _lines(prefix: str, n: int, pad: int) -> list[bytes]:
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * pad}}]}
    return [json.dumps({"id": f"r-{prefix}{i}", "custom_id": f"{prefix}{i}", "response": {"status_code": 200, "body": body},
                        "error": None}).encode() + b"\n" for i in range(n)]  # fmt: skip


def test_a_second_download_to_the_same_path_is_refused_and_the_first_file_stays_whole(tmp_path):
    from batchctl.results import _download

    a_lines, b_lines = _lines("a", 40, 300), _lines("b", 30, 10)  # different files, different sizes
    a_paused, b_went_on, a_done = threading.Event(), threading.Event(), threading.Event()

    def stream_a():
        yield b"".join(a_lines[:20])
        a_paused.set()
        b_went_on.wait(10)  # B has truncated the shared .part (without the fix) or given up (with it)
        yield b"".join(a_lines[20:])

    def stream_b():
        yield b"".join(b_lines[:5])
        b_went_on.set()
        a_done.wait(10)
        yield b"".join(b_lines[5:])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream_a() if "file-a" in request.url.path else stream_b())

    client = BatchClient("https://api.example.test/v1", "sk-test-abcdef123456", transport=httpx.MockTransport(handler))
    client._sleep = lambda seconds: None
    target = tmp_path / "out.jsonl"
    outcome: dict[str, object] = {}

    def run(name: str, file_id: str, done: threading.Event | None) -> None:
        try:
            outcome[name] = _download(client, "output", file_id, target)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            outcome[name] = exc
        finally:
            if done is not None:
                done.set()
            else:
                b_went_on.set()

    a = threading.Thread(target=run, args=("a", "file-a", a_done))
    a.start()
    assert a_paused.wait(10)
    b = threading.Thread(target=run, args=("b", "file-b", None))
    b.start()
    a.join(20)
    b.join(20)
    assert not a.is_alive() and not b.is_alive()
    assert not isinstance(outcome["a"], BaseException), outcome["a"]
    assert target.read_bytes() == b"".join(a_lines), "the file under the final name mixes two downloads"
    assert isinstance(outcome["b"], BatchctlError) and "another batchctl command is writing" in str(outcome["b"]), outcome["b"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data" and p.name != "config") == ["out.jsonl"]


@pytest.mark.parametrize("stale", [True, False])
def test_a_lock_left_by_a_killed_download_does_not_block_the_next(tmp_path, stale):
    from batchctl.results import _download

    content = b"".join(_lines("a", 3, 5))
    client = BatchClient("https://api.example.test/v1", "sk-test-abcdef123456",
                         transport=httpx.MockTransport(lambda request: httpx.Response(200, content=content)))  # fmt: skip
    target = tmp_path / "out.jsonl"
    if stale:
        (tmp_path / ".out.jsonl.lock").write_bytes(b"")  # kill -9 between taking the lock and removing it
    saved = _download(client, "output", "file-a", target)
    assert saved.lines == 3 and target.read_bytes() == content
    assert not (tmp_path / ".out.jsonl.lock").exists()


def test_a_second_atomic_write_to_the_same_path_is_refused_while_the_first_runs(tmp_path):
    """write_atomically (merge, join, --content, prepare) shared `<name>.part` the same way."""
    from batchctl.results import write_atomically

    target = tmp_path / "out.jsonl"
    refused: list[BaseException] = []

    def first(handle) -> int:
        handle.write(b"first\n")
        try:
            write_atomically(target, lambda h: h.write(b"second, truncating the first's .part\n"))
        except BatchctlError as exc:
            refused.append(exc)
        handle.write(b"still first\n")
        return 2

    assert write_atomically(target, first) == 2
    assert target.read_bytes() == b"first\nstill first\n"
    assert refused and "another batchctl command is writing" in str(refused[0])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ("data", "config")) == ["out.jsonl"]


def test_download_while_another_command_writes_the_name_stops_with_an_error(local_server, monkeypatch, tmp_path, in_tmp):
    """End to end against a real server: the name held by another writer (its lock taken here, as a second
    `batchctl download` would find it) -> `Error: another batchctl command is writing ...`, exit 1, and
    neither the output nor a `.part` file appears; once it is free, the same command saves the file."""
    import fcntl
    import os
    import time

    from typer.testing import CliRunner

    from batch_factory import create_batch
    from batchctl.cli.app import app

    monkeypatch.setenv("BATCHCTL_BASE_URL", local_server.base_url)
    batch_id = create_batch(local_server.base_url, tmp_path, 3)
    with BatchClient(local_server.base_url) as client:
        for _ in range(200):
            if client.batches.retrieve(batch_id).is_terminal:
                break
            time.sleep(0.05)
    runner = CliRunner()
    fd = os.open(in_tmp / ".res.jsonl.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        busy = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl"])
    finally:
        os.close(fd)
    assert busy.exit_code == 1, busy.output
    assert f"Error: another batchctl command is writing {in_tmp / 'res.jsonl'}" in busy.stderr or \
        "Error: another batchctl command is writing res.jsonl" in busy.stderr, busy.stderr  # fmt: skip
    assert not (in_tmp / "res.jsonl").exists() and not list(in_tmp.glob("*.part"))
    done = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl"])
    assert done.exit_code == 0, done.output
    assert len((in_tmp / "res.jsonl").read_bytes().splitlines()) == 3
    assert not (in_tmp / ".res.jsonl.lock").exists()


def test_download_to_stdout_whose_reader_went_away_ends_quietly(local_server, tmp_path):
    """`batchctl download BATCH --content -o - | head -1` against a real server: once `head` has gone,
    exit 1 without a word, as `validate` and `prepare -o -` do (it printed `Error: Broken pipe`)."""
    import os

    from batch_factory import create_batch
    from test_cli_download import wait_finished
    from test_output_plain import first_line_then_gone

    batch_id = wait_finished(local_server.base_url, create_batch(local_server.base_url, tmp_path, 3000))  # > a pipe
    env = {**os.environ, "BATCHCTL_BASE_URL": local_server.base_url, "BATCHCTL_AUTOSTART": "0"}
    code, stderr = first_line_then_gone(["download", batch_id, "--content", "-o", "-"], env=env, cwd=tmp_path)
    assert code == 1
    assert "Error:" not in stderr and "Broken pipe" not in stderr and "Traceback" not in stderr, stderr


def test_a_file_system_without_locks_writes_unlocked_rather_than_refusing(tmp_path, monkeypatch):
    """flock failing with another error than "held" (ENOLCK on some network mounts) is no other writer."""
    import errno
    import fcntl

    from batchctl.results import write_atomically

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    target = tmp_path / "out.jsonl"
    assert write_atomically(target, lambda h: h.write(b"x\n")) == 2
    assert target.read_bytes() == b"x\n" and not (tmp_path / ".out.jsonl.lock").exists()

"""The dashboard and the list fit the terminal they are drawn on: 80 and 120 columns, 1 to 20 batches,
on a real pseudo-terminal; ids and status words are never cut."""

from __future__ import annotations

import os
import re
import time

import pytest
from rich.console import Console

from batch_factory import create_batch, write_requests
from batchctl.api import Batch
from batchctl.cli.render import list_table
from test_cli_status import run_in_pty

pytestmark = pytest.mark.e2e

CONTROL = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
STATUS_WORDS = ("validating", "in_progress", "finalizing", "completed")


def drawn_lines(raw: bytes) -> list[str]:
    """Every line the terminal showed: split at newlines, carriage returns and cursor moves."""
    pieces = re.split(rb"\r|\n|\x1b\[1A|\x1b\[2K", raw)
    return [line for line in (CONTROL.sub(b"", p).decode("utf-8", "replace") for p in pieces) if line.strip()]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    from pathlib import Path

    from server_fixture import ServerHandle, free_port

    handle = ServerHandle(
        port=free_port(), data_dir=Path(tmp_path_factory.mktemp("fit")), args=["--latency", "0.01"], api_key=None
    ).start()
    yield handle
    handle.kill()


@pytest.mark.parametrize(("columns", "count"), [(80, 1), (80, 3), (80, 20), (120, 3)])
def test_watch_dashboard_fits_the_terminal(shared_server, tmp_path, columns, count):
    ids = [create_batch(shared_server.base_url, tmp_path, 4) for _ in range(count)]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "CI")}
    env.update(BATCHCTL_BASE_URL=shared_server.base_url, PYTHONUNBUFFERED="1", TERM="xterm-256color")
    code, raw = run_in_pty(["status", "--watch", "--interval", "0.1", *ids], env, columns=columns)
    assert code == 0, raw.decode(errors="replace")
    lines = drawn_lines(raw)
    too_wide = [line for line in lines if len(line) > columns]
    assert not too_wide, "\n".join(too_wide)
    text = "\n".join(lines)
    for batch_id in ids:
        assert re.search(rf"{batch_id}(\s|$)", text, re.M), batch_id  # every id whole
    shown = set(re.findall(r"\b(validating|in_progress|finalizing|completed|cancelled|failed)\b", text))
    assert "completed" in shown
    # A status word is never cut to `in_pr…` or `i…`.
    assert not re.search(r"\b(?:i|in|in_|in_p\w*?)…", text)


def make_batch(n: int, now: float) -> Batch:
    return Batch.model_validate({
        "id": f"batch_{n:032x}", "object": "batch", "endpoint": "/v1/chat/completions", "status": "in_progress",
        "created_at": int(now) - 300, "completion_window": "24h", "input_file_id": "file-1",
        "request_counts": {"total": 100, "completed": 37, "failed": 2}, "model": "qwen-plus-2025-01-25",
    })  # fmt: skip


@pytest.mark.parametrize("width", [80, 120])
def test_list_keeps_endpoint_and_model_on_a_narrow_terminal(width):
    now = time.time()
    console = Console(width=width, force_terminal=False, record=True)
    console.print(list_table([make_batch(n, now) for n in range(3)], now=now, width=width))
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    for n in range(3):
        assert f"batch_{n:032x}" in text
    assert text.count("in_progress") == 3 and "chat/completions" in text and "qwen-plus-2025-01-25" in text


def test_download_shows_byte_progress_on_a_terminal_only(shared_server, tmp_path):
    batch_id = create_batch(shared_server.base_url, tmp_path, 3)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "CI")}
    env.update(BATCHCTL_BASE_URL=shared_server.base_url, PYTHONUNBUFFERED="1", TERM="xterm-256color")
    out = tmp_path / "tty.jsonl"
    code, raw = run_in_pty(["download", batch_id, "--wait", "--interval", "0.1", "-o", str(out)], env, columns=100)
    assert code == 0, raw.decode(errors="replace")
    assert "Downloading the output file" in "\n".join(drawn_lines(raw))
    merge_input = write_requests(tmp_path / "merge-input.jsonl", 3)  # the same custom_ids as the batch's
    code, raw = run_in_pty(["download", batch_id, "--merge", str(merge_input), "-o", str(tmp_path / "m.jsonl")], env, columns=100)
    assert code == 0, raw.decode(errors="replace")
    assert "Writing the results in input order" in "\n".join(drawn_lines(raw))
    import subprocess
    import sys

    piped = subprocess.run(
        [sys.executable, "-m", "batchctl", "download", batch_id, "-o", str(tmp_path / "piped.jsonl")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "Downloading" not in piped.stderr  # no bar in a pipe or a log


def test_list_piped_is_plain_aligned_and_never_cut():
    """Piped, `list` writes plain lines (no Rich): one per batch, columns aligned, ids and statuses whole."""
    from batchctl.cli.render import list_lines

    now = time.time()
    batches = [make_batch(n, now) for n in range(3)]
    batches[1] = batches[1].model_copy(update={"id": "batch_" + "x" * 90, "status": "finalizing"})
    lines = list_lines(batches, now=now)
    assert lines[0].split("  ")[0] == "id" and "model / description" in lines[0]
    assert len(lines) == 4 and "batch_" + "x" * 90 in lines[2]
    offset = lines[0].index("status")
    assert all(line[offset:].split()[0] in ("status", "in_progress", "finalizing") for line in lines)
    assert all("5 min ago" in line and "qwen-plus-2025-01-25" in line for line in lines[1:])
    assert "\x1b" not in "".join(lines)

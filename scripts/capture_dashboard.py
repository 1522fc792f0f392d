"""Capture a frame of `batchctl status --watch` mid-run on a 120x40 pseudo-terminal into docs/dashboard.md.

    python scripts/capture_dashboard.py            # writes docs/dashboard.md
    python scripts/capture_dashboard.py --stdout   # prints the frame instead

Starts a local server (echo model with latency and a few injected failures) on a free port, submits
two batches through the API client, runs the watcher on a pty (the TTY path: Rich Live), splits what
it drew into frames at Live's cursor-up redraws, and keeps a frame where both batches are mid-run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS, ROWS = 120, 40
# Live redraws a frame by erasing its lines bottom-up: "\r" then ("erase line", "cursor up") repeated.
FRAME_SEPARATOR = re.compile(rb"\r(?:\x1b\[2K\x1b\[1A)+\x1b\[2K")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_input(path: Path, n: int, prompt: str) -> Path:
    lines = [
        json.dumps({"custom_id": f"{prompt}-{i}", "method": "POST", "url": "/v1/chat/completions",
                    "body": {"model": "echo", "messages": [{"role": "user", "content": f"{prompt} {i}"}]}})
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_in_pty(argv: list[str], env: dict[str, str]) -> bytes:
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        os.execve(sys.executable, [sys.executable, "-m", "batchctl", *argv], env)
    raw = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        raw += chunk
    os.waitpid(pid, 0)
    os.close(fd)
    return bytes(raw)


def pick_frame(raw: bytes) -> str:
    frames = [ANSI.sub(b"", f).decode("utf-8", "replace").rstrip() for f in FRAME_SEPARATOR.split(raw)]
    frames = [f for f in frames if f.count("in_progress") >= 2 and "━" in f]
    if not frames:
        raise SystemExit("no frame with both batches in progress was drawn; raise the server latency")
    # Trailing spaces are the terminal's, not the dashboard's.
    return "\n".join(line.rstrip() for line in frames[len(frames) // 2].splitlines())


def main() -> None:
    from batchctl.api import BatchClient

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(tmpdir / "server"),
             "--latency", "0.05", "--concurrency", "4", "--failure-rate", "0.04"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            client = BatchClient(base_url)
            for _ in range(100):
                try:
                    client.batches.list(limit=1)
                    break
                except Exception:
                    time.sleep(0.1)
            ids = []
            for n, name, description in ((400, "reviews", "sentiment of product reviews"),
                                         (250, "tickets", "triage of support tickets")):
                file = client.files.create(path=write_input(tmpdir / f"{name}.jsonl", n, name))
                ids.append(client.batches.create(
                    input_file_id=file.id, endpoint="/v1/chat/completions",
                    metadata={"description": description},
                ).id)
            env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES", "CI")}
            env.update(TERM="xterm-256color", BATCHCTL_BASE_URL=base_url,
                       BATCHCTL_CONFIG_DIR=str(tmpdir / "config"), BATCHCTL_DATA_DIR=str(tmpdir / "data"))
            raw = run_in_pty(["status", "--watch", "--interval", "0.5", *ids], env)
        finally:
            server.terminate()
            server.wait(10)
    frame = pick_frame(raw)
    if "--stdout" in sys.argv:
        print(frame)
        return
    doc = (
        "# The `status --watch` dashboard\n\n"
        "A frame of `batchctl status --watch --interval 0.5 BATCH_A BATCH_B` drawn mid-run in a 120x40 terminal\n"
        "(captured on a pseudo-terminal by `scripts/capture_dashboard.py`, colours stripped), against the local\n"
        "server's echo model with a little latency and 4% injected failures. On a terminal the panels redraw in\n"
        "place until every batch has finished; piped or under `CI=true` the same command prints one line per\n"
        "change instead (`batch_abc  in_progress  37/100 (ok 35, failed 2)  37%  elapsed 0:00:12`), and with\n"
        "`--json` one JSON object per line per change. For a provider whose counts only arrive at the end\n"
        "(DashScope, New-API relays) the progress row says *counts are reported when the batch finishes*\n"
        "instead of showing a frozen 0%. More than two batches are shown as one table row each.\n\n"
        "Exit codes once every batch has finished: 0 all completed, 3 failed, 4 expired, 5 cancelled\n"
        "(the worst wins: failed > expired > cancelled); Ctrl+C stops watching only (exit 130) and prints the\n"
        "command to re-attach.\n\n"
        "```text\n" + frame + "\n```\n"
    )
    (ROOT / "docs" / "dashboard.md").write_text(doc, encoding="utf-8")
    print(f"wrote {ROOT / 'docs' / 'dashboard.md'}")


if __name__ == "__main__":
    main()

"""Watching many batches at once: the first poll cycle, the interval kept, CPU while waiting, memory.

Starts `python -m batchctl.server` with a slow echo model (`--latency 4 --concurrency 1`: every batch
finishes one of its 15 requests every 4 s), uploads one input file and creates N batches on it, spread
over 4 s so that every 1-s poll sees some batch change (the watcher keeps its interval instead of
backing off), then runs the watcher three times per N:

1. `status --watch --json --interval 1` of one batch: the time to its first line is interpreter start,
   imports and one GET (subtracted below);
2. the same of all N batches: **first cycle** = time to the N-th line less (1), the median of 3
   pairs run in turn; then once more for `--seconds`: **interval kept** = the median time between the starts of successive poll cycles (each cycle's
   NDJSON lines arrive in one burst, after its GETs); peak RSS; CPU averaged over the window;
3. `status --watch --interval 30` of all N batches on a pseudo-terminal (the Rich dashboard): after its
   first cycle, **CPU while waiting** for the next poll (CPU seconds / wall seconds) and peak RSS.

The anchor is N sequential GETs with one httpx client (what a simple watcher does per cycle).

Targets (issue 14): first cycle of 50 batches < 0.5 s; 500 batches keep a 1 s interval (median cycle
period <= 1.15 s); CPU while waiting < 2 % of a core; peak RSS < 60 MiB. Exits 1 on a miss.

    python benchmarks/watch_many.py              # 50 and 500 batches (~1.5 min)
    python benchmarks/watch_many.py --quick      # 50 batches only, shorter windows
    python benchmarks/watch_many.py -n 200
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

FIRST_CYCLE_TARGET_S = 0.5
INTERVAL_TARGET_S = 1.15  # --interval 1, with what a loaded 2-core machine adds to a sleep
CPU_TARGET = 0.02
RSS_TARGET_MIB = 60.0
LINES_PER_BATCH = 15
LATENCY_S = 4.0  # the echo model's seconds per request
PAIRS = 3  # runs of the 1-batch and the N-batch watcher, in turn, for the first cycle
BURST_GAP_S = 0.25  # lines further apart than this belong to different poll cycles


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url.removesuffix("/v1") + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def create_batches(base: str, count: int, scratch: Path) -> list[str]:
    """One upload, `count` batches on it, their starts spread over LATENCY_S (500 batches in ~6 s)."""
    import httpx

    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}
        for i in range(LINES_PER_BATCH)
    ]  # fmt: skip
    path = scratch / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with httpx.Client(base_url=base, timeout=30) as http, path.open("rb") as f:
        file_id = http.post("/files", files={"file": ("in.jsonl", f)}, data={"purpose": "batch"}).json()["id"]
        body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        ids = []
        for _ in range(count):
            ids.append(http.post("/batches", json=body).json()["id"])
            time.sleep(LATENCY_S / count)
        return ids


def anchor_cycle(base: str, ids: list[str]) -> float:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as http:
        http.get(f"/batches/{ids[0]}")  # connect first, as a watcher would have
        start = time.perf_counter()
        for batch_id in ids:
            http.get(f"/batches/{batch_id}")
        return time.perf_counter() - start


def _env(base: str, scratch: Path) -> dict[str, str]:
    return {**os.environ, "BATCHCTL_BASE_URL": base, "BATCHCTL_CONFIG_DIR": str(scratch / "config"),
            "BATCHCTL_DATA_DIR": str(scratch / "data"), "BATCHCTL_AUTOSTART": "0", "PYTHONUNBUFFERED": "1"}  # fmt: skip


def watch_json(base: str, ids: list[str], scratch: Path, seconds: float) -> dict[str, float]:
    """Run the NDJSON watcher: time to the first full cycle, cycle periods, CPU, peak RSS."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "status", "--watch", "--json", "--interval", "1", *ids],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(base, scratch),
    )  # fmt: skip
    started = time.perf_counter()
    assert proc.stdout is not None
    arrivals: list[float] = []
    for _ in range(len(ids)):
        assert proc.stdout.readline(), "the watcher stopped early"
    to_full_cycle = time.perf_counter() - started
    arrivals.append(time.perf_counter())
    cpu_start, wall_start = _cpu_seconds(proc.pid), time.perf_counter()
    reader = threading.Thread(target=lambda: [arrivals.append(time.perf_counter()) for _ in iter(proc.stdout.readline, b"")], daemon=True)
    reader.start()
    time.sleep(seconds)
    cpu = (_cpu_seconds(proc.pid) - cpu_start) / (time.perf_counter() - wall_start)
    rss = _peak_rss_mib(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    starts = [t for previous, t in zip([0.0, *arrivals], arrivals) if t - previous > BURST_GAP_S]
    periods = [b - a for a, b in zip(starts, starts[1:])]
    return {"to_full_cycle": to_full_cycle, "interval": statistics.median(periods) if periods else float("inf"),
            "cycles": len(starts), "cpu_polling": cpu, "rss": rss}  # fmt: skip


def watch_dashboard(base: str, ids: list[str], scratch: Path, seconds: float) -> dict[str, float]:
    """Run the Rich dashboard on a pseudo-terminal with a 30 s interval; measure it waiting after one cycle."""
    master, slave = pty.openpty()
    env = {**_env(base, scratch), "COLUMNS": "120", "LINES": "50", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "status", "--watch", "--interval", "30", *ids],
        stdin=slave, stdout=slave, stderr=slave, env=env,
    )  # fmt: skip
    os.close(slave)
    drawn = bytearray()

    def drain() -> None:
        try:
            while chunk := os.read(master, 65536):
                drawn.extend(chunk)
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 30
    while b"in_progress" not in drawn and time.monotonic() < deadline:  # the first cycle is on screen
        time.sleep(0.05)
    time.sleep(0.5)
    cpu_start, wall_start = _cpu_seconds(proc.pid), time.perf_counter()
    time.sleep(seconds)
    cpu = (_cpu_seconds(proc.pid) - cpu_start) / (time.perf_counter() - wall_start)
    rss = _peak_rss_mib(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    os.close(master)
    return {"cpu_waiting": cpu, "rss": rss}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(count: int, seconds: float) -> list[str]:
    """Start a server, create `count` batches, print the figures; return the misses."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}/v1"
        server = subprocess.Popen(
            [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(scratch / "server"),
             "--latency", str(LATENCY_S), "--concurrency", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_healthy(base)
            made = time.perf_counter()
            ids = create_batches(base, count, scratch)
            made = time.perf_counter() - made
            anchor = anchor_cycle(base, ids)
            # The first cycle, as a median of pairs run in turn (a loaded machine shifts both alike).
            pairs = [(watch_json(base, ids[:1], scratch, 0)["to_full_cycle"], watch_json(base, ids, scratch, 0)["to_full_cycle"])
                     for _ in range(PAIRS)]  # fmt: skip
            one = statistics.median(a for a, _ in pairs)
            cycle = statistics.median(max(b - a, 0.0) for a, b in pairs)
            many = watch_json(base, ids, scratch, seconds)
            board = watch_dashboard(base, ids, scratch, min(seconds, 4.0))
        finally:
            server.terminate()
            server.wait(timeout=30)
    rss = max(many["rss"], board["rss"])
    print(f"{count} batches in progress (created in {made:.1f} s), watched with --interval 1")
    print(f"  anchor: {count} sequential GETs, one httpx client   : {anchor:.3f} s")
    print(f"  start to first line of 1 batch (median)           : {one:.3f} s")
    print(f"  first cycle: to all {count} lines less that (median of {PAIRS}): {cycle:.3f} s  (ratio to anchor {cycle / anchor:.2f})")
    print(f"  interval kept (median of {many['cycles'] - 1} cycle periods)           : {many['interval']:.2f} s")
    print(f"  CPU while polling every second (NDJSON)           : {many['cpu_polling']:.1%} of a core")
    print(f"  CPU while waiting for the next poll (dashboard)   : {board['cpu_waiting']:.1%} of a core")
    print(f"  peak RSS (NDJSON {many['rss']:.1f}, dashboard {board['rss']:.1f})          : {rss:.1f} MiB")
    misses = []
    if count <= 50 and cycle >= FIRST_CYCLE_TARGET_S:
        misses.append(f"{count}: first cycle {cycle:.3f} s >= {FIRST_CYCLE_TARGET_S} s")
    if many["interval"] > INTERVAL_TARGET_S:
        misses.append(f"{count}: interval {many['interval']:.2f} s > {INTERVAL_TARGET_S} s")
    if board["cpu_waiting"] >= CPU_TARGET:
        misses.append(f"{count}: CPU while waiting {board['cpu_waiting']:.1%} >= {CPU_TARGET:.0%}")
    if rss >= RSS_TARGET_MIB:
        misses.append(f"{count}: RSS {rss:.1f} MiB >= {RSS_TARGET_MIB:.0f} MiB")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--batches", type=int, action="append", help="how many batches (repeatable; default 50 and 500)")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long to watch the polling watcher (default 8)")
    parser.add_argument("--quick", action="store_true", help="50 batches only, a 4 s window (for run_all.py)")
    args = parser.parse_args()
    counts = args.batches or ([50] if args.quick else [50, 500])
    seconds = 4.0 if args.quick else args.seconds
    misses = [miss for count in counts for miss in measure(count, seconds)]
    print("MISS: " + "; ".join(misses) if misses else "OK")
    return 1 if misses else 0


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode()  # as an installed batchctl has it: no module compiled while timed
    sys.exit(main())

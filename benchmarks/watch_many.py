"""Watching many batches at once: the first poll cycle, CPU while waiting, and memory.

Starts `python -m batchctl.server` with a slow echo model (so the batches stay in progress), creates N
batches over HTTP, then runs `batchctl status --watch --json --interval 1 ID...` for a few seconds and
prints:

- anchor: N sequential GETs of the batches with one httpx client (what a simple watcher does per cycle);
- ours: the watcher's first cycle over all N batches: the time from its start to its N-th NDJSON line,
  less the same for a watch of one batch (interpreter start, imports and one GET);
- the watcher's CPU while waiting (CPU seconds / wall seconds after the first cycle) and its peak RSS.

Targets (issue 14): first cycle of 50 batches < 0.5 s, CPU while waiting < 2 % of a core, RSS < 60 MiB.
Exits 1 on a miss.

    python benchmarks/watch_many.py              # 50 batches
    python benchmarks/watch_many.py -n 500
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_CYCLE_TARGET_S = 0.5
CPU_TARGET = 0.02
RSS_TARGET_MIB = 60.0


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
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def create_batches(base: str, count: int, scratch: Path) -> list[str]:
    import httpx

    line = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
    path = scratch / "in.jsonl"
    path.write_text(json.dumps(line) + "\n")
    ids = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(count):
            with path.open("rb") as f:
                file_id = http.post("/files", files={"file": ("in.jsonl", f)}, data={"purpose": "batch"}).json()["id"]
            batch = http.post("/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                "completion_window": "24h"}).json()  # fmt: skip
            ids.append(batch["id"])
    return ids


def anchor_cycle(base: str, ids: list[str]) -> float:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as http:
        http.get(f"/batches/{ids[0]}")  # connect first, as a watcher would have
        start = time.perf_counter()
        for batch_id in ids:
            http.get(f"/batches/{batch_id}")
        return time.perf_counter() - start


def watch(base: str, ids: list[str], scratch: Path, seconds: float) -> tuple[float, float, float, float]:
    env = {**os.environ, "BATCHCTL_BASE_URL": base, "BATCHCTL_CONFIG_DIR": str(scratch / "config"),
           "BATCHCTL_DATA_DIR": str(scratch / "data"), "BATCHCTL_AUTOSTART": "0", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "status", "--watch", "--json", "--interval", "1", *ids],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    started = time.perf_counter()
    assert proc.stdout is not None
    for _ in range(len(ids)):
        assert proc.stdout.readline(), "the watcher stopped early"
    to_full_cycle = time.perf_counter() - started
    cpu_start = _cpu_seconds(proc.pid)
    wall_start = time.perf_counter()
    time.sleep(seconds)
    cpu = (_cpu_seconds(proc.pid) - cpu_start) / (time.perf_counter() - wall_start)
    rss = _peak_rss_mib(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    return to_full_cycle, cpu, rss, 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--batches", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to measure the waiting watcher")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}/v1"
        server = subprocess.Popen(
            [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(scratch / "server"),
             "--latency", "600", "--concurrency", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_healthy(base)
            ids = create_batches(base, args.batches, scratch)
            anchor = anchor_cycle(base, ids)
            one, _, _, _ = watch(base, ids[:1], scratch, 0.5)
            full, cpu, rss, _ = watch(base, ids, scratch, args.seconds)
            cycle = max(full - one, 0.0)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{args.batches} batches in progress, watched with --interval 1")
    print(f"  anchor: {args.batches} sequential GETs, one httpx client : {anchor:.3f} s")
    print(f"  start to first full cycle: 1 batch {one:.3f} s, {args.batches} batches {full:.3f} s")
    print(f"  ours:   the watcher's first cycle (the difference)   : {cycle:.3f} s  (ratio {cycle / anchor:.2f})")
    print(f"  watcher CPU while waiting                            : {cpu:.1%} of a core")
    print(f"  watcher peak RSS                                     : {rss:.1f} MiB")
    misses = []
    if args.batches <= 50 and cycle >= FIRST_CYCLE_TARGET_S:
        misses.append(f"first cycle {cycle:.3f} s >= {FIRST_CYCLE_TARGET_S} s")
    if cpu >= CPU_TARGET:
        misses.append(f"CPU {cpu:.1%} >= {CPU_TARGET:.0%}")
    if rss >= RSS_TARGET_MIB:
        misses.append(f"RSS {rss:.1f} MiB >= {RSS_TARGET_MIB:.0f} MiB")
    print("MISS: " + "; ".join(misses) if misses else "OK")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())

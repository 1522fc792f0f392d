"""`batchctl list --all` piped, against a bare httpx pagination loop, on 2,002 batches of a local server.

Starts `python -m batchctl.server` (echo model) in a subprocess, creates N batches on one small input,
then times, each in its own fresh process and with stdout into a file (a pipe, not a terminal):

1. the anchor: a bare loop paging `GET /v1/batches` with httpx (the server's page size, as `--all` uses)
   and printing one id per line;
2. ours: `batchctl --base-url URL list --all` (plain aligned lines when piped).

Each pair runs `--repeat` times, alternating; medians are shown. Exits 1 when ours is over `--target`
(2.0) times the anchor.

    python benchmarks/list_all.py            # 2,002 batches, 3 runs each
    python benchmarks/list_all.py -n 500 -r 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from upstream_throughput import ROOT, free_port, wait_port  # the benchmarks' folder is on sys.path

ANCHOR = """
import sys, httpx
base = sys.argv[1]
with httpx.Client(base_url=base, timeout=60) as http:
    after, ids = None, []
    while True:
        page = http.get("/batches", params={"after": after} if after else None).json()
        ids += [b["id"] for b in page["data"]]
        if not page.get("has_more") or not page["data"]:
            break
        after = page["data"][-1]["id"]
sys.stdout.write("".join(i + "\\n" for i in ids))
"""


def create_batches(base: str, n: int, workdir: Path) -> None:
    import httpx

    line = {"custom_id": "r0", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
    with httpx.Client(base_url=base, timeout=60) as http:
        file_id = http.post("/files", files={"file": ("in.jsonl", json.dumps(line).encode() + b"\n")},
                            data={"purpose": "batch"}).json()["id"]  # fmt: skip
        for i in range(n):
            http.post("/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                        "completion_window": "24h", "metadata": {"description": f"bench {i}"}},
                      ).raise_for_status()  # fmt: skip


def timed(command: list[str], out: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    with open(out, "wb") as stdout:
        subprocess.run(command, stdout=stdout, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--batches", type=int, default=2002)
    parser.add_argument("-r", "--repeat", type=int, default=3, help="runs of each; medians are shown")
    parser.add_argument("--target", type=float, default=2.0, help="the most ours/anchor that passes")
    parser.add_argument("--quick", action="store_true", help="one run of each (for run_all.py)")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env["BATCHCTL_CONFIG_DIR"], env["BATCHCTL_DATA_DIR"] = str(workdir / "config"), str(workdir / "data")
        port = free_port()
        command = [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(workdir / "server")]
        with open(workdir / "server.log", "wb") as log:
            server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_port(port)
            base = f"http://127.0.0.1:{port}/v1"
            create_batches(base, args.batches, workdir)
            time.sleep(1.0)  # let the echo batches finish, so both read the same settled list
            anchors, ours = [], []
            for _ in range(args.repeat):  # alternate, so drifting machine load hits both alike
                anchors.append(timed([sys.executable, "-c", ANCHOR, base], workdir / "anchor.txt", env))
                ours.append(timed([sys.executable, "-m", "batchctl", "--base-url", base, "list", "--all"],
                                  workdir / "ours.txt", env))  # fmt: skip
            ids = (workdir / "anchor.txt").read_text().split()
            listed = [word for word in (workdir / "ours.txt").read_text().split() if word.startswith("batch_")]
            if len(ids) != args.batches or listed != ids:
                raise RuntimeError(f"expected {args.batches} ids, whole and in order: the anchor saw {len(ids)},"
                                   f" list --all {len(listed)}")  # fmt: skip
        finally:
            server.terminate()
            server.wait(10)
    anchor, served = statistics.median(anchors), statistics.median(ours)
    ratio = served / anchor
    print(f"{args.batches:,} batches, stdout into a file, median of {args.repeat} (each a fresh process)")
    print(f"  anchor: bare httpx pagination loop : {anchor:6.2f} s")
    print(f"  ours:   batchctl list --all        : {served:6.2f} s")
    print(f"  ratio                              : {ratio:6.2f}  (target <= {args.target:.1f})" + ("  MISS" if ratio > args.target else ""))
    sys.exit(1 if ratio > args.target else 0)


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode()  # as an installed batchctl has it: no module compiled while timed
    main()

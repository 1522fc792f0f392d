"""How fast is `batchctl validate`, next to a bare `json.loads` loop over the same file, and how much memory?

Generates a chat JSONL file — 50,000 lines (~100 MB) by default; with --big also 500,000 lines (~1 GB) —
then times, alternating, each in a fresh process:
  - anchor:      for line in f: json.loads(line)            (binary file, 1 MiB buffer)
  - ours, whole: `batchctl validate FILE --json`            (the CLI as a whole process)
  - ours, in:    validate_file(path, spec=openai) with the   (seconds inside the process, beside the
                 cost estimate's tally, as the CLI runs it   anchor's seconds inside its own)
and prints the medians, the ratios (target <= 1.0: faster than the bare loop) and the peak RSS of the
CLI (target <= 60 MiB at 1 GB / 500k lines). Exits 1 when a target is missed.

    python benchmarks/validate_speed.py [--lines 50000] [--line-bytes 2000] [--repeat 3] [--big] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

WORDS = (
    "batch request model token latency throughput window endpoint gateway channel upstream "
    "summarise translate classify the a of and to in for with on 数据 模型 批处理 请求 résumé naïve"
).split()

BARE = """
import json, resource, sys, time
path = sys.argv[1]
t = time.perf_counter()
n = 0
with open(path, "rb", buffering=1 << 20) as f:
    for line in f:
        json.loads(line)
        n += 1
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "lines": n, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

VALIDATE = """
import json, resource, sys, time
from batchctl.cost.estimate import EstimateTally
from batchctl.providers import get_provider
from batchctl.validation import validate_file
path = sys.argv[1]
t = time.perf_counter()
tally = EstimateTally(path)  # as `batchctl validate`: the cost estimate counted in the validation pass
report = validate_file(path, spec=get_provider("openai"), tally=tally)
tally.for_profile(None)  # the sample's scaling and the prices, as validate ends
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "lines": report.lines, "tokens": report.est_input_tokens,
                  "problems": sorted({p.code for p in report.problems}),
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""



def generate(path: str, lines: int, line_bytes: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            target = rng.randint(line_bytes // 2, line_bytes * 3 // 2)
            words: list[str] = []
            size = 0
            while size < target - 250:
                w = rng.choice(WORDS)
                words.append(w)
                size += len(w.encode()) + 1
            request = {
                "custom_id": f"request-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [
                        {"role": "system", "content": "You are a helpful assistant."},
                        {"role": "user", "content": " ".join(words)},
                    ],
                    "max_tokens": rng.randint(50, 500),
                    "temperature": round(rng.random(), 2),
                },
            }
            f.write(json.dumps(request, ensure_ascii=False) + "\n")


# The tree measured: this checkout's src/, or BENCH_SRC (another checkout's src/, for a before/after).
SRC = os.environ.get("BENCH_SRC") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])), NO_COLOR="1")


def run(code: str, path: str) -> tuple[float, dict]:
    """(wall seconds of the whole process, what it printed as JSON)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True, text=True, env=ENV)
    return time.perf_counter() - start, json.loads(out.stdout)


def run_cli(path: str) -> tuple[float, dict]:
    """(wall seconds, the report) of `batchctl validate FILE --json`; exit 1 (problems found) is fine."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "batchctl", "validate", path, "--json"], capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    if out.returncode not in (0, 1):
        raise SystemExit(f"batchctl validate exited {out.returncode}: {out.stderr[-2000:]}")
    return wall, json.loads(out.stdout)


def cli_peak_rss(path: str) -> float:
    """Peak RSS (MiB) of one `batchctl validate` run, alone: the kernel's accounting of a waited-for child."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # fmt: skip
    command = [sys.executable, "-c", code, sys.executable, "-m", "batchctl", "validate", path, "--json"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=ENV)
    return int(out.stdout.strip()) / 1024


def measure(path: str, lines: int, repeat: int, rss_target: float | None) -> bool:
    size = os.path.getsize(path)
    print(f"file: {lines:,} lines, {size:,} bytes ({size / 2**20:.0f} MiB), python {sys.version.split()[0]}")
    run(BARE, path)  # warm the page cache so no side pays for the disk
    anchor_wall, anchor_in, cli_wall, ours_in = [], [], [], []
    report: dict = {}
    for _ in range(repeat):  # alternate, so drifting machine load hits all alike
        wall, bare = run(BARE, path)
        anchor_wall.append(wall)
        anchor_in.append(bare["seconds"])
        wall, report = run_cli(path)
        cli_wall.append(wall)
        ours_in.append(run(VALIDATE, path)[1]["seconds"])
    rss = cli_peak_rss(path)
    with tempfile.TemporaryDirectory() as tmp, open(path, "rb") as f:
        small = os.path.join(tmp, "one-line.jsonl")
        with open(small, "wb") as out:
            out.write(f.readline())
        floor = statistics.median(run_cli(small)[0] for _ in range(repeat))
    a_wall, a_in = statistics.median(anchor_wall), statistics.median(anchor_in)
    o_wall, o_in = statistics.median(cli_wall), statistics.median(ours_in)
    print(f"  anchor: bare json.loads loop   whole process {a_wall:7.3f} s   inside {a_in:7.3f} s")
    print(f"  ours:   batchctl validate      whole process {o_wall:7.3f} s   validate_file {o_in:7.3f} s")
    ok = True
    for name, ratio in (("whole process", o_wall / a_wall), ("in-process", o_in / a_in)):
        ok &= ratio <= 1.0
        print(f"  ratio {name:13}: {ratio:5.2f}x (target <= 1.0x){'' if ratio <= 1.0 else '  MISSED'}")
    rss_ok = rss_target is None or rss <= rss_target
    print(f"  peak RSS of batchctl validate: {rss:.1f} MiB" + ("" if rss_target is None else
          f" (target <= {rss_target:.0f} MiB){'' if rss_ok else '  MISSED'}"))  # fmt: skip
    print(f"  floor: the CLI's start (`batchctl validate` of the file's first line) {floor:.3f} s = "
          f"{floor / a_wall:.2f}x the anchor's whole process")
    codes = sorted({p["code"] for p in report.get("problems", [])})
    estimate = report.get("estimate") or {}
    print(f"  report: {report.get('requests', 0):,} requests, ~{estimate.get('input_tokens', 0):,} input tokens "
          f"({estimate.get('input_tokens_method')}, {estimate.get('counted_requests', 0):,} requests counted), "
          f"problems: {', '.join(codes) or 'none'}")  # fmt: skip
    return ok and rss_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--line-bytes", type=int, default=2000, help="average bytes per line")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also 500,000 lines (~1 GB), with the 60 MiB RSS target")
    parser.add_argument("--keep", help="write the generated file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "bench.jsonl")
        generate(path, args.lines, args.line_bytes)
        ok = measure(path, args.lines, args.repeat, None)
        if args.big:
            big = os.path.join(tmp, "big.jsonl")
            generate(big, 500_000, args.line_bytes)
            ok &= measure(big, 500_000, args.repeat, 60.0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode(os.path.join(SRC, "batchctl"))  # as an installed batchctl has it: no module compiled while timed
    main()

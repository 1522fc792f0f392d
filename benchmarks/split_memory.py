"""Split a ~1 GB JSONL file into parts and check the splitter stays under 100 MB RSS, at near read speed.

    python benchmarks/split_memory.py [--size-mb 1024] [--limit-mb 100] [--max-requests 50000] [--max-file-mb 200]

Generates the file in a temporary directory, then runs in subprocesses (each measured alone): the
anchor, a bare `for line in f` loop counting bytes, and ours, `plan_parts` plus `write_part` for every
part. Prints both times, their ratio and ours' peak RSS; exits 1 if that reaches the limit or the
parts do not add up to the input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ANCHOR = r"""
import json, resource, sys, time
start = time.perf_counter()
total = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        total += len(line)
print(json.dumps({"seconds": time.perf_counter() - start, "bytes": total,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

OURS = r"""
import json, os, resource, sys, time
from batchctl.jobs.split import plan_parts, write_part
source, out_dir, max_requests, max_file_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
start = time.perf_counter()
result = plan_parts(source, max_requests=max_requests, max_file_bytes=max_file_bytes)
planned = time.perf_counter()
written = 0
for plan in result.parts:
    target = write_part(source, plan, os.path.join(out_dir, f"part-{plan.index:04d}.jsonl"))
    written += target.stat().st_size
    target.unlink()  # keep the disk footprint to one part at a time
done = time.perf_counter()
print(json.dumps({"plan_seconds": planned - start, "write_seconds": done - planned, "parts": len(result.parts),
                  "requests": result.total_requests, "size": result.size, "written": written,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def write_jsonl(path: Path, size: int) -> tuple[int, int]:
    """A file of about `size` bytes of ~500-byte chat requests; returns (bytes, lines)."""
    body = json.dumps({"model": "qwen-plus", "messages": [{"role": "user", "content": "x" * 400}]})
    template = '{"custom_id": "request-%d", "method": "POST", "url": "/v1/chat/completions", "body": ' + body + "}\n"
    written = lines = 0
    with path.open("wb", buffering=1 << 20) as out:
        while written < size:
            batch = "".join(template % n for n in range(lines, lines + 1000)).encode()
            out.write(batch)
            written += len(batch)
            lines += 1000
    return written, lines


def run(code: str, *args: object) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"a benchmark subprocess failed:\n{done.stderr}")
    return json.loads(done.stdout)


def mib(kib: int) -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    return kib / (1024 * 1024) if sys.platform == "darwin" else kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated input (MiB)")
    parser.add_argument("--limit-mb", type=float, default=100.0, help="peak RSS the splitter must stay under (MiB)")
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--max-file-mb", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a 200 MiB input (for run_all.py)")
    args = parser.parse_args()
    if args.quick:
        args.size_mb = 200

    with tempfile.TemporaryDirectory(prefix="batchctl-split-") as tmp:
        source = Path(tmp) / "input.jsonl"
        size, lines = write_jsonl(source, args.size_mb * 1024 * 1024)
        print(f"input: {size:,} bytes, {lines:,} lines")
        run(ANCHOR, source)  # warm the page cache, so both timed runs read from memory
        anchor = run(ANCHOR, source)
        ours = run(OURS, source, tmp, args.max_requests, args.max_file_mb * 1024 * 1024)

    total = ours["plan_seconds"] + ours["write_seconds"]
    peak = mib(ours["peak_kib"])
    print(f"anchor (for line in f, count bytes): {anchor['seconds']:.2f} s, peak RSS {mib(anchor['peak_kib']):.1f} MB")
    print(
        f"ours: plan_parts {ours['plan_seconds']:.2f} s (ratio {ours['plan_seconds'] / anchor['seconds']:.2f}), "
        f"+ write_part x{ours['parts']} {ours['write_seconds']:.2f} s = {total:.2f} s "
        f"(ratio {total / anchor['seconds']:.2f})"
    )
    print(f"ours: peak RSS {peak:.1f} MB (limit {args.limit_mb:g} MB)")
    ok = True
    if ours["size"] != size or ours["written"] != size or ours["requests"] != lines or anchor["bytes"] != size:
        print(f"FAIL: the parts do not add up to the input: {ours} vs {size:,} bytes, {lines:,} lines")
        ok = False
    if peak >= args.limit_mb:
        print(f"FAIL: peak RSS {peak:.1f} MB reached the {args.limit_mb:g} MB limit")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""How fast is `validate_file`, next to a bare `json.loads` loop over the same file?

Generates a 50,000-line (~100 MB) chat JSONL file, then times, each in a fresh subprocess so peak
RSS is that measurement's own:
  - bare:     for line in f: json.loads(line)          (binary file, 1 MiB buffer)
  - validate: batchctl.validation.validate_file(path, spec=get_provider("openai"))
and prints lines/s, MB/s and peak RSS for both. Best of --repeat runs.

    python benchmarks/validate_speed.py [--lines 50000] [--line-bytes 2000] [--repeat 3] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

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
from batchctl.providers import get_provider
from batchctl.validation import validate_file
path = sys.argv[1]
t = time.perf_counter()
report = validate_file(path, spec=get_provider("openai"))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "lines": report.lines, "tokens": report.est_input_tokens,
                  "problems": sorted({p.code for p in report.problems}),
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

BASELINE = """
import json, resource
from batchctl.providers import get_provider
from batchctl.validation import validate_file
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
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


SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def run(code: str, path: str) -> dict:
    # The checkout's src/ first, so the benchmark measures this tree even when not installed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code, path], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--line-bytes", type=int, default=2000, help="average bytes per line")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="write the generated file here and keep it")
    args = parser.parse_args()

    tmpdir = None
    if args.keep:
        path = args.keep
    else:
        tmpdir = tempfile.TemporaryDirectory()
        path = os.path.join(tmpdir.name, "bench.jsonl")
    try:
        generate(path, args.lines, args.line_bytes)
        size = os.path.getsize(path)
        mb = size / (1024 * 1024)
        print(f"file: {args.lines:,} lines, {size:,} bytes ({mb:.1f} MB), python {sys.version.split()[0]}")
        run(BARE, path)  # warm the page cache so neither side pays for the disk
        base_rss = run(BASELINE, "")["maxrss_kb"]
        results = {}
        for name, code in (("bare json.loads", BARE), ("validate_file", VALIDATE)):
            runs = [run(code, path) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            best["maxrss_kb"] = max(r["maxrss_kb"] for r in runs)
            results[name] = best
        print(f"{'':16} {'seconds':>8} {'lines/s':>10} {'MB/s':>7} {'peak RSS':>9}")
        for name, r in results.items():
            s = r["seconds"]
            print(f"{name:16} {s:8.3f} {r['lines'] / s:10,.0f} {mb / s:7.1f} {r['maxrss_kb'] / 1024:7.1f} MB")
        ratio = results["validate_file"]["seconds"] / results["bare json.loads"]["seconds"]
        print(f"validate_file / bare = {ratio:.2f}x; interpreter + imports alone peak at {base_rss / 1024:.1f} MB RSS")
        print(
            f"estimated input tokens: {results['validate_file']['tokens']:,}; "
            f"problems found: {results['validate_file']['problems'] or 'none'}"
        )
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()


if __name__ == "__main__":
    main()

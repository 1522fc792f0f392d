"""Upload a 200 MB JSONL file with BatchClient.files.create and check the client stays under 100 MB RSS.

    python benchmarks/upload_memory.py [--size-mb 200] [--limit-mb 100]

The receiving server runs in a subprocess (so its memory is not counted) and only counts the
bytes it is sent. Exits 1 if the client's peak RSS reaches the limit or the byte counts differ.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = r"""
import http.server, json, sys

class Sink(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        remaining = int(self.headers["Content-Length"])
        received = 0
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            received += len(chunk)
            remaining -= len(chunk)
        body = json.dumps({"id": "file-bench", "object": "file", "bytes": received, "purpose": "batch",
                           "filename": "bench.jsonl", "received_body_bytes": received}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = http.server.HTTPServer(("127.0.0.1", 0), Sink)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def write_jsonl(path: Path, size: int) -> int:
    line_no = 0
    written = 0
    with path.open("wb") as out:
        while written < size:
            line = json.dumps(
                {
                    "custom_id": f"request-{line_no}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": "x" * 400}]},
                }
            ).encode() + b"\n"
            out.write(line)
            written += len(line)
            line_no += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--limit-mb", type=float, default=100.0)
    parser.add_argument("--quick", action="store_true", help="a 100 MiB upload (for run_all.py)")
    args = parser.parse_args()
    if args.quick:
        args.size_mb = 100

    from batchctl.api import BatchClient

    with tempfile.TemporaryDirectory(prefix="batchctl-bench-") as tmp:
        source = Path(tmp) / "bench.jsonl"
        size = write_jsonl(source, args.size_mb * 1024 * 1024)
        server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        try:
            port = int(server.stdout.readline())
            rss_before = peak_rss_mb()
            calls = 0

            def progress(sent: int, total: int) -> None:
                nonlocal calls
                calls += 1

            started = time.perf_counter()
            with BatchClient(f"http://127.0.0.1:{port}", "sk-bench-0000000000", max_retries=0, timeout=120) as client:
                uploaded = client.files.create(path=source, progress=progress)
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=10)
        peak = peak_rss_mb()

    body_bytes = uploaded.model_extra["received_body_bytes"]
    print(f"file size        {size:,} bytes ({size / 2**20:.1f} MiB)")
    print(f"body received    {body_bytes:,} bytes (file + {body_bytes - size} bytes of multipart framing)")
    print(f"elapsed          {elapsed:.2f} s, {size / 2**20 / elapsed:.1f} MiB/s")
    print(f"progress calls   {calls}")
    print(f"peak RSS         {peak:.1f} MiB (before upload {rss_before:.1f} MiB, limit {args.limit_mb:.0f} MiB)")
    ok = peak < args.limit_mb and size < body_bytes < size + 1024
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

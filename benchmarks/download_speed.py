"""`batchctl download` of a large output file, next to `curl -o` of the same URL.

A finished batch of 50,000 chat requests with a ~89 MB output, served on 127.0.0.1 by either
  - `--server serve` (default, as issue 14 measured): `python -m batchctl.server`, whose echo model
    runs a generated input (2 % of the requests fail into the error file); or
  - `--server stub`: a tiny stand-in of the Batch API's read side in a thread of this process, serving
    generated result files with `sendfile` (the fastest server there is: the strictest anchor);
then times, alternating, each a fresh process:
  - anchor: `curl -s -o FILE URL` of the output file's content (without curl: an httpx stream to a file);
  - ours:   `batchctl download BATCH_ID -o FILE` (both files saved, checked, counted, the bill computed).

Prints both medians, the ratio of medians and ours' peak RSS, and the floor under ours: a process
that only imports what `download` needs (the CLI, httpx, the API models); exits 1 when the ratio is
over --target (1.5).

    python benchmarks/download_speed.py [--server serve|stub] [--lines 50000] [--repeat 5] [--target 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
BATCH_ID = "batch_bench"
WORDS = "the a of and to in batch model token answer result 数据 模型 résumé".split()

FLOOR = [sys.executable, "-c", "import batchctl.cli.app, batchctl.api, batchctl.cli.commands.download"]
HTTPX_ANCHOR = """
import sys, httpx
with httpx.stream("GET", sys.argv[1], headers={"Authorization": "Bearer sk-bench"}) as r, open(sys.argv[2], "wb") as f:
    for chunk in r.iter_bytes(1 << 16):
        f.write(chunk)
"""


def result_line(i: int, rng: random.Random, *, failed: bool = False) -> dict:
    """One line of a Batch output file, shaped as OpenAI's."""
    if failed:
        status = rng.choice((400, 429, 500))
        body = {"error": {"message": "Rate limit reached" if status == 429 else "bad request", "type": "invalid_request_error",
                          "code": "rate_limit_exceeded" if status == 429 else None}}  # fmt: skip
    else:
        status = 200
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 350)))
        body = {
            "id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1764460800, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": words, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": rng.randint(20, 400), "completion_tokens": rng.randint(50, 500), "total_tokens": 0,
                      "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
            "system_fingerprint": "fp_bench",
        }  # fmt: skip
    return {"id": f"batch_req_{i}", "custom_id": f"request-{i}",
            "response": {"status_code": status, "request_id": f"req_{i:08d}", "body": body}, "error": None}  # fmt: skip


def error_line(i: int) -> dict:
    return {"id": f"batch_req_{i}", "custom_id": f"request-{i}", "response": None,
            "error": {"code": "server_error", "message": "The server had an error processing your request."}}  # fmt: skip


def generate(workdir: Path, lines: int, *, errors: int = 0, seed: int = 11) -> tuple[Path, Path, dict]:
    """(output file, error file, the batch object): `lines` results (2 % HTTP errors) and `errors`
    requests in the error file; custom_ids request-0 .. request-(lines + errors - 1), output shuffled."""
    rng = random.Random(seed)
    order = list(range(lines))
    rng.shuffle(order)
    output, error_file = workdir / "served-output.jsonl", workdir / "served-errors.jsonl"
    failed = 0
    with open(output, "w", encoding="utf-8") as f:
        for i in order:
            bad = rng.random() < 0.02
            failed += bad
            f.write(json.dumps(result_line(i, rng, failed=bad), ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(error_file, "w", encoding="utf-8") as f:
        for i in range(lines, lines + errors):
            f.write(json.dumps(error_line(i)) + "\n")
    batch = {
        "id": BATCH_ID, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
        "input_file_id": "file-input", "completion_window": "24h", "status": "completed",
        "output_file_id": "file-output", "error_file_id": "file-errors" if errors else None,
        "created_at": 1764460800, "in_progress_at": 1764460801, "expires_at": 1764547200, "finalizing_at": 1764460900,
        "completed_at": 1764460901, "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
        "request_counts": {"total": lines + errors, "completed": lines - failed, "failed": failed + errors},
        "metadata": None, "model": "gpt-4o-mini",
    }  # fmt: skip
    return output, error_file, batch


def serve(batch: dict, files: dict[str, Path]) -> tuple[ThreadingHTTPServer, str]:
    """A stand-in of the Batch API's read side: GET /v1/batches/ID, /v1/files/ID, /v1/files/ID/content."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _json(self, obj: object, status: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] == batch["id"]:
                return self._json(batch)
            if parts[:2] == ["v1", "files"] and len(parts) >= 3 and parts[2] in files:
                path = files[parts[2]]
                if len(parts) == 3:
                    return self._json({"id": parts[2], "object": "file", "bytes": path.stat().st_size,
                                       "created_at": 1764460900, "filename": path.name, "purpose": "batch_output"})  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(path.stat().st_size))
                self.end_headers()
                self.wfile.flush()
                with open(path, "rb") as f:
                    self.connection.sendfile(f)
                return None
            return self._json({"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}}, 404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def request_line(i: int, rng: random.Random, words: int) -> dict:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return {"custom_id": f"request-{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}}  # fmt: skip


def generate_input(path: Path, lines: int, *, words: int = 260, seed: int = 5) -> Path:
    """A chat batch input whose echo results are ~1.8 KB each (~89 MB for 50,000)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(json.dumps(request_line(i, rng, words), ensure_ascii=False) + "\n")
    return path


@contextmanager
def local_server(workdir: Path, env: dict[str, str], failure_rate: float = 0.02) -> Iterator[str]:
    """`python -m batchctl.server` (echo model) on a free port; yields its base URL."""
    from upstream_throughput import free_port, wait_port  # the benchmarks' folder is on sys.path

    port = free_port()
    command = [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(workdir / "server"),
               "--failure-rate", str(failure_rate), "--concurrency", "64", "--allow-no-auth"]  # fmt: skip
    with open(workdir / "server.log", "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(10)


def run_batch(base: str, input_path: Path, timeout: float = 600) -> dict:
    """Upload `input_path`, run it as a batch on the local server, return the finished batch."""
    import httpx

    with httpx.Client(base_url=base, timeout=120) as http:
        with open(input_path, "rb") as f:
            file_id = http.post("/files", files={"file": (input_path.name, f)}, data={"purpose": "batch"}).json()["id"]
        batch = http.post("/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                            "completion_window": "24h"}).json()  # fmt: skip
        deadline = time.monotonic() + timeout
        while batch.get("status") not in ("completed", "failed", "expired", "cancelled"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the batch did not finish in {timeout:.0f} s: {batch}")
            time.sleep(0.5)
            batch = http.get(f"/batches/{batch['id']}").json()
    if batch["status"] != "completed" or not batch.get("output_file_id"):
        raise SystemExit(f"the batch ended {batch['status']}: {batch}")
    return batch


@contextmanager
def finished_batch(server: str, workdir: Path, lines: int, errors: int) -> Iterator[tuple[str, dict, Path | None]]:
    """(base URL, the finished batch, its input file or None) on the chosen server."""
    if server == "stub":
        output, error_file, batch = generate(workdir, lines, errors=errors)
        stub, base = serve(batch, {"file-output": output, "file-errors": error_file})
        try:
            yield base, batch, None
        finally:
            stub.shutdown()
        return
    env = bench_env(workdir, "")
    with local_server(workdir, env) as base:
        input_path = generate_input(workdir / "input.jsonl", lines)
        yield base, run_batch(base, input_path), input_path


def bench_env(workdir: Path, base_url: str) -> dict[str, str]:
    # The tree measured: this checkout's src/, or BENCH_SRC (another checkout's src/, for a before/after).
    src = os.environ.get("BENCH_SRC") or str(ROOT / "src")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])))
    env.update(BATCHCTL_CONFIG_DIR=str(workdir / "config"), BATCHCTL_DATA_DIR=str(workdir / "data"),
               BATCHCTL_BASE_URL=base_url, BATCHCTL_API_KEY="sk-bench", NO_COLOR="1")  # fmt: skip
    return env


def run_timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one run of `command`, a fresh process; exits when it fails."""
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:5])}... exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return wall


def peak_rss(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Peak RSS (MiB) of one run of `command`, alone: the kernel's accounting of a waited-for child."""
    code = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); " \
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, *command], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def compare(anchor: list[str], ours: list[str], env: dict[str, str], cwd: Path, repeat: int,
            clean: list[Path]) -> tuple[float, float]:  # fmt: skip
    """Medians (anchor, ours) of `repeat` alternating runs, `clean` removed before each."""
    times: dict[str, list[float]] = {"anchor": [], "ours": []}
    for _ in range(repeat + 1):  # the first pair warms the page cache and the imports
        for name, command in (("anchor", anchor), ("ours", ours)):
            for path in clean:
                path.unlink(missing_ok=True)
            times[name].append(run_timed(command, env, cwd))
    return statistics.median(times["anchor"][1:]), statistics.median(times["ours"][1:])


def anchor_command(url: str, target: Path) -> list[str]:
    if shutil.which("curl"):
        return ["curl", "-s", "-f", "-H", "Authorization: Bearer sk-bench", "-o", str(target), url]
    print("curl not found: the anchor is a bare httpx stream to a file")
    return [sys.executable, "-c", HTTPX_ANCHOR, url, str(target)]


def report(name: str, anchor: float, ours: float, rss: float, target: float) -> bool:
    ratio = ours / anchor
    ok = ratio <= target
    print(f"{name}: anchor {anchor:.3f} s, ours {ours:.3f} s, ratio {ratio:.2f}x (target <= {target}x), "
          f"ours' peak RSS {rss:.1f} MiB: {'ok' if ok else 'MISSED'}")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("serve", "stub"), default="serve", help="what serves the batch (see above)")
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--errors", type=int, default=500, help="with --server stub: requests in the error file")
    parser.add_argument("-r", "--repeat", type=int, default=5)
    parser.add_argument("--target", type=float, default=1.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with finished_batch(args.server, workdir, args.lines, args.errors) as (base, batch, _):
            env = bench_env(workdir, base)
            saved = workdir / "res.jsonl"
            anchor = anchor_command(f"{base}/files/{batch['output_file_id']}/content", workdir / "curl.jsonl")
            ours = [sys.executable, "-m", "batchctl", "download", batch["id"], "-o", str(saved), "--force"]
            a, o = compare(anchor, ours, env, workdir, args.repeat, [saved, workdir / "curl.jsonl"])
            rss = peak_rss(ours, env, workdir)
            size = saved.stat().st_size
            floor = statistics.median(run_timed(FLOOR, env, workdir) for _ in range(args.repeat))
        print(f"{args.server}: output file of {args.lines:,} results, {size:,} bytes ({size / 2**20:.1f} MiB); "
              f"median of {args.repeat}, each a fresh process")  # fmt: skip
        ok = report("download", a, o, rss, args.target)
        print(f"floor: importing what download needs takes {floor:.3f} s ({floor / a:.2f}x the anchor) before a byte moves")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode()  # as an installed batchctl has it: no module compiled while timed
    main()

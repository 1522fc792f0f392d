"""Throughput of the local server's `--upstream` path against the fastest bare client loop (aiohttp).

Starts a minimal, fast OpenAI-compatible stub (raw asyncio HTTP/1.1, keep-alive) in a subprocess,
then measures, at each concurrency against the same stub:

1. the anchor: N chat-completion POSTs with one aiohttp.ClientSession and C workers (the fastest
   Python loop we know; `--httpx` also shows an httpx.AsyncClient loop for comparison);
2. ours: `python -m batchctl.server --upstream <stub> --concurrency C`, one batch of N requests,
   timed from create to `completed` (validation, execution, durable result rows, output file),
   with the server's peak RSS.

Exits 1 when ours is under `--target` (0.8) of the anchor at any concurrency, or a request is lost.

    python benchmarks/upstream_throughput.py                 # 10,000 requests at -c 8, 64 and 256
    python benchmarks/upstream_throughput.py -n 2000 -c 32 -r 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STUB_BODY = json.dumps(
    {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()
STUB_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(STUB_BODY)).encode()
    + b"\r\n\r\n"
    + STUB_BODY
)


async def _stub_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(STUB_RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve_stub(port: int) -> None:
    server = await asyncio.start_server(_stub_connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def request_body(i: int) -> dict:
    return {"model": "stub", "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 16}


async def aiohttp_loop(url: str, n: int, concurrency: int) -> float:
    """Requests per second of N POSTs with `concurrency` workers sharing one aiohttp.ClientSession."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                async with session.post(url, json=request_body(i)) as response:
                    response.raise_for_status()
                    json.loads(await response.read())

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


async def httpx_loop(url: str, n: int, concurrency: int) -> float:
    """Requests per second of N POSTs with `concurrency` workers sharing one httpx.AsyncClient."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                response = await client.post(url, json=request_body(i))
                response.raise_for_status()
                response.json()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM, Linux), in MB; 0 where /proc is not there."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def through_server(stub_url: str, n: int, concurrency: int, workdir: Path) -> tuple[float, dict, float]:
    """Requests per second of one N-request batch through `batchctl.server --upstream`, the batch, peak RSS (MB)."""
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(workdir / "server"),
               "--upstream", stub_url, "--concurrency", str(concurrency)]  # fmt: skip
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}/v1"
        path = workdir / "input.jsonl"
        with open(path, "w") as f:
            for i in range(n):
                line = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": request_body(i)}
                f.write(json.dumps(line) + "\n")
        with httpx.Client(base_url=base, timeout=60) as http:
            with open(path, "rb") as f:
                file_id = http.post("/files", files={"file": ("input.jsonl", f)}, data={"purpose": "batch"}).json()["id"]
            start = time.perf_counter()
            batch = http.post(
                "/batches",
                json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
            ).json()
            while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(0.05)
                batch = http.get(f"/batches/{batch['id']}").json()
            elapsed = time.perf_counter() - start
        rss = peak_rss_mb(proc.pid)
        if batch["status"] != "completed" or batch["request_counts"]["completed"] != n:
            raise RuntimeError(f"batch did not complete cleanly (requests lost or failed): {batch}")
        return n / elapsed, batch, rss
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("-r", "--repeat", type=int, default=1, help="runs of each; medians are shown")
    parser.add_argument("--target", type=float, default=0.8, help="the least ratio ours/anchor that passes")
    parser.add_argument("--httpx", action="store_true", help="also time a bare httpx.AsyncClient loop")
    parser.add_argument("--stub", type=int, metavar="PORT", help=argparse.SUPPRESS)  # run only the stub
    args = parser.parse_args()
    if args.stub:
        asyncio.run(_serve_stub(args.stub))
        return

    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, __file__, "--stub", str(stub_port)])
    missed = False
    try:
        wait_port(stub_port)
        stub_url = f"http://127.0.0.1:{stub_port}/v1"
        n = args.requests
        runs = f", median of {args.repeat}" if args.repeat > 1 else ""
        print(f"{n:,} chat requests per run, stub upstream at {stub_url}{runs}")
        print(f"{'conc':>5} {'anchor aiohttp':>15} {'httpx loop':>11} {'ours':>8} {'ratio':>6} {'server RSS':>11}")
        for c in args.concurrency:
            anchors, httpxs, ours, rsss = [], [], [], []
            for _ in range(args.repeat):  # alternate, so drifting machine load hits both alike
                anchors.append(asyncio.run(aiohttp_loop(stub_url + "/chat/completions", n, c)))
                if args.httpx:
                    httpxs.append(asyncio.run(httpx_loop(stub_url + "/chat/completions", n, c)))
                with tempfile.TemporaryDirectory() as tmp:
                    rate, batch, rss = through_server(stub_url, n, c, Path(tmp))
                ours.append(rate)
                rsss.append(rss)
            anchor, served = statistics.median(anchors), statistics.median(ours)
            ratio = served / anchor
            missed |= ratio < args.target
            bare = f"{statistics.median(httpxs):7,.0f}/s" if httpxs else "-"
            print(f"{c:>5} {anchor:13,.0f}/s {bare:>11} {served:6,.0f}/s {ratio:6.2f} {statistics.median(rsss):8.0f} MB"
                  + ("  MISS" if ratio < args.target else ""))
        print(f"(ours: one batch timed from create to completed; target >= {args.target:.2f} of the anchor)")
    finally:
        stub.terminate()
        stub.wait(10)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()

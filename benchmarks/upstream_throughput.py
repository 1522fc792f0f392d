"""Throughput of the local server's `--upstream` path against a bare asyncio httpx loop.

Starts a minimal, fast OpenAI-compatible stub (raw asyncio HTTP/1.1, keep-alive) in a subprocess,
then measures, at the same concurrency against the same stub:

1. a bare loop: N chat-completion POSTs with httpx.AsyncClient and C workers;
2. the server: `python -m batchctl.server --upstream <stub> --concurrency C`, one batch of N requests,
   timed from create to `completed` (validation, execution, durable result rows, output file).

    python benchmarks/upstream_throughput.py                 # 10,000 requests, concurrency 8
    python benchmarks/upstream_throughput.py -n 2000 -c 32
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


async def bare_loop(url: str, n: int, concurrency: int) -> float:
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


def through_server(stub_url: str, n: int, concurrency: int, workdir: Path) -> tuple[float, dict]:
    """Requests per second of one N-request batch through `batchctl.server --upstream`."""
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
        if batch["status"] != "completed" or batch["request_counts"]["completed"] != n:
            raise RuntimeError(f"batch did not complete cleanly: {batch}")
        return n / elapsed, batch
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("-r", "--repeat", type=int, default=1, help="runs of each; the median is shown")
    parser.add_argument("--stub", type=int, metavar="PORT", help=argparse.SUPPRESS)  # run only the stub
    args = parser.parse_args()
    if args.stub:
        asyncio.run(_serve_stub(args.stub))
        return

    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, __file__, "--stub", str(stub_port)])
    try:
        wait_port(stub_port)
        stub_url = f"http://127.0.0.1:{stub_port}/v1"
        n, c = args.requests, args.concurrency
        print(f"{n:,} chat requests, concurrency {c}, stub upstream at {stub_url}")
        bares, serveds = [], []
        for _ in range(args.repeat):  # alternate, so drifting machine load hits both alike
            bares.append(asyncio.run(bare_loop(stub_url + "/chat/completions", n, c)))
            with tempfile.TemporaryDirectory() as tmp:
                rate, batch = through_server(stub_url, n, c, Path(tmp))
            serveds.append(rate)
        bare, served = statistics.median(bares), statistics.median(serveds)
        runs = f"  (median of {args.repeat})" if args.repeat > 1 else ""
        print(f"  bare asyncio httpx loop      : {bare:8,.0f} requests/s{runs}")
        print(f"  batchctl.server --upstream   : {served:8,.0f} requests/s  ({served / bare:.0%} of the bare loop)")
        print(f"  (batch {batch['id']}: {batch['request_counts']}, timed from create to completed)")
    finally:
        stub.terminate()
        stub.wait(10)


if __name__ == "__main__":
    main()

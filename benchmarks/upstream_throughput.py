"""Throughput of the local server's `--upstream` path against bare client loops (aiohttp and httpx).

Starts a minimal, fast OpenAI-compatible stub (raw asyncio HTTP/1.1, keep-alive) in a subprocess,
then measures, at each concurrency against the same stub, in turn (A B C A B C ..., medians):

1. anchor `aiohttp`: N chat-completion POSTs with one aiohttp.ClientSession and C workers, the fastest
   Python loop we know (issue #14: ours >= 0.8x at every concurrency, and ours not falling as
   concurrency rises);
2. anchor `httpx`: the same with one httpx.AsyncClient (issue #16: ours >= 0.8x at 64 and 256);
3. ours: `python -m batchctl.server --upstream <stub> --concurrency C`, one batch of N requests,
   timed from create to `completed` (validation, execution, durable result rows, output file),
   with the server's peak RSS; every request must come back completed (zero lost).

Exits 1 on any miss.

    python benchmarks/upstream_throughput.py                 # 10,000 requests at -c 8, 64 and 256, medians of 3
    python benchmarks/upstream_throughput.py -n 2000 -c 32 -r 1
    python benchmarks/upstream_throughput.py --server-args="--loop asyncio"   # without uvloop
    python benchmarks/upstream_throughput.py --tuned-anchor   # also the aiohttp loop with the server's GC and event loop
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


async def aiohttp_loop(url: str, n: int, concurrency: int, tuned_gc: bool = False) -> float:
    """Requests per second of N POSTs with `concurrency` workers sharing one aiohttp.ClientSession.

    `tuned_gc`: with the collector set as `batchctl serve` sets it (young generation at GC_YOUNG_THRESHOLD, what
    was built before frozen), to see how much of the difference that setting alone makes."""
    import aiohttp

    if tuned_gc:
        import gc

        from batchctl.server import GC_YOUNG_THRESHOLD

        thresholds = gc.get_threshold()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
        gc.collect()
        gc.freeze()
        try:
            return await aiohttp_loop(url, n, concurrency)
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)

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


def server_loop_factory():
    """The event loop the server runs on by default (uvicorn's `auto`): uvloop's when it is installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc); 0 where /proc is not there.

    CPU per request is the figure to trust on a loaded machine: wall time there includes the time the
    process waited for a core."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_server(
    stub_url: str, n: int, concurrency: int, workdir: Path, extra: list[str] = []
) -> tuple[float, dict, float, float]:
    """Requests per second of one N-request batch through `batchctl.server --upstream`, the batch, peak RSS (MB),
    and the server's CPU microseconds a request."""
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "batchctl.server", "--port", str(port), "--data-dir", str(workdir / "server"),
               "--upstream", stub_url, "--concurrency", str(concurrency), *extra]  # fmt: skip
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
            start, cpu = time.perf_counter(), cpu_seconds(proc.pid)
            batch = http.post(
                "/batches",
                json={"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"},
            ).json()
            while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(0.05)
                batch = http.get(f"/batches/{batch['id']}").json()
            elapsed, cpu = time.perf_counter() - start, cpu_seconds(proc.pid) - cpu
            ids = set()
            if batch.get("output_file_id"):  # zero lost: every custom_id once in the output file
                with http.stream("GET", f"/files/{batch['output_file_id']}/content") as content:
                    ids = {json.loads(line)["custom_id"] for line in content.iter_lines() if line}
        rss = peak_rss_mb(proc.pid)
        if batch["status"] != "completed" or batch["request_counts"]["completed"] != n or len(ids) != n:
            raise RuntimeError(f"batch did not complete cleanly (requests lost or failed): {batch}")
        return n / elapsed, batch, rss, cpu / n * 1e6
    finally:
        proc.terminate()
        proc.wait(10)


HTTPX_AT = (64, 256)  # issue #16's concurrencies for the httpx anchor (a slow loop: ~350/s)
FALL_TOLERANCE = 0.85  # "not falling": ours at a concurrency >= 85 % of ours at any lower one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    parser.add_argument("-c", "--concurrency", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("-r", "--repeat", type=int, default=3, help="runs of each; medians are shown")
    parser.add_argument("--httpx-requests", type=int, default=2_000,
                        help="requests per httpx run (a slow loop, ~350/s: its rate needs no more)")  # fmt: skip
    parser.add_argument("--target", type=float, default=0.8, help="the least ratio ours/anchor that passes")
    parser.add_argument("--no-httpx", action="store_true", help="skip the httpx anchor")
    parser.add_argument("--tuned-anchor", action="store_true",
                        help="run the aiohttp loop with the server's collector settings and event loop too (shown, not judged)")  # fmt: skip
    parser.add_argument("--server-args", default="", help="more options for the server, e.g. '--loop asyncio'")
    parser.add_argument("--stub", type=int, metavar="PORT", help=argparse.SUPPRESS)  # run only the stub
    args = parser.parse_args()
    if args.stub:
        asyncio.run(_serve_stub(args.stub))
        return

    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, __file__, "--stub", str(stub_port)])
    misses: list[str] = []
    try:
        wait_port(stub_port)
        stub_url = f"http://127.0.0.1:{stub_port}/v1"
        url = stub_url + "/chat/completions"
        n = args.requests
        runs = f", median of {args.repeat}" if args.repeat > 1 else ""
        print(f"{n:,} chat requests per run, stub upstream at {stub_url}{runs}; server args: {args.server_args or '-'}")
        print(f"{'conc':>5} {'aiohttp loop':>13} {'httpx loop':>11} {'ours':>9} {'/aiohttp':>9} {'/httpx':>7}"
              f" {'server RSS':>11} {'CPU us/req aiohttp, ours (ratio)':>33} {'load':>5}")
        best_lower = 0.0
        for c in args.concurrency:
            anchors, httpxs, ours, rsss, cpus = [], [], [], [], {"aiohttp": [], "ours": []}
            tuned: list[float] = []
            for _ in range(args.repeat):  # alternate, so drifting machine load hits all alike
                used = time.process_time()
                anchors.append(asyncio.run(aiohttp_loop(url, n, c)))
                cpus["aiohttp"].append((time.process_time() - used) / n * 1e6)
                if args.tuned_anchor:
                    with asyncio.Runner(loop_factory=server_loop_factory()) as runner:
                        tuned.append(runner.run(aiohttp_loop(url, n, c, tuned_gc=True)))
                if c in HTTPX_AT and not args.no_httpx:
                    httpxs.append(asyncio.run(httpx_loop(url, min(n, args.httpx_requests), c)))
                with tempfile.TemporaryDirectory() as tmp:
                    rate, _batch, rss, cpu = through_server(stub_url, n, c, Path(tmp), args.server_args.split())
                ours.append(rate)
                cpus["ours"].append(cpu)
                rsss.append(rss)
            anchor, served = statistics.median(anchors), statistics.median(ours)
            ratio = served / anchor
            if ratio < args.target:
                misses.append(f"{ratio:.2f}x the aiohttp loop at concurrency {c}")
            bare, vs_httpx = "-", "-"
            if httpxs:
                bare_rate = statistics.median(httpxs)
                bare, vs_httpx = f"{bare_rate:7,.0f}/s", f"{served / bare_rate:.2f}"
                if served / bare_rate < args.target:
                    misses.append(f"{served / bare_rate:.2f}x the httpx loop at concurrency {c}")
            if best_lower and served < FALL_TOLERANCE * best_lower:
                misses.append(f"ours falls to {served:,.0f}/s at concurrency {c} from {best_lower:,.0f}/s")
            best_lower = max(best_lower, served)
            anchor_cpu, our_cpu = statistics.median(cpus["aiohttp"]), statistics.median(cpus["ours"])
            print(f"{c:>5} {anchor:11,.0f}/s {bare:>11} {served:7,.0f}/s {ratio:9.2f} {vs_httpx:>7}"
                  f" {statistics.median(rsss):8.0f} MB {anchor_cpu:16.0f}, {our_cpu:4.0f} ({anchor_cpu / our_cpu:.2f})"
                  f" {os.getloadavg()[0]:5.1f}")
            if tuned:
                print(f"{'':>5} {statistics.median(tuned):11,.0f}/s  (the aiohttp loop with the server's collector settings"
                      f" and event loop; ours/that {served / statistics.median(tuned):.2f}, not judged)")
        print(f"(ours: one batch timed from create to completed, zero lost; target >= {args.target:.2f} of each anchor;"
              " CPU a request is the figure to trust on a loaded machine; load: the 1-minute load average after each row)")
    finally:
        stub.terminate()
        stub.wait(10)
    for miss in misses:
        print(f"MISS: {miss}")
    sys.exit(1 if misses else 0)


if __name__ == "__main__":
    from _bytecode import ensure_bytecode  # this directory is sys.path[0]

    ensure_bytecode()  # as an installed batchctl has it: the first batch's imports are not compiled while timed
    main()

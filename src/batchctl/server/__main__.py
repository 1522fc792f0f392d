"""`python -m batchctl.server --port P --data-dir D [...]`: the server without the CLI around it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from batchctl.config import LOCAL_HOST, LOCAL_PORT
from batchctl.server import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m batchctl.server",
        description="Run the embedded OpenAI-compatible Batch server in the foreground.",
    )
    parser.add_argument("--host", default=LOCAL_HOST, help=f"address to bind (default {LOCAL_HOST})")
    parser.add_argument("--port", type=int, default=LOCAL_PORT, help=f"port (default {LOCAL_PORT})")
    parser.add_argument("--data-dir", type=Path, default=None, help="state directory (default <data dir>/server)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("BATCHCTL_SERVER_API_KEY"),
        help="require 'Authorization: Bearer KEY' (env BATCHCTL_SERVER_API_KEY)",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request of the echo model")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="share of echo requests that fail (0..1)")
    parser.add_argument("--upstream", default=None, help="forward requests to this OpenAI-compatible base URL")
    parser.add_argument(
        "--upstream-key", default=os.environ.get("BATCHCTL_UPSTREAM_KEY"), help="key for --upstream (env BATCHCTL_UPSTREAM_KEY)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    parser.add_argument("--max-retries", type=int, default=4, help="retries of an upstream 429/5xx (default 4)")
    parser.add_argument("--rpm", type=int, default=None, help="cap on upstream requests per minute")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    if not 0.0 <= args.failure_rate <= 1.0:
        parser.error("--failure-rate must be between 0 and 1")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        api_key=args.api_key,
        echo_latency=args.latency,
        failure_rate=args.failure_rate,
        upstream=args.upstream,
        upstream_key=args.upstream_key,
        concurrency=args.concurrency,
        rpm=args.rpm,
        max_retries=args.max_retries,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()

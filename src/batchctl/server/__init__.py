"""The embedded OpenAI-compatible Batch server (`batchctl serve`, the default `local` profile).

`create_app` (in `batchctl.server.app`) builds the Starlette app; `run` serves it with uvicorn in the
foreground; `python -m batchctl.server` does the same from the command line (used by tests and by the
background autostart, so neither depends on the CLI). Heavy imports happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path

from batchctl.config import LOCAL_HOST, LOCAL_PORT


def run(
    host: str = LOCAL_HOST,
    port: int = LOCAL_PORT,
    data_dir: Path | str | None = None,
    api_key: str | None = None,
    echo_latency: float = 0.0,
    failure_rate: float = 0.0,
    upstream: str | None = None,
    upstream_key: str | None = None,
    concurrency: int = 8,
    rpm: int | None = None,
    max_retries: int = 4,
    log_level: str = "warning",
) -> None:
    """Serve the Batch API on host:port until interrupted; state lives in `data_dir`.

    `data_dir` defaults to `<batchctl data dir>/server`.
    """
    import uvicorn

    from batchctl.server.app import create_app
    from batchctl.server.executors import ExecutorConfig

    if data_dir is None:
        from batchctl.config import data_dir as batchctl_data_dir

        data_dir = batchctl_data_dir() / "server"
    config = ExecutorConfig(
        echo_latency=echo_latency,
        failure_rate=failure_rate,
        upstream=upstream,
        upstream_key=upstream_key,
        concurrency=concurrency,
        rpm=rpm,
        max_retries=max_retries,
    )
    app = create_app(Path(data_dir), api_key=api_key, executor_config=config)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level in ("debug", "info"))

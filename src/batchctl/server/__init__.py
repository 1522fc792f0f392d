"""The embedded OpenAI-compatible Batch server (`batchctl serve`, the default `local` profile).

`create_app` (in `batchctl.server.app`) builds the Starlette app from a `ServerConfig`
(`batchctl.server.config`); `run` serves it with uvicorn in the foreground; `python -m batchctl.server`
does the same from the command line (used by tests and by the background autostart, so neither
depends on the CLI). Heavy imports happen inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchctl.server.config import ServerConfig


def run(config: ServerConfig) -> None:
    """Serve the Batch API on config.host:config.port until interrupted (SIGINT or SIGTERM)."""
    import uvicorn

    from batchctl.server.app import create_app
    from batchctl.server.faults import wrap

    app = wrap(create_app(config), config.faults)  # fault rules (tests, demos) sit outside everything
    access_log = config.log_level in ("debug", "info")
    # loop="auto": uvloop when it is installed (the `fast` extra; docs/performance.md has the figure).
    uvicorn.run(
        app, host=config.host, port=config.port, log_level=config.log_level, access_log=access_log, loop=config.loop
    )

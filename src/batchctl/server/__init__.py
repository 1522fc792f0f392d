"""The embedded OpenAI-compatible Batch server (`batchctl serve`, the default `local` profile).

`create_app` (in `batchctl.server.app`) builds the Starlette app from a `ServerConfig`
(`batchctl.server.config`); `run` serves it with uvicorn in the foreground; `python -m batchctl.server`
does the same from the command line (used by tests and by the background autostart, so neither
depends on the CLI). Heavy imports happen inside the functions.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchctl.server.config import ServerConfig

STATE_LOCK = "server.lock"
_claimed: dict[Path, int] = {}  # state dir -> the descriptor whose lock this process holds until it exits
# The garbage collector's youngest generation, while serving: Python's default (700 allocations) collects in the
# middle of hundreds of requests in flight, so their objects are walked and moved to older generations again
# and again. At 100,000 they mostly die first: at concurrency 256, ~15-25 % less CPU a request than at 700 and
# ~10 % less than at 10,000 (docs/performance.md, section 1).
GC_YOUNG_THRESHOLD = 100_000


def _try_lock(state_dir: Path) -> tuple[int, str | None]:
    """(descriptor, None) holding the state dir's lock, or (-1, pid text of the server that holds it)."""
    import fcntl

    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / STATE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        return -1, holder or "?"
    return fd, None


def state_dir_holder(state_dir: Path) -> str | None:
    """The pid (text) of a running server that keeps its state in `state_dir`, or None when none does."""
    state_dir = Path(state_dir).resolve()
    if state_dir in _claimed:
        return str(os.getpid())
    if not state_dir.is_dir():  # no server keeps its state there (yet); nothing to create to find that out
        return None
    fd, holder = _try_lock(state_dir)
    if holder is None:
        os.close(fd)
    return holder


def claim_state_dir(state_dir: Path) -> None:
    """Hold `state_dir`'s lock for the life of this process: one server per state dir.

    Two servers on one state dir would each resume and run its unfinished batches (paying twice for
    every request sent upstream), so the second refuses to start. The lock is the kernel's (`flock`):
    it goes with the process, even after kill -9, so no stale lock is ever left behind.
    """
    from batchctl.errors import BatchctlError

    state_dir = Path(state_dir).resolve()
    if state_dir in _claimed:
        return
    try:
        fd, holder = _try_lock(state_dir)
    except OSError as exc:
        raise BatchctlError(
            f"cannot keep the server's state in {state_dir}: {exc.strerror or exc}",
            hint="Give the server a directory it can write: --data-dir DIR.",
        ) from None
    if holder is not None:
        raise BatchctlError(
            f"another batchctl server (pid {holder}) already keeps its state in {state_dir}",
            hint="One server per state dir (a second would run its batches twice): use that one, stop it "
            "(`batchctl serve --stop`, or `kill PID`), or give this one another --data-dir.",
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _claimed[state_dir] = fd


def run(config: ServerConfig) -> None:
    """Serve the Batch API on config.host:config.port until interrupted (SIGINT or SIGTERM)."""
    import uvicorn

    from batchctl.server.app import create_app
    from batchctl.server.faults import wrap

    claim_state_dir(config.state_dir())
    app = wrap(create_app(config), config.faults)  # fault rules (tests, demos) sit outside everything
    access_log = config.log_level in ("debug", "info")
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    # What the imports and the app built (~40k objects: aiohttp, Starlette, uvicorn, our modules) lives as
    # long as the server: frozen out of the collector, no full collection walks it again. ~8 % less CPU
    # a request through --upstream at concurrency 8 (docs/performance.md, section 1).
    gc.collect()
    gc.freeze()
    try:
        # loop="auto": uvloop when it is installed, as batchctl does except on Windows (docs/performance.md, section 1).
        uvicorn.run(
            app, host=config.host, port=config.port, log_level=config.log_level, access_log=access_log, loop=config.loop
        )
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)

"""`python -m batchctl`, and the `batchctl` console script (`run`)."""

import atexit
import gc

# The collector's youngest generation in the CLI (Python's default: 700 allocations). What starting a
# command builds (Typer, httpx, our modules: ~40k objects) lives until the process exits, yet at 700 a
# `download` ran ~60 young and 6 middle collections walking it, ~12 ms of CPU that found no garbage. At
# 100,000 it runs none; a long watch's cycles are still collected, every 100,000 allocations (the
# server's own setting while it serves: `batchctl.server.GC_YOUNG_THRESHOLD`).
CLI_GC_YOUNG_THRESHOLD = 100_000


def run() -> None:
    """The CLI, with the collector tuned first: before the imports, which make most of those objects."""
    gc.set_threshold(CLI_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    atexit.register(_freeze_survivors)  # registered first, so it runs last of the exit handlers
    from batchctl.cli.app import main, stop_raising_on_signals

    try:
        main()
    finally:
        stop_raising_on_signals()  # exiting now: threads joined, exit handlers, the collection below


def _freeze_survivors() -> None:
    """Collect what is garbage at exit (its finalizers run, with every module still there), then freeze
    what survives. Python's own finalization walks every object again in two or three full collections
    while it destroys the modules (~30-40 ms of CPU after a `download`): frozen, the live objects are
    skipped, and exiting takes ~20 ms (the one collection here, then the rest); the process ends and
    the system takes the memory back."""
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    run()

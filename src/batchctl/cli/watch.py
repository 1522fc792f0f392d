"""The CLI watcher used by `status --watch`, `cancel --wait`, `submit --wait` and `download --wait`.

Three faces over one polling loop (`batchctl.watching.poll_until_terminal`): a Rich Live dashboard on
a terminal, one plain line per change when piped or under CI, and NDJSON (one JSON object per line per
change) under --json. Ctrl+C stops the watching only; the batches keep running on the server.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import typer

from batchctl.cli.context import AppState
from batchctl.errors import interrupted_exit_code

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient

EXIT_CODES_EPILOG = (
    "Exit codes with --watch/--wait: 0 every batch completed; 3 failed (or completed with no request "
    "succeeding); 4 expired; 5 cancelled "
    "(several batches: the worst, failed > expired > cancelled); 1 error; 130 interrupted (the batch keeps running)."
)


FETCHERS = 16  # status GETs in flight at once while watching many batches


def _outcome(fetch: Callable[[str], Batch], batch_id: str) -> Batch | Exception:
    try:
        return fetch(batch_id)
    except Exception as exc:  # handed back to the loop, which decides (retry, give up) in order
        return exc


def resolve_interval(state: AppState, interval: float | None) -> float:
    """--interval, else the profile's poll_interval, else the provider's default (local: 1 s)."""
    from batchctl.watching import default_interval

    if interval:
        return float(interval)
    settings = state.settings()
    return default_interval(settings.provider, settings.poll_interval)


def watch_batches(
    state: AppState,
    batch_ids: list[str],
    *,
    interval: float | None = None,
    clients: dict[str, BatchClient] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    download_hint: bool = True,
    progress_to_stderr: bool = False,
    resume_hint: str | None = None,
    give_up_after: float | None = None,
) -> list[Batch]:
    """Watch until every batch is terminal: Rich Live dashboard on a TTY, one line per change otherwise,
    NDJSON (one JSON object per line per change, nothing else on stdout) under --json.

    Ctrl+C: stops watching only, prints how to re-attach (`batchctl status --watch ID...`) on stderr
    and raises typer.Exit(130). Returns the final Batch objects in the order given. Prints the final
    panels (not under --json) and, for completed ones, the `batchctl download ID` command (unless
    `download_hint` is False: the caller downloads them itself).

    Commands whose result is something else (`submit --wait`, `download --wait`) pass
    `progress_to_stderr` so stdout keeps only their result (under --json: no progress at all), and a
    `resume_hint` (the command that picks up where Ctrl+C left off) instead of `status --watch`.
    """
    from batchctl.cli.render import BatchView, batch_panel, change_line, dashboard
    from batchctl.errors import StuckInUnknownStatus, WatchGaveUp
    from batchctl.watching import GIVE_UP_AFTER_S, PollSchedule, RateTracker, counts_are_live, poll_until_terminal

    out = state.out
    ids = list(dict.fromkeys(batch_ids))  # watching the same id twice helps nobody

    def reattach(pending: list[str]) -> str:
        profile = f" -p {shlex.quote(state.profile)}" if state.profile else ""  # the server this one asked
        return f"Re-attach with: batchctl{profile} status --watch {' '.join(pending)}"

    seconds = resolve_interval(state, interval)
    schedule = PollSchedule(seconds)
    # Whether counts rise live depends on where each batch runs (a DashScope batch watched under
    # another profile still has frozen counts), so ask per batch.
    live = {batch_id: counts_are_live(state.provider_for_batch(batch_id)) for batch_id in ids}
    clients = dict(clients or {})  # tests inject theirs; the rest are made on first use

    for batch_id in ids:  # made here, not in the fetching threads: batches reached alike share one client
        if batch_id not in clients:
            clients[batch_id] = state.client_for_batch(batch_id)

    def fetch(batch_id: str) -> Batch:
        return clients[batch_id].batches.retrieve(batch_id)

    views: list[BatchView | None] = [None] * len(ids)
    trackers = [RateTracker() for _ in ids]
    live_mode = out.live_enabled(to_stderr=progress_to_stderr)
    header = (
        f"Watching {len(ids)} batch{'es' if len(ids) != 1 else ''}, polling every {seconds:g} s "
        "(slower while nothing changes). Ctrl+C stops watching; the batches keep running."
    )
    notice = {"text": ""}
    down_since: dict[str, float] = {}  # "t": wall time of the first failure in a row
    cycle_started: dict[str, float] = {}  # "t": when the last successful poll cycle began (monotonic)

    def on_update(index: int, batch: Batch, changed: bool) -> None:
        tracker = trackers[index]
        tracker.add(time.monotonic(), batch.request_counts.completed + batch.request_counts.failed)
        views[index] = BatchView(batch, live_counts=live[ids[index]], rate=tracker.rate())
        notice["text"] = ""
        down_since.clear()
        if changed and not live_mode:
            out.update(batch, change_line(batch, live_counts=live[ids[index]]), to_stderr=progress_to_stderr)

    def on_wait(delay: float, failure: BaseException | None) -> None:
        if failure is None:
            redraw()  # once per poll: what the GETs brought, and the elapsed clocks
            return
        cycle_started.pop("t", None)  # after a failure the whole delay (a Retry-After) is waited
        since = time.strftime("%H:%M:%S", time.localtime(down_since.setdefault("t", time.time())))
        if getattr(failure, "status", None) == 429:
            notice["text"] = f"rate limited (HTTP 429) since {since}, retrying; next poll in {delay:.3g} s"
        else:
            notice["text"] = f"server unreachable since {since}, retrying ({failure}); next poll in {delay:.3g} s"
        if not live_mode:
            out.warn(notice["text"])
        redraw()

    def render():
        shown = [v for v in views if v is not None]
        text = header + (f"\n{notice['text']}" if notice["text"] else "")
        return dashboard(shown, header=text)

    pool = ThreadPoolExecutor(FETCHERS)

    def fetch_all(fetch: Callable[[str], Batch], batch_ids: Sequence[str]) -> list[Batch | Exception]:
        # A cycle's GETs at once (bounded): 50 batches cost one round trip, not fifty.
        cycle_started["t"] = time.monotonic()
        return list(pool.map(lambda batch_id: _outcome(fetch, batch_id), batch_ids))

    def sleep_until_next_poll(delay: float) -> None:
        # The interval runs from the start of one poll cycle to the next: 500 batches whose GETs take
        # 0.4 s are still polled every second, not every 1.4 s.
        started = cycle_started.get("t")
        sleep(delay if started is None else max(0.0, delay - (time.monotonic() - started)))

    try:
        with out.live(render, to_stderr=progress_to_stderr) as redraw:
            final = poll_until_terminal(
                ids, fetch, on_update, schedule=schedule, on_wait=on_wait, sleep=sleep_until_next_poll, fetch_all=fetch_all,
                give_up_after=GIVE_UP_AFTER_S if give_up_after is None else give_up_after,
            )  # fmt: skip
    except (WatchGaveUp, StuckInUnknownStatus) as exc:
        pending = [i for i, v in zip(ids, views) if v is None or not v.batch.is_terminal] or ids
        exc.hint = resume_hint or reattach(pending)
        raise
    except KeyboardInterrupt as exc:
        if live_mode:  # the live region is transient: leave its last frame on screen, not a blank
            out.show(render(), to_stderr=progress_to_stderr)
        pending = [i for i, v in zip(ids, views) if v is None or not v.batch.is_terminal] or ids
        out.info("Stopped watching; the batch" + ("es keep" if len(pending) > 1 else " keeps") + " running on the server.")
        out.info(resume_hint or reattach(pending))
        raise typer.Exit(interrupted_exit_code(exc)) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl+C does not wait for GETs in flight

    out.show(*(batch_panel(BatchView(b, live_counts=live.get(b.id, True))) for b in final), to_stderr=progress_to_stderr)
    for batch in final:
        if download_hint and batch.status == "completed":
            out.info(f"Download the results: batchctl download {batch.id}")
    order = {b.id: b for b in final}
    return [order[i] for i in batch_ids]


def wait_for_batch(
    state: AppState, batch_id: str, *, interval: float | None, resume_hint: str | None = None,
    give_up_after: float | None = None,
) -> Batch:  # fmt: skip
    """Watch one batch to its end with progress on stderr (none under --json: the result is all stdout
    gets), for commands whose result is its files; Ctrl+C says how to resume (`resume_hint`), exit 130."""
    return watch_batches(
        state, [batch_id], interval=interval, download_hint=False, progress_to_stderr=True, resume_hint=resume_hint,
        give_up_after=give_up_after,
    )[0]  # fmt: skip

"""`batchctl status BATCH_ID...`: a panel per batch, or a live dashboard until they end (--watch)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import GiveUpAfterOpt, IntervalOpt, JsonOpt, OptionalBatchIdsArg
from batchctl.cli.watch import EXIT_CODES_EPILOG
from batchctl.errors import BatchctlError

EPILOG = (
    "Without --watch the exit code is 0 whatever the batch's state (the state is in the output). "
    + EXIT_CODES_EPILOG
    + " Polling: every --interval seconds (default: the profile's poll_interval, else 10 s; DashScope 60 s; "
    "the local server 1 s), slowing down to 4x that while nothing changes; a 429 waits at least its Retry-After."
)


RECENT = 10  # batches `status` shows when given no id


def status(
    ctx: typer.Context,
    batch_ids: OptionalBatchIdsArg = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep polling until every batch is finished; exit code by final state.")
    ] = False,
    interval: IntervalOpt = None,
    give_up_after: GiveUpAfterOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Show batches: status, progress, counts, timing, files and errors.

    With --watch: a live dashboard on a terminal, one line per change when piped or in CI, and one JSON
    object per line per change (NDJSON) with --json. Ctrl+C stops watching; the batches keep running.

    Without an id: the most recent batches and jobs submitted from this machine. `last` is the newest.
    --json always prints a list (of batch objects, or a job's view); --quiet only the ids.

    Example: batchctl status batch_abc123 --watch --interval 5
    """
    state = AppState.get(ctx, json_=json_)
    if not batch_ids:
        batch_ids = state.recent_ids(RECENT)
        state.out.info(
            f"No id given: the {len(batch_ids)} most recent submitted from this machine, newest first (all of them: batchctl jobs)."
            if batch_ids else "No id given, and nothing was submitted from this machine yet (batchctl list shows the server's)."
        )
        if not batch_ids:
            state.out.result([], ids=[])
            return
    batch_ids = state.resolve_ids(batch_ids)
    job = state.find_job(batch_ids[0]) if len(batch_ids) == 1 else None
    if job is not None:
        _job_status(state, job, watch=watch, interval=interval, give_up_after=give_up_after)
        return
    batch_ids = state.expand_ids(batch_ids)  # a job among several ids stands for its batches
    if watch:
        from batchctl.cli.watch import watch_batches
        from batchctl.errors import exit_code_for_batches

        final = watch_batches(state, batch_ids, interval=interval, give_up_after=give_up_after)
        code = exit_code_for_batches(final)
        if code:
            raise typer.Exit(code)
        return

    from batchctl.api import NotFoundError
    from batchctl.cli.render import BatchView, batch_panel
    from batchctl.watching import counts_are_live, rate_from_timestamps

    batches, missing = [], []
    for batch_id in batch_ids:
        try:
            batches.append(state.client_for_batch(batch_id).batches.retrieve(batch_id))
        except NotFoundError:
            if len(batch_ids) == 1:
                raise
            missing.append(batch_id)  # show the others, then say which were not found

    from batchctl.cost.bill import failures_for_batch

    # Why requests failed, for a finished batch with failures (read from its error file).
    failures = {b.id: failures_for_batch(state.client_for_batch(b.id), b) for b in batches}

    def panels() -> None:
        from batchctl.cli.cost_render import show_failures

        now = time.time()
        for batch in batches:
            live_counts = counts_are_live(state.provider_for_batch(batch.id))
            rate = rate_from_timestamps(batch, now) if live_counts else None
            state.out.print(batch_panel(BatchView(batch, live_counts=live_counts, rate=rate), now=now))
            if failures[batch.id] is not None:
                show_failures(state.out, failures[batch.id])

    # One shape whatever the number of ids: a list (a script cannot know in advance how many it gets).
    data = [{**b.model_dump(mode="json"), "failures": f.to_dict() if (f := failures[b.id]) else None} for b in batches]
    state.out.result(data, human=panels, ids=[b.id for b in batches])
    if missing:
        raise BatchctlError(
            f"no batch {', '.join(missing)} on this server (HTTP 404)",
            "Check the id, and that the profile points at the server that created it.",
        )


def _job_status(state: AppState, job, *, watch: bool, interval: float | None, give_up_after: float | None) -> None:
    """`status JOB`: the aggregate over its parts (a combined bar, ETA) and each part; --watch ends with it."""
    from batchctl.cli.reports import job_line, show_job
    from batchctl.jobs.view import load_view, watch_job
    from batchctl.errors import exit_code_for_batches
    from batchctl.watching import counts_are_live

    live = counts_are_live(job.provider)
    if not watch:
        view = load_view(state.journal(), job, state.client_for_batch)
        state.out.result([view], human=lambda: show_job(state.out, view, live_counts=live), ids=[job.id])
        return
    from batchctl.cli.watch import watch_batches

    view = watch_job(
        state.journal(), job, state.client_for_batch,
        lambda ids: watch_batches(state, ids, interval=interval, download_hint=False, give_up_after=give_up_after),
    )  # fmt: skip
    state.out.update(view, job_line(view))
    if view.total is not None and view.total.status == "completed":
        state.out.info(f"Download the results: batchctl download {job.id}")
    # After a retry, the job's requests decide (a retry part whose every request failed again is not the job).
    retried = any(p.retry_of is not None for p in view.parts)
    code = exit_code_for_batches([view.total] if retried and view.total is not None else view.batches)
    if code:
        raise typer.Exit(code)

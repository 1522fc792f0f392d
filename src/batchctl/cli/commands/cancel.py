"""`batchctl cancel BATCH_ID...`: stop batches (after confirmation), optionally watching until they stop."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import BatchIdsArg, GiveUpAfterOpt, IntervalOpt, JsonOpt, YesOpt
from batchctl.errors import EXIT_ERROR

EPILOG = (
    "Exit codes: 0 every batch was cancelled (with --wait: every one has stopped; the final panel shows "
    "whether it ended cancelled or finished first); 1 a batch could not be cancelled (unknown id, already "
    "finished) or confirmation was refused; 130 interrupted (the cancellation still goes on)."
)


def cancel(
    ctx: typer.Context,
    batch_ids: BatchIdsArg,
    yes: YesOpt = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Watch until each batch has stopped (cancelling takes a moment).")
    ] = False,
    interval: IntervalOpt = None,
    give_up_after: GiveUpAfterOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Cancel batches (a job id: every active batch of the job). Requests already finished are kept (and billed); the rest are dropped.

    Asks for confirmation unless --yes; when not on a terminal it refuses without --yes.

    Example: batchctl cancel batch_abc123 --yes --wait
    """
    from batchctl.cancelling import cancel_batches
    from batchctl.cli.errors import describe

    from batchctl.cancelling import AlreadyFinished

    state = AppState.get(ctx, json_=json_)
    out = state.out
    batch_ids = state.resolve_ids(batch_ids)
    jobs = [item for item in batch_ids if state.find_job(item) is not None]
    ids = list(dict.fromkeys(state.expand_ids(batch_ids)))  # a job: every one of its batches
    what = ids[0] if len(ids) == 1 else f"{len(ids)} batches ({', '.join(ids)})"
    if jobs:
        what = f"{', '.join(jobs)} ({len(ids)} batch{'es' if len(ids) != 1 else ''})"
    if not yes and not out.confirm(
        f"Cancel {what}? Finished requests are kept; the rest are dropped",
        refusal="refusing to cancel without confirmation: this is not a terminal",
        hint=f"Add --yes to cancel for real: batchctl cancel {' '.join(ids)} --yes",
    ):
        out.info("Nothing cancelled.")
        raise typer.Exit(EXIT_ERROR)

    outcomes = cancel_batches(ids, state.client_for_batch)
    cancelled = [o.batch for o in outcomes if o.batch is not None]
    if jobs:  # a job's parts that had already ended are not failures of `cancel JOB`
        done = [o for o in outcomes if isinstance(o.error, AlreadyFinished)]
        for outcome in done:
            out.info(f"{outcome.batch_id}: already finished, nothing to cancel")
        outcomes = [o for o in outcomes if o not in done]
    for outcome in outcomes:
        if outcome.error is not None:
            message, hint, _ = describe(outcome.error)
            out.error(message, hint)  # and the others are still cancelled
        else:
            out.success(f"{outcome.batch.id}: {outcome.batch.status}")

    if wait and cancelled:
        from batchctl.cli.watch import watch_batches

        watch_batches(state, [b.id for b in cancelled], interval=interval, give_up_after=give_up_after)
    else:
        out.result(cancelled, ids=[b.id for b in cancelled])  # a list, however many ids
    if len(cancelled) < len(outcomes):
        raise typer.Exit(EXIT_ERROR)

"""`batchctl cancel BATCH_ID...`: stop batches (after confirmation), optionally watching until they stop."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import BatchIdsArg, IntervalOpt, JsonOpt, YesOpt

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
    json_: JsonOpt = False,
) -> None:
    """Cancel batches. Requests already finished are kept (and billed); the rest are dropped.

    Asks for confirmation unless --yes; when not on a terminal it refuses without --yes.

    Example: batchctl cancel batch_abc123 --yes --wait
    """
    from batchctl.cli.output import is_interactive
    from batchctl.errors import BatchctlError

    state = AppState.get(ctx, json_=json_)
    out = state.out
    ids = list(dict.fromkeys(batch_ids))
    if not yes:
        if not is_interactive(sys.stdin):
            raise BatchctlError(
                "refusing to cancel without confirmation: this is not a terminal",
                hint=f"Add --yes to cancel for real: batchctl cancel {' '.join(ids)} --yes",
            )
        what = ids[0] if len(ids) == 1 else f"{len(ids)} batches ({', '.join(ids)})"
        if not typer.confirm(f"Cancel {what}? Finished requests are kept; the rest are dropped", default=False, err=True):
            out.info("Nothing cancelled.")
            raise typer.Exit(1)

    cancelled = []
    problems = 0
    for batch_id in ids:
        try:
            batch = _cancel_one(state, batch_id)
        except BatchctlError as exc:
            problems += 1
            out.error(exc.message, exc.hint)
            continue
        cancelled.append(batch)
        if not (state.json and wait):
            out.success(f"{batch.id}: {batch.status}")

    if wait and cancelled:
        from batchctl.cli.watch import watch_batches

        watch_batches(state, [b.id for b in cancelled], interval=interval)
    elif state.json:
        out.json(cancelled[0] if len(ids) == 1 and cancelled else cancelled)
    if problems:
        raise typer.Exit(1)


def _cancel_one(state: AppState, batch_id: str):
    """Cancel one batch; a refusal from the server becomes a BatchctlError that says why."""
    from batchctl.api import errors as api
    from batchctl.errors import BatchctlError

    client = state.client_for_batch(batch_id)
    try:
        # Look first: servers answer a finished batch with 409, which the client retries (OpenAI's lock
        # timeouts are 409s too) before giving up, so asking is both faster and clearer.
        current = client.batches.retrieve(batch_id)
        if current.is_terminal:
            raise BatchctlError(
                f"{batch_id} has already finished ({current.status}); there is nothing to cancel",
                hint=f"See it with: batchctl status {batch_id}",
            )
        return client.batches.cancel(batch_id)
    except api.NotFoundError as exc:
        raise BatchctlError(
            f"{batch_id}: no such batch on {client.base_url} ({exc.message})",
            hint="Check the id with: batchctl list",
        ) from None
    except (api.ConflictError, api.BadRequestError, api.UnprocessableEntityError) as exc:
        # OpenAI and the local server answer 409 for a batch that has already finished; others 400.
        try:
            current = client.batches.retrieve(batch_id)
        except api.APIError:
            current = None
        if current is not None and current.is_terminal:
            raise BatchctlError(
                f"{batch_id} has already finished ({current.status}); there is nothing to cancel",
                hint=f"See it with: batchctl status {batch_id}",
            ) from None
        raise BatchctlError(f"{batch_id}: the server refused to cancel it: {exc.message}") from None

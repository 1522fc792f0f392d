"""Cancelling batches: look first, cancel what still runs, and say plainly why a cancel was refused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from batchctl.errors import BatchctlError
from batchctl.urls import display_url

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient


@dataclass
class CancelOutcome:
    """One id's cancel: the batch as the server answered, or the error that says why not."""

    batch_id: str
    batch: Batch | None = None
    error: BatchctlError | None = None


class AlreadyFinished(BatchctlError):
    """The batch ended before it could be cancelled (`batch`: as the server last answered)."""

    batch: Batch | None = None


def _already_finished(batch: Batch) -> BatchctlError:
    error = AlreadyFinished(
        f"{batch.id} has already finished ({batch.status}); there is nothing to cancel",
        hint=f"See it with: batchctl status {batch.id}",
    )
    error.batch = batch
    return error


def cancel_batch(client: BatchClient, batch_id: str, *, look_first: bool = True) -> Batch:
    """Cancel one batch; a refusal from the server becomes a BatchctlError that says why (AlreadyFinished
    when the batch has ended). `look_first=False`: the caller has just seen the batch running."""
    from batchctl.api import errors as api

    try:
        # Look first: servers answer a finished batch with 409, which the client retries (OpenAI's lock
        # timeouts are 409s too) before giving up, so asking is both faster and clearer.
        if look_first:
            current = client.batches.retrieve(batch_id)
            if current.is_terminal:
                raise _already_finished(current)
        return client.batches.cancel(batch_id)
    except api.NotFoundError as exc:
        raise BatchctlError(
            f"{batch_id}: no such batch on {display_url(client.base_url)} ({exc.message})",
            hint="Check the id with: batchctl list",
        ) from None
    except (api.ConflictError, api.BadRequestError, api.UnprocessableEntityError) as exc:
        # OpenAI and the local server answer 409 for a batch that finished meanwhile; others 400.
        try:
            current = client.batches.retrieve(batch_id)
        except api.APIError:
            current = None
        if current is not None and current.is_terminal:
            raise _already_finished(current) from None
        raise BatchctlError(f"{batch_id}: the server refused to cancel it: {exc.message}") from None


def cancel_batches(batch_ids: Iterable[str], client_for: Callable[[str], BatchClient]) -> list[CancelOutcome]:
    """Cancel each id once (duplicates dropped), through the client that reaches it; never stops early."""
    outcomes = []
    for batch_id in dict.fromkeys(batch_ids):
        try:
            outcomes.append(CancelOutcome(batch_id, batch=cancel_batch(client_for(batch_id), batch_id)))
        except BatchctlError as exc:
            outcomes.append(CancelOutcome(batch_id, error=exc))
    return outcomes

"""`batchctl list`: the batches on the server, newest first, one page or all of them."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, complete_batch_statuses


def list_batches(
    ctx: typer.Context,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Page size asked of the server (default: the server's, usually 20)."),
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="Start after this batch id (the last id of the previous page).")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="Follow the pages until the last one, whatever page size the server uses.")
    ] = False,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", "-s", help="Only batches in this status, e.g. in_progress, completed, failed.", autocompletion=complete_batch_statuses
        ),
    ] = None,
    ds_name: Annotated[
        str | None,
        typer.Option("--ds-name", help="Only batches whose metadata ds_name is this (DashScope filters on the server)."),
    ] = None,
    create_after: Annotated[
        str | None,
        typer.Option("--create-after", help="Only batches created after this time: yyyyMMddHHmmss or 2025-01-31[ 08:00]."),
    ] = None,
    create_before: Annotated[
        str | None,
        typer.Option("--create-before", help="Only batches created before this time: yyyyMMddHHmmss or 2025-01-31[ 08:00]."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List batches, newest first: id, status, created, endpoint, counts, model or description.

    Without --all one page is shown and, when there are more, the command for the next one.
    With --quiet only the ids, one per line: batchctl list -q --status failed | xargs batchctl download

    Example: batchctl list --all --status in_progress
    """
    from batchctl.api.models import BATCH_STATUSES
    from batchctl.cli.render import list_lines, list_table
    from batchctl.listing import ListQuery, list_batches, parse_times

    if status is not None and status not in BATCH_STATUSES:
        raise typer.BadParameter(f"{status!r} is not a batch status; use one of: {', '.join(BATCH_STATUSES)}", param_hint="--status")
    query = ListQuery(
        limit=limit, after=after, all=all_, status=status, ds_name=ds_name, create_after=create_after, create_before=create_before
    )
    for name, value in (("--create-after", create_after), ("--create-before", create_before)):
        try:
            parse_times(ListQuery(create_after=value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=name) from None
    state = AppState.get(ctx, json_=json_)
    out = state.out
    client = state.client()  # only once the options are known to be good: it may start the local server
    listing = list_batches(client, state.provider_spec(), query)

    def show() -> None:
        if listing.batches:
            out.print_fitted(lambda width: list_table(listing.batches, width=width), plain=lambda: list_lines(listing.batches))
        else:
            out.info(f"No batches in status {status}." if status else "No batches.")

    out.result(listing.batches, human=show, ids=[b.id for b in listing.batches])
    if listing.next_after:
        out.info(f"More batches: batchctl list --after {listing.next_after}" + (f" --status {status}" if status else "") + "  (or --all)")

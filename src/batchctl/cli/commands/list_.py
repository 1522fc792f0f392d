"""`batchctl list`: the batches on the server, newest first, one page or all of them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt

# Statuses a server may filter on itself; anything else is still filtered here, after the fact.
SERVER_SIDE_STATUS_FILTER = frozenset({"dashscope"})


def provider_list_params(provider: str | None, *, status: str | None = None, **extra: Any) -> dict[str, Any]:
    """Query parameters a provider's list route understands beyond limit/after.

    The hook for provider filters (DashScope's `ds_name`, `create_after`, `create_before`): callers
    pass them as keywords; None values are dropped. `status` is sent only where the server filters on it.
    """
    params: dict[str, Any] = {key: value for key, value in extra.items() if value is not None}
    if status and provider in SERVER_SIDE_STATUS_FILTER:
        params["status"] = status
    return params


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
        typer.Option("--status", "-s", help="Only batches in this status, e.g. in_progress, completed, failed."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List batches, newest first: id, status, created, endpoint, counts, model or description.

    Without --all one page is shown and, when there are more, the command for the next one.

    Example: batchctl list --all --status in_progress
    """
    from batchctl.cli.render import list_table

    state = AppState.get(ctx, json_=json_)
    out = state.out
    client = state.client()
    extra = provider_list_params(state.settings().provider, status=status)
    next_after: str | None = None
    if all_:
        batches = list(client.batches.iter(limit=limit, after=after, extra_params=extra))
    else:
        page = client.batches.list(limit=limit, after=after, extra_params=extra)
        batches = page.data
        if page.has_more and page.data:
            next_after = page.last_id or page.data[-1].id
    if status:
        batches = [b for b in batches if b.status == status]
    if state.json:
        out.json(batches)
    else:
        if batches:
            out.print(list_table(batches))
        else:
            out.info(f"No batches in status {status}." if status else "No batches.")
    if next_after:
        out.info(f"More batches: batchctl list --after {next_after}" + (f" --status {status}" if status else "") + "  (or --all)")

"""`batchctl list`: the batches on the server, newest first, one page or all of them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt

# Statuses a server may filter on itself; anything else is still filtered here, after the fact.
SERVER_SIDE_STATUS_FILTER = frozenset({"dashscope", "newapi"})  # a New-API gateway relays to DashScope


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

    Example: batchctl list --all --status in_progress
    """
    from batchctl.api.models import BATCH_STATUSES
    from batchctl.cli.render import list_table
    from batchctl.providers import format_list_time, parse_list_time

    if status is not None and status not in BATCH_STATUSES:
        raise typer.BadParameter(f"{status!r} is not a batch status; use one of: {', '.join(BATCH_STATUSES)}", param_hint="--status")
    state = AppState.get(ctx, json_=json_)
    out = state.out

    times = {}
    for name, value in (("--create-after", create_after), ("--create-before", create_before)):
        if value is not None:
            try:
                times[name] = (format_list_time(value), parse_list_time(value).timestamp())
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint=name) from None
    client = state.client()  # only once the options are known to be good: it may start the local server
    provider = state.settings().provider
    ds_filters = {"ds_name": ds_name}
    if provider in SERVER_SIDE_STATUS_FILTER:  # DashScope's own filters; elsewhere they are applied below only
        ds_filters.update(
            create_after=times.get("--create-after", (None,))[0], create_before=times.get("--create-before", (None,))[0]
        )
    else:
        ds_filters = {}
    extra = provider_list_params(provider, status=status, **ds_filters)
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
    # Also filtered here: servers that ignore the parameters (OpenAI, the local server) give the same answer.
    if ds_name is not None:
        batches = [b for b in batches if (b.metadata or {}).get("ds_name") == ds_name]
    if times:
        after_ts = times.get("--create-after", (None, None))[1]
        before_ts = times.get("--create-before", (None, None))[1]
        batches = [
            b
            for b in batches
            if b.created_at is None
            or ((after_ts is None or _epoch(b.created_at) >= after_ts) and (before_ts is None or _epoch(b.created_at) <= before_ts))
        ]
    if state.json:
        out.json(batches)
    else:
        if batches:
            out.print(list_table(batches))
        else:
            out.info(f"No batches in status {status}." if status else "No batches.")
    if next_after:
        out.info(f"More batches: batchctl list --after {next_after}" + (f" --status {status}" if status else "") + "  (or --all)")


def _epoch(value: Any) -> float:
    """A batch timestamp (epoch seconds or a datetime) as epoch seconds."""
    return value.timestamp() if hasattr(value, "timestamp") else float(value)

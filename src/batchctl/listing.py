"""Listing batches: one page or all of them, with the filters the provider applies itself sent along
and every filter applied here too (servers that ignore a parameter then give the same answer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.providers import ProviderSpec


@dataclass(frozen=True)
class ListQuery:
    """What `batchctl list` asks for; times are the option values as typed (checked by `parse_times`)."""

    limit: int | None = None
    after: str | None = None
    all: bool = False
    status: str | None = None
    ds_name: str | None = None
    create_after: str | None = None
    create_before: str | None = None


@dataclass
class BatchListing:
    batches: list[Batch] = field(default_factory=list)
    next_after: str | None = None  # the cursor of the next page, when there is one and --all was not given


def parse_times(query: ListQuery) -> dict[str, tuple[str, float]]:
    """`create_after`/`create_before` as (the provider's wire format, epoch seconds); ValueError names
    the bad value. Call it before reaching the server: a bad option should cost no request."""
    from batchctl.providers import format_list_time, parse_list_time

    times = {}
    for name in ("create_after", "create_before"):
        value = getattr(query, name)
        if value is not None:
            times[name] = (format_list_time(value), parse_list_time(value).timestamp())
    return times


def server_params(spec: ProviderSpec, query: ListQuery, times: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """Query parameters beyond limit/after, for the filters this provider's list route understands."""
    wanted = {
        "status": query.status,
        "ds_name": query.ds_name,
        "create_after": times.get("create_after", (None,))[0],
        "create_before": times.get("create_before", (None,))[0],
    }
    return {key: value for key, value in wanted.items() if value is not None and key in spec.list_filters}


def _epoch(value: Any) -> float:
    """A batch timestamp (epoch seconds or a datetime) as epoch seconds."""
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def keep(batch: Batch, query: ListQuery, times: dict[str, tuple[str, float]]) -> bool:
    """Whether `batch` passes every filter of `query` (applied locally whatever the server did)."""
    if query.status and batch.status != query.status:
        return False
    if query.ds_name is not None and (batch.metadata or {}).get("ds_name") != query.ds_name:
        return False
    if batch.created_at is None:
        return True
    created = _epoch(batch.created_at)
    after = times.get("create_after")
    before = times.get("create_before")
    return (after is None or created >= after[1]) and (before is None or created <= before[1])


def list_batches(client: BatchClient, spec: ProviderSpec, query: ListQuery) -> BatchListing:
    """One page of batches (or every page with `query.all`), newest first as the server orders them."""
    times = parse_times(query)
    params = server_params(spec, query, times)
    listing = BatchListing()
    if query.all:
        batches = list(client.batches.iter(limit=query.limit, after=query.after, extra_params=params))
    else:
        page = client.batches.list(limit=query.limit, after=query.after, extra_params=params)
        batches = page.data
        if page.has_more and page.data:
            listing.next_after = page.last_id or page.data[-1].id
    listing.batches = [b for b in batches if keep(b, query, times)]
    return listing

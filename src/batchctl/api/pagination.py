"""Walking a cursor-paged list (`has_more` / `last_id`) one page at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def _iter_pages(fetch: Callable[[str | None], Any], after: str | None = None) -> Iterator[Any]:
    """The items of page after page of a cursor-paged list; `fetch(after)` gets one page.

    Stops when ``has_more`` is false, a page is empty, or the cursor would repeat (a server
    that ignores ``after`` would otherwise loop forever).
    """
    cursor = after
    seen: set[str] = set() if after is None else {after}
    while True:
        page = fetch(cursor)
        yield from page.data
        if not page.has_more or not page.data:
            return
        cursor = page.last_id or page.data[-1].id
        if cursor in seen:
            return
        seen.add(cursor)

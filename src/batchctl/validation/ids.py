"""The `custom_id`s seen so far, in fixed-size slots: duplicates found in flat memory.

A dict of the id strings took ~120 B a request (104 MiB at 500k lines). `SeenIds` keeps no strings:
each id's 64-bit hash (Python's own string hash, keyed afresh in every process) sits in a set while
there are few (up to `SET_IDS`), then in an open-addressing table, one `array` of 8-byte slots at
most half full: 8 MiB at 500k ids. It says
only *that* an id was seen; the line it was first seen on is found afterwards by reading the file
again for the few duplicates reported (`validate_file`), which also weeds out the rare id that only
shares a hash with an earlier one (about 1 in 150 million per file at 500k ids).
"""

from __future__ import annotations

import os
from array import array

_FIRST_SLOTS = 1 << 18
# Up to this many ids the hashes sit in a plain set (C speed, ~80 B an id: 5 MiB at this size); past
# it they move to the table (Python-speed probes, 8 B a slot). OpenAI's limit is 50,000 a batch.
SET_IDS = 1 << 16


class SeenIds:
    """`seen(custom_id)`: whether the id was given before (it is remembered from now on)."""

    def __init__(self, slots: int = _FIRST_SLOTS, set_ids: int = SET_IDS) -> None:
        self._small: set[int] | None = set()
        self._set_ids = set_ids
        self._slots = slots
        self._hashes = array("q")
        self._mask = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count if self._small is None else len(self._small)

    def seen(self, custom_id: str) -> bool:
        small = self._small
        if small is None:
            return self._seen_in_table(custom_id)
        h = hash(custom_id)
        if h in small:
            return True
        small.add(h)
        if len(small) > self._set_ids:
            self._spill()
        return False

    def _spill(self) -> None:
        """Move the hashes from the set to the table, for good."""
        small, self._small = self._small or set(), None
        slots = self._slots
        while slots < 2 * len(small) + 2:
            slots *= 2
        self._hashes, self._mask = array("q", bytes(8 * slots)), slots - 1
        hashes, mask = self._hashes, self._mask
        for h in small:
            i = (h or 1) & mask
            while hashes[i]:
                i = (i + 1) & mask
            hashes[i] = h or 1
        self._count = len(small)

    def _seen_in_table(self, custom_id: str) -> bool:
        h = hash(custom_id) or 1
        hashes, mask = self._hashes, self._mask
        i = h & mask
        while seen := hashes[i]:
            if seen == h:
                return True
            i = (i + 1) & mask
        hashes[i] = h
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return False

    def _grow(self) -> None:
        old = self._hashes
        self._mask = mask = len(old) * 2 - 1
        self._hashes = hashes = array("q", bytes(8 * (mask + 1)))
        for h in old:
            if h:
                i = h & mask
                while hashes[i]:
                    i = (i + 1) & mask
                hashes[i] = h


def first_lines(path: str | os.PathLike[str], wanted: set[str]) -> dict[str, int]:
    """The line each id of `wanted` is first used on in the file at `path` (ids not found are left out),
    reading no further than it must."""
    from batchctl.validation.jsonl import iter_request_lines

    found: dict[str, int] = {}
    for n, obj in iter_request_lines(path):
        cid = obj.get("custom_id")
        if type(cid) is str and cid in wanted and cid not in found:
            found[cid] = n
            if len(found) == len(wanted):
                break
    return found

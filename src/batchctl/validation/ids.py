"""The line each `custom_id` was first seen on, in fixed-size slots: duplicates found in flat memory.

A dict of the id strings took ~120 B a request (104 MiB at 500k lines). `FirstLines` keeps no strings:
each id's 64-bit hash (Python's own string hash, keyed afresh in every process) and its line number
sit in an open-addressing table of two arrays, 12 bytes a slot, at most half full: ~12 MiB at 500k.
Two different ids with the same 64-bit hash would pass for a duplicate; among 500k ids the chance is
about 1 in 150 million per file.
"""

from __future__ import annotations

from array import array

_FIRST_SLOTS = 1 << 16


class FirstLines:
    """`first_line(custom_id, n)`: the line the id was first seen on (n itself when it is new)."""

    def __init__(self, slots: int = _FIRST_SLOTS) -> None:
        self._hashes = array("q", bytes(8 * slots))  # 0: an empty slot
        self._lines = array("I", bytes(4 * slots))
        self._mask = slots - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def first_line(self, custom_id: str, n: int) -> int:
        h = hash(custom_id) or 1
        hashes, mask = self._hashes, self._mask
        i = h & mask
        while seen := hashes[i]:
            if seen == h:
                return self._lines[i]
            i = (i + 1) & mask
        hashes[i] = h
        self._lines[i] = n
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return n

    def _grow(self) -> None:
        old = zip(self._hashes, self._lines)
        slots = (self._mask + 1) * 2
        self._hashes = array("q", bytes(8 * slots))
        self._lines = array("I", bytes(4 * slots))
        self._mask = slots - 1
        hashes, lines, mask = self._hashes, self._lines, self._mask
        for h, n in old:
            if h:
                i = h & mask
                while hashes[i]:
                    i = (i + 1) & mask
                hashes[i] = h
                lines[i] = n

"""Reading JSONL files line by line: the one loop over batch input and result files, memory flat."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import BinaryIO

BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark: Windows editors put it first in a file
READ_BUFFER = 1 << 20  # bytes buffered per read of a JSONL file


def _refuse_constant(name: str) -> float:
    # Python reads NaN/Infinity; JSON has no such values and servers (Go's encoding/json) refuse them.
    raise ValueError(f"{name} is not a JSON value")


# Built once: json.loads(text) with keyword arguments would build a decoder for every line.
decode_json = json.JSONDecoder(parse_constant=_refuse_constant).decode


def iter_request_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict]]:
    """(1-based line number, parsed object) for each line that holds a JSON object.

    Blank lines, a UTF-8 BOM, CRLF endings and a last line without newline are handled as in
    `validate_file`; lines that are not UTF-8 JSON objects are skipped silently, so validate first.
    Line numbers match the validator's.
    """
    from batchctl.jsonfast import FAST_ERRORS, parse

    loads = decode_json
    for n, _, raw in iter_raw_lines(path):
        try:
            obj = parse(raw)  # the fast parser; the stdlib judges what it refuses
        except FAST_ERRORS:
            try:
                obj = loads(raw.decode())
            except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                continue
        if type(obj) is dict:
            yield n, obj


class LongLine(bytes):
    """The head of a line longer than `iter_raw_lines`'s `max_line`; `length` is the whole line's byte count.

    The rest of the line was read in bounded chunks and dropped: it never sits in memory.
    """

    length: int  # bytes in the file, ending included
    text_length: int  # without the line ending


def iter_raw_lines(
    path: str | os.PathLike[str], *, strip_bom: bool = True, max_line: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, byte offset, raw bytes) for each line of a file, endings included.

    The one loop over JSONL files: buffered binary reads, memory flat whatever the size. A UTF-8 BOM
    at the start of line 1 is stripped (its offset is then 3) unless `strip_bom` is False, for files
    passed on byte for byte. `offset` is where the yielded bytes start in the file. With `max_line`,
    a line longer than that (ending excluded) comes as a `LongLine` holding only its head.
    """
    limit = -1 if max_line is None else max_line + 2  # room for a CRLF ending
    with open(path, "rb", buffering=READ_BUFFER) as f:
        readline = f.readline
        raw = readline(limit)
        if not raw:
            return
        raw = _whole(f, raw, limit)  # the first line, whole or its head
        offset = _length(raw)
        if strip_bom and raw.startswith(BOM):
            yield 1, len(BOM), _without_bom(raw)
        else:
            yield 1, 0, raw
        n = 1
        while raw := readline(limit):  # the loop every line goes through: kept to the bone
            n += 1
            if len(raw) == limit and raw[-1] != 10:  # cut at the limit: not "\n"-terminated
                raw = _skip_rest(f, raw)
                yield n, offset, raw
                offset += raw.length
            else:
                yield n, offset, raw
                offset += len(raw)


def _whole(f: BinaryIO, raw: bytes, limit: int) -> bytes:
    """`raw`, or a `LongLine` when it was cut at `limit`."""
    return _skip_rest(f, raw) if len(raw) == limit and raw[-1] != 10 else raw


def _length(raw: bytes) -> int:
    return raw.length if isinstance(raw, LongLine) else len(raw)


def _without_bom(raw: bytes) -> bytes:
    if not isinstance(raw, LongLine):
        return raw[len(BOM) :]
    line = LongLine(raw[len(BOM) :])
    line.length, line.text_length = raw.length - len(BOM), raw.text_length - len(BOM)
    return line


def _skip_rest(f: BinaryIO, head: bytes) -> LongLine:
    length, ending = len(head), 0
    while chunk := f.readline(READ_BUFFER):
        length += len(chunk)
        if chunk.endswith(b"\n"):
            ending = 2 if chunk.endswith(b"\r\n") else 1
            break
    line = LongLine(head[:256])
    line.length = length
    line.text_length = length - ending
    return line

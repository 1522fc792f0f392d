"""Reading JSONL files line by line: the one loop over batch input and result files, memory flat."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

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
    loads = decode_json
    for n, _, raw in iter_raw_lines(path):
        try:
            obj = loads(raw.decode())
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
            continue
        if type(obj) is dict:
            yield n, obj


def iter_raw_lines(path: str | os.PathLike[str], *, strip_bom: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, byte offset, raw bytes) for each line of a file, endings included.

    The one loop over JSONL files: buffered binary reads, memory flat whatever the size. A UTF-8 BOM
    at the start of line 1 is stripped (its offset is then 3) unless `strip_bom` is False, for files
    passed on byte for byte. `offset` is where the yielded bytes start in the file.
    """
    offset = 0
    with open(path, "rb", buffering=READ_BUFFER) as f:
        for n, raw in enumerate(f, 1):
            start = offset
            offset += len(raw)
            if n == 1 and strip_bom and raw.startswith(BOM):
                raw = raw[len(BOM) :]
                start += len(BOM)
            yield n, start, raw

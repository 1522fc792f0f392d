"""Merging results back into input order by `custom_id` (`download --merge`).

Memory stays flat with file size: the merge keeps only an index of `custom_id -> (file, offset)`,
never the results themselves; a request with no result gets a `missing_result` error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from batchctl.results import MISSING_RESULT_CODE, parse_result, result_failed
from batchctl.validation import iter_raw_lines, iter_request_lines


@dataclass
class MergeReport:
    """How the results matched the input: one entry per input request, in input order."""

    requests: int = 0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)  # custom_ids whose result is an error
    missing: list[str] = field(default_factory=list)  # custom_ids with no result at all
    unexpected: int = 0  # results whose custom_id is not in the input
    duplicates: int = 0  # results beyond the first for one custom_id (ignored)
    unreadable: int = 0  # result lines that are not JSON objects with a custom_id (ignored)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": len(self.failed),
            "missing": len(self.missing),
            "unexpected": self.unexpected,
            "duplicates": self.duplicates,
            "unreadable": self.unreadable,
            "failed_ids": self.failed,
            "missing_ids": self.missing,
        }


def missing_result(custom_id: str) -> dict[str, Any]:
    """The envelope --merge writes for a request the batch returned no result for."""
    return {
        "id": None,
        "custom_id": custom_id,
        "response": None,
        "error": {"code": MISSING_RESULT_CODE, "message": "the batch returned no result for this request"},
    }


class _ResultIndex:
    """custom_id -> (file number, byte offset, length) over the result files; reads lines back on demand."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.where: dict[str, tuple[int, int, int]] = {}
        self.duplicates = 0
        self.unreadable = 0
        for number, path in enumerate(self.paths):
            for _, start, raw in iter_raw_lines(path, strip_bom=False):
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    continue
                obj = parse_result(line)
                cid = obj.get("custom_id") if obj else None
                if not isinstance(cid, str):
                    self.unreadable += 1
                    continue
                if cid in self.where:
                    self.duplicates += 1
                    continue
                self.where[cid] = (number, start, len(line))
        self._handles: list[IO[bytes] | None] = [None] * len(self.paths)

    def read(self, custom_id: str) -> bytes | None:
        spot = self.where.get(custom_id)
        if spot is None:
            return None
        number, start, length = spot
        handle = self._handles[number]
        if handle is None:
            handle = self._handles[number] = open(self.paths[number], "rb")
        handle.seek(start)
        return handle.read(length)

    def close(self) -> None:
        for handle in self._handles:
            if handle is not None:
                handle.close()


def iter_merged(input_path: Path, result_paths: Sequence[Path], report: MergeReport) -> Iterator[bytes]:
    """One result line per input request, in input order, joined by custom_id; fills `report`.

    Output and error files are not in input order (OpenAI does not promise it); a request with no
    result gets a `missing_result` envelope, so the merged file always has one line per request.
    """
    index = _ResultIndex(result_paths)
    used: set[str] = set()
    try:
        for _, request in iter_request_lines(input_path):
            cid = request.get("custom_id")
            if not isinstance(cid, str):
                continue
            report.requests += 1
            line = index.read(cid) if cid not in used else None
            if line is None:
                report.missing.append(cid)
                line = json.dumps(missing_result(cid), ensure_ascii=False).encode()
            else:
                used.add(cid)
                obj = parse_result(line)
                if obj is None or result_failed(obj):
                    report.failed.append(cid)
                else:
                    report.succeeded += 1
            yield line
    finally:
        index.close()
    report.unexpected = len(index.where) - len(used)
    report.duplicates = index.duplicates
    report.unreadable = index.unreadable

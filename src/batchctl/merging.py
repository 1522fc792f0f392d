"""Merging results back into input order by `custom_id` (`download --merge`).

Memory stays flat with file size: the merge keeps only an index of `custom_id -> (file, offset)`,
never the results themselves; a request with no result gets a `missing_result` error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
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
    superseded: int = 0  # results of older attempts that a retry's result replaced (ignored)
    unreadable: int = 0  # result lines that are not JSON objects with a custom_id (ignored)
    invalid_json: int = 0  # (--join of a --json-schema job) answers that do not parse, counted in `failed` too

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": len(self.failed),
            "missing": len(self.missing),
            "unexpected": self.unexpected,
            "duplicates": self.duplicates,
            "superseded": self.superseded,
            "unreadable": self.unreadable,
            "invalid_json": self.invalid_json,
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


class ResultIndex:
    """custom_id -> (file number, byte offset, length, ok) over result files; reads lines back on demand.

    Without `ranks` the first result of a custom_id wins (later ones are duplicates). With `ranks`
    (one per file: the attempt it holds, e.g. a job's part index, newer attempts higher) a success
    beats a failure and, between equals, the newest attempt wins: a newer failure never hides an
    older success. Results of the same rank beyond the first are duplicates; those of older
    attempts that lost are `superseded`.
    """

    def __init__(self, paths: Sequence[Path], ranks: Sequence[int] | None = None, *, read: bool = True) -> None:
        self.paths = list(paths)
        self.ranks = list(ranks) if ranks is not None else None
        self.where: dict[str, tuple[int, int, int, bool]] = {}
        self.duplicates = 0
        self.superseded = 0
        self.unreadable = 0
        self._handles: list[IO[bytes] | None] = [None] * len(self.paths)
        for number in range(len(self.paths)) if read else ():
            self.read_file(number)

    def read_file(self, number: int) -> None:
        """Index file `number` from disk (without `read`, the caller adds its lines as they come)."""
        for _, start, raw in iter_raw_lines(self.paths[number], strip_bom=False):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            obj = parse_result(line)
            cid = obj.get("custom_id") if obj else None
            if not isinstance(cid, str):
                self.unreadable += 1
                continue
            self.add(cid, number, start, len(line), not result_failed(obj))  # type: ignore[arg-type]

    def reread(self, numbers: Iterable[int]) -> None:
        """Start again from files `numbers` as they are on disk (a download restarted)."""
        self.where.clear()
        self.duplicates = self.superseded = self.unreadable = 0
        for number in numbers:
            self.read_file(number)

    def add(self, custom_id: str, number: int, start: int, length: int, ok: bool) -> None:
        """A result of file `number`: `length` bytes at `start` (ending excluded), a success or not."""
        self._add(custom_id, (number, start, length, ok))

    def _add(self, cid: str, spot: tuple[int, int, int, bool]) -> None:
        old = self.where.get(cid)
        if old is None:
            self.where[cid] = spot
            return
        if self.ranks is None or self.ranks[old[0]] == self.ranks[spot[0]]:
            self.duplicates += 1
            return
        self.superseded += 1
        if (spot[3], self.ranks[spot[0]]) > (old[3], self.ranks[old[0]]):
            self.where[cid] = spot

    def best(self, custom_id: str) -> tuple[int, int, int, bool] | None:
        """(file number, offset, length, ok) of the result that counts for `custom_id`, or None."""
        return self.where.get(custom_id)

    def rank(self, number: int) -> int:
        return self.ranks[number] if self.ranks is not None else 0

    def read(self, custom_id: str) -> bytes | None:
        spot = self.where.get(custom_id)
        if spot is None:
            return None
        number, start, length, _ = spot
        handle = self._handles[number]
        if handle is None:
            handle = self._handles[number] = open(self.paths[number], "rb")
        handle.seek(start)
        return handle.read(length)

    def iter_chosen(self, numbers: Iterable[int]) -> Iterator[bytes]:
        """The lines of files `numbers`, in file order, that are the result counting for their custom_id."""
        for number in numbers:
            for _, start, raw in iter_raw_lines(self.paths[number], strip_bom=False):
                line = raw.rstrip(b"\r\n")
                obj = parse_result(line) if line.strip() else None
                cid = obj.get("custom_id") if obj else None
                spot = self.where.get(cid) if isinstance(cid, str) else None
                if spot is not None and spot[0] == number and spot[1] == start:
                    yield line

    def close(self) -> None:
        for handle in self._handles:
            if handle is not None:
                handle.close()


_ResultIndex = ResultIndex


def iter_merged(
    input_path: Path, result_paths: Sequence[Path], report: MergeReport, *, ranks: Sequence[int] | None = None,
    index: ResultIndex | None = None,
) -> Iterator[bytes]:
    """One result line per input request, in input order, joined by custom_id; fills `report`.

    `ranks` (one per result file): the files are attempts of the same requests (a job's retries);
    each custom_id gets its newest successful result (see `ResultIndex`).

    Output and error files are not in input order (OpenAI does not promise it); a request with no
    result gets a `missing_result` envelope, so the merged file always has one line per request.
    `index`: the results' index when the caller built it (as they downloaded); read from the files if not.
    """
    index = index if index is not None else ResultIndex(result_paths, ranks)
    used: set[str] = set()
    try:
        for _, request in iter_request_lines(input_path):
            cid = request.get("custom_id")
            if not isinstance(cid, str):
                continue
            report.requests += 1
            spot = index.best(cid) if cid not in used else None
            if spot is None:
                report.missing.append(cid)
                line = json.dumps(missing_result(cid), ensure_ascii=False).encode()
            else:
                used.add(cid)
                line = index.read(cid)  # type: ignore[assignment]
                if spot[3]:  # judged when indexed: the line is not parsed again
                    report.succeeded += 1
                else:
                    report.failed.append(cid)
            yield line
    finally:
        index.close()
    report.unexpected = len(index.where) - len(used)
    report.duplicates = index.duplicates
    report.superseded = index.superseded
    report.unreadable = index.unreadable

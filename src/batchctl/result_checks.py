"""Is a downloaded result file really results? Checked before it gets its final name.

A proxy can answer `GET /files/{id}/content` with 200 and an HTML page, or cut the body mid-line; such
a file must never land under the name people asked for. Every line of an output or error file is a
JSON object with a `custom_id`; anything else is an error (`check_result_file`). Line counts that
disagree with the batch's `request_counts` are said (`count_differences`), not refused: a provider's
counts are not always live, and an output file may hold failures too.

A re-run keeps a file already there only if a download saved that very file there and it has not
changed since (`already_complete`); any other file is refused like any existing one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from batchctl.errors import BatchctlError

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.records import SavedFileRecord
    from batchctl.result_tally import ResultTally

_HTML = re.compile(rb"^\s*<(!doctype|html|head|body|\?xml)\b", re.IGNORECASE)


class ResultCheck:
    """One result file's lines checked and counted as they come (`add`, non-blank lines as read): the
    first that is not a JSON object with a `custom_id` (an HTML page, a cut line) raises BatchctlError
    naming it. `final`: the name the file was meant for, which the caller leaves untouched then. The
    lines are counted into `tally` (usage too with `count_usage`)."""

    def __init__(
        self, *, kind: str, file_id: str | None, final: Path, tally: ResultTally | None = None, count_usage: bool = False
    ) -> None:
        from batchctl.result_tally import ResultTally

        self.kind, self.file_id, self.final, self.count_usage = kind, file_id, final, count_usage
        self.tally = tally if tally is not None else ResultTally()
        self._start = self.tally.snapshot()

    def add(self, raw: bytes, start: int = 0) -> tuple[str, bool]:
        """(custom_id, failed) of the line `raw` (`start`: where it is in the file, unused here)."""
        custom_id, failed = self.tally.add(raw, count_usage=self.count_usage)
        if custom_id is None:
            self._refuse(raw)
        return custom_id, failed

    def add_block(self, block: bytes) -> None:
        """`add` for each non-blank line of `block` (lines joined by newlines; blank ones skipped), in
        one call: a downloaded chunk's lines."""
        refused = self.tally.add_block(block, count_usage=self.count_usage)
        if refused is not None:
            self._refuse(refused)

    def _refuse(self, raw: bytes) -> NoReturn:
        """The error for `raw`, the last line counted, which is not a result."""
        problem = _line_problem(raw.rstrip(b"\r\n")) or "is not a result"
        raise BatchctlError(
            f"the {self.kind} file {self.file_id or ''} the server sent is not results: line {self.counts[0]} {problem}".replace("  ", " "),
            f"Nothing was saved as {self.final}. Check the server with batchctl doctor, then download again.",
        )

    def restart(self) -> None:
        """Forget the lines added so far (the download starts again)."""
        self.tally.restore(self._start)

    @property
    def counts(self) -> tuple[int, int]:
        """(lines, failed ones) added."""
        return self.tally.lines - self._start.lines, self.tally.failed - self._start.failed


def check_result_file(
    path: Path, *, kind: str, file_id: str | None, final: Path, tally: ResultTally | None = None, count_usage: bool = False
) -> tuple[int, int]:
    """(lines, failed ones) of the result file at `path`, read back and checked with `ResultCheck`."""
    from batchctl.result_tally import raw_result_lines

    check = ResultCheck(kind=kind, file_id=file_id, final=final, tally=tally, count_usage=count_usage)
    for raw in raw_result_lines(path):
        check.add(raw)
    return check.counts


def file_gone(whose: str, kind: str, file_id: str, hint: str) -> BatchctlError:
    """A result file the server answers 404 for (deleted, or expired): `whose` results are lost for good."""
    return BatchctlError(
        f"{whose}: its {kind} file {file_id} is gone from the server (HTTP 404), so its results can no longer "
        "be downloaded",
        hint,
    )


def _line_problem(line: bytes) -> str | None:
    if lines_look_like_html(line):
        return "is an HTML page"
    try:
        obj = json.loads(line)
    except ValueError:
        shown = line[:60].decode("utf-8", "replace")
        return f"is not JSON ({shown!r}{'...' if len(line) > 60 else ''})"
    if not isinstance(obj, dict):
        return "is not a JSON object"
    if not isinstance(obj.get("custom_id"), str):
        return "has no custom_id"
    return None


def lines_look_like_html(line: bytes) -> bool:
    return bool(_HTML.match(line))


def count_differences(batch: Batch, *, output_lines: int | None, error_lines: int | None, live: bool = True) -> list[str]:
    """What the saved files' line counts say that the batch's `request_counts` do not, in words
    (output ~ completed, errors ~ failed); nothing when the batch reports no counts at all."""
    counts = batch.request_counts
    if counts.total <= 0 and counts.completed <= 0 and counts.failed <= 0:
        return []
    saved = (output_lines or 0) + (error_lines or 0)
    expected = counts.completed + counts.failed
    notes: list[str] = []
    if saved != expected:
        notes.append(
            f"the files hold {saved:,} result line{'s' if saved != 1 else ''} but the batch counts "
            f"{counts.completed:,} completed + {counts.failed:,} failed = {expected:,}"
            + ("" if live else " (this provider's counts may not be final)")
        )
    if batch.status == "completed" and expected < counts.total:  # a cancelled batch leaves requests unrun: no note
        missing = counts.total - expected
        notes.append(
            f"the batch is completed but counts only {expected:,} of its {counts.total:,} requests as completed or"
            f" failed: {missing:,} request{'s' if missing != 1 else ''} got no result"
        )
    return notes


@dataclass
class Completeness:
    """What a re-run may keep (`kept`), and why each other file already there may not (`why_not`, in a few
    words for the `already exists` refusal)."""

    kept: set[Path] = field(default_factory=set)
    why_not: dict[Path, str] = field(default_factory=dict)


def already_complete(client: BatchClient, files: Iterable[tuple[str | None, Path]]) -> Completeness:
    """Which of `(file id, path)` a re-run may keep: a download of that very file id recorded writing the
    path (`journal.remember_saved`), and it has not changed since (`SavedFileRecord.unchanged`); its size
    is still the server's `bytes` for the id and it is results. A download that saved the output but
    failed on the error file completes what is missing instead of refusing `already exists`.

    Size and "is results" alone are no proof: another batch's file of the same size, or a file edited
    without changing its length, would be kept and reported as this batch's results."""
    from batchctl import journal
    from batchctl.api.errors import APIError

    found = Completeness()
    for file_id, path in files:
        if not file_id or not path.is_file():
            continue
        why = _why_not_saved(journal.saved_file(path), file_id, path)
        if why is not None:
            found.why_not[path] = why
            continue
        try:
            size = client.files.retrieve(file_id).bytes
        except APIError:
            continue
        if not size or path.stat().st_size != size:
            found.why_not[path] = f"not the whole file {file_id}"
            continue
        try:
            check_result_file(path, kind="saved", file_id=file_id, final=path)
        except BatchctlError:
            found.why_not[path] = "not results"
            continue
        found.kept.add(path)
    return found


def _why_not_saved(record: SavedFileRecord | None, file_id: str, path: Path) -> str | None:
    """Why the file at `path` is not `file_id` as a download saved it, in a few words; None when it is."""
    if record is None:
        return "not saved by this download"
    if record.file_id != file_id:
        return f"saved from {record.file_id}" + (f" of {record.batch_id}" if record.batch_id else "")
    if not record.unchanged(path.stat()):
        return "changed since it was downloaded"
    return None

"""Batch results on disk: where they go, saving output and error files, counting them.

Nothing here knows Typer or Rich. Files are written to `<name>.part` and renamed only when complete,
so an interrupted run never leaves a truncated result behind. Merging into input order lives in
`merging`, extracting just the answers in `answers`.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchctl.errors import BatchctlError
from batchctl.jsonfast import loads
from batchctl.scratch import scratch_beside

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.merging import MergeReport, ResultIndex
    from batchctl.reporting import Reporter
    from batchctl.result_tally import ResultTally

CONTENT_FORMATS = ("jsonl", "csv")
# The error file goes beside the output: results.jsonl -> results.errors.jsonl.
ERRORS_INFIX = ".errors"
# The envelope written by --merge for a request the batch returned nothing for.
MISSING_RESULT_CODE = "missing_result"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


# -- names -----------------------------------------------------------------------------------------


def default_output_name(model: str | None, *, now: float | None = None, fmt: str = "jsonl") -> str:
    """The seed client's naming: `results_<model>_<YYYYMMDD-HHMMSS>.jsonl` (local time).

    Characters that do not belong in a file name (`/` in `Qwen/Qwen2.5`, spaces) become `-`.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    name = _UNSAFE_IN_NAME.sub("-", model or "").strip("-.") or "batch"
    return f"results_{name}_{stamp}.{fmt}"


def errors_path_for(output: Path) -> Path:
    """Where the error file goes by default: beside `output`, `<stem>.errors.jsonl`.

    The error file holds the server's raw result lines, so it is JSONL whatever `output` is.
    """
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return output.with_name(f"{stem}{ERRORS_INFIX}.jsonl")


def resolve_targets(
    output: Path | None, errors_output: Path | None, *, model: str | None, content_format: str | None
) -> tuple[Path, Path]:
    """--output (or the seed's default name) and --errors-output (or beside it)."""
    output = output or Path(default_output_name(model, fmt=content_format or "jsonl"))
    return output, errors_output or errors_path_for(output)


def check_overwrite(
    paths: Iterable[Path], *, force: bool,
    hint: str = "Use --force to overwrite, or choose another name with --output / --errors-output.",
) -> None:
    """Refuse, before anything is downloaded, to replace existing files unless `force` (`hint` names the
    options of the command that refuses), and what is no regular file even with it: the file is renamed
    into place, so a device (`/dev/null`, as root!), a named pipe or a socket would be replaced by it,
    not written to."""
    paths = list(paths)
    for path in paths:
        kind = _not_a_file(path)
        if kind:
            raise BatchctlError(f"{path} is {kind}, not a file: it would be replaced, not written to",
                                "Give the path of a file (or none: a new name is made).")  # fmt: skip
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        names = ", ".join(str(p) for p in existing)
        raise BatchctlError(
            f"{names} already exist{'s' if len(existing) == 1 else ''}",
            hint,
        )


def _not_a_file(path: Path) -> str | None:
    """What `path` is when it exists and is no regular file (a link counts as what it points to)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "no regular file"


# -- counting and reading --------------------------------------------------------------------------


def scan_results(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(result lines, failed ones) of a result file, in one streamed pass.

    Output files can hold failures too: some servers put HTTP error responses there.
    """
    from batchctl.result_tally import tally_file

    return tally_file(path)


def iter_result_lines(paths: Sequence[Path]) -> Iterator[bytes]:
    """The non-blank lines of each result file in turn, as raw bytes without the line ending."""
    from batchctl.validation import iter_raw_lines  # here: a download that reads nothing back never loads validation

    for path in paths:
        for _, _, raw in iter_raw_lines(path, strip_bom=False):
            if not raw.isspace():  # the same test as `raw.strip()`, without the copy
                yield raw.rstrip(b"\r\n")


def parse_result(line: bytes) -> dict[str, Any] | None:
    try:
        obj = loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes: no result
        return None
    return obj if isinstance(obj, dict) else None


def result_failed(result: dict[str, Any]) -> bool:
    """A result line that carries an error, or a response with an HTTP error status."""
    if result.get("error"):
        return True
    response = result.get("response")
    if not isinstance(response, dict):
        return True
    status = response.get("status_code")
    return isinstance(status, int) and status >= 400


# -- atomic writing --------------------------------------------------------------------------------


def write_atomically(path: Path, write: Callable[[IO[bytes]], int], *, text: bool = False, alone: bool = True) -> int:
    """Call `write(handle)` on `<path>.part`, then rename it to `path`; returns what `write` returns.

    On any error (Ctrl+C included) the `.part` file is removed and `path` is left as it was. One command at a
    time writes `path` (`only_writer`), unless `alone` is False: a name only this caller can make.
    """
    if not alone:  # a name no other writer can hold (the server's new file ids): no lock file beside it
        return _write_alone(path, write, text=text)
    with only_writer(path):  # two writers of one name shared the `.part` file
        return _write_alone(path, write, text=text)


def _write_alone(path: Path, write: Callable[[IO[bytes]], int], *, text: bool) -> int:
    partial = path.with_name(path.name + ".part")
    try:
        if text:
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                result = write(handle)  # type: ignore[arg-type]
        else:
            with open(partial, "wb") as handle:
                result = write(handle)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


def write_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Write `lines` (without endings) to `path` atomically, one per line; returns the count."""

    def write(handle: IO[bytes]) -> int:
        count = 0
        for line in lines:
            handle.write(line)
            handle.write(b"\n")
            count += 1
        return count

    return write_atomically(path, write)


# -- the whole download ----------------------------------------------------------------------------


@dataclass
class SavedFile:
    """One file written by a download: what it holds, where it went, how big it is."""

    kind: str  # "output" | "error" | "merged" | "content"
    path: Path
    lines: int
    bytes: int
    file_id: str | None = None
    failed: int = 0  # result lines that are errors
    kept: bool = False  # already there, complete, from an earlier run: not downloaded again

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "file_id": self.file_id,
            "lines": self.lines,
            "bytes": self.bytes,
            "kept": self.kept,
        }


@dataclass
class DownloadResult:
    batch_id: str
    status: str
    files: list[SavedFile] = field(default_factory=list)
    merge: MergeReport | None = None
    # Requests that ended in the error file (or as errors in the output), from the saved files.
    failed_requests: int = 0
    # What the saved files say that the batch's request_counts do not (result_checks.count_differences).
    warnings: list[str] = field(default_factory=list)
    # The saved result files' lines, counted as they were checked (usage of the output, failures of
    # both), so the bill needs no second read; None when they were not all counted here.
    tally: ResultTally | None = field(default=None, repr=False, compare=False)
    # The tally counts the --content file's results themselves, every request's with its usage (a job's
    # answers), not only the error file's beside them (a single batch's, whose successes the batch counts).
    tally_is_answers: bool = field(default=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "files": [f.to_dict() for f in self.files],
            "failed_requests": self.failed_requests,
            "merge": self.merge.to_dict() if self.merge else None,
            "warnings": self.warnings,
        }


def save_results(
    client: BatchClient,
    batch: Batch,
    *,
    output: Path,
    errors_output: Path,
    merge_input: Path | None = None,
    content_format: str | None = None,
    reporter: Reporter | None = None,
    keep: Collection[Path] = (),
) -> DownloadResult:
    """Download a finished batch's files and write what was asked for (each download's bytes shown by
    `reporter.progress`, when given).

    - plain: the output file to `output`, the error file (when the batch has one) to `errors_output`;
    - `merge_input`: `output` gets one result per input request, in input order (errors included);
    - `content_format`: `output` gets custom_id + answer + error rows (after merging, if asked).
    Paths in `keep` (plain downloads: complete from an earlier run) are counted, not downloaded again.
    The error file is always saved as the server sent it. Overwrite checks are the caller's
    (`check_overwrite`, done before anything is downloaded).
    """
    from batchctl.api.errors import NotFoundError

    try:
        return _save_results(client, batch, output=output, errors_output=errors_output, merge_input=merge_input,
                             content_format=content_format, reporter=reporter, keep=keep)  # fmt: skip
    except NotFoundError as exc:  # a file of the batch deleted on the server (or expired there)
        from batchctl.result_checks import file_gone

        gone = [(kind, fid) for kind, fid in (("output", batch.output_file_id), ("error", batch.error_file_id))
                if fid and fid in str(exc.url or "")]  # fmt: skip
        if not gone:
            raise
        raise file_gone(f"batch {batch.id}", *gone[0], "Its requests have to be submitted again to get their "
                        "answers: batchctl submit FILE --new.") from exc  # fmt: skip


def _save_results(
    client: BatchClient, batch: Batch, *, output: Path, errors_output: Path, merge_input: Path | None,
    content_format: str | None, reporter: Reporter | None, keep: Collection[Path],
) -> DownloadResult:  # fmt: skip
    from batchctl.cost.usage import usage_from_batch
    from batchctl.result_tally import ResultTally

    # The bill reads the output's usage only when the batch object reports none.
    count_usage = usage_from_batch(batch) is None
    result = DownloadResult(batch.id, batch.status, tally=ResultTally())
    if merge_input is None and content_format is None:
        if batch.output_file_id:
            saved = _download(client, "output", batch.output_file_id, output, reporter, keep, result.tally, count_usage,
                              batch_id=batch.id)  # fmt: skip
            result.files.append(saved)
            result.failed_requests += saved.failed
        if batch.error_file_id:
            saved = _download(client, "error", batch.error_file_id, errors_output, reporter, keep, result.tally,
                              batch_id=batch.id)  # fmt: skip
            result.files.append(saved)
            result.failed_requests += saved.lines
        lines = {f.kind: f.lines for f in result.files}
        _warn_counts(result, batch, lines.get("output"), lines.get("error"), reporter)
        return result
    _save_transformed(client, batch, result, output=output, errors_output=errors_output, merge_input=merge_input,
                      content_format=content_format, reporter=reporter, count_usage=count_usage)  # fmt: skip
    return result


def _save_transformed(
    client: BatchClient, batch: Batch, result: DownloadResult, *, output: Path, errors_output: Path,
    merge_input: Path | None, content_format: str | None, reporter: Reporter | None, count_usage: bool,
) -> None:  # fmt: skip
    """`save_results` with --merge or --content: the raw output downloaded beside the target (same file
    system), indexed by custom_id as it arrives when merging, the output built, the raw dropped.
    `result.tally` ends up holding what the bill reads: the merged lines, or the error file's."""
    from batchctl.answers import content_field, write_content
    from batchctl.merging import MergeReport, ResultIndex, iter_merged
    from batchctl.result_tally import ResultTally

    output.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(output.parent, "download") as scratch:
        raw = [Path(scratch) / "output.jsonl"] if batch.output_file_id else []
        raw += [errors_output] if batch.error_file_id else []
        index = ResultIndex(raw, read=False) if merge_input is not None else None
        output_lines = 0
        if batch.output_file_id:
            saved = _download(client, "output", batch.output_file_id, raw[0], reporter, tally=ResultTally(),
                              final=output, index=index)  # fmt: skip
            output_lines = saved.lines
            result.failed_requests += saved.failed
        error_tally = ResultTally()
        if batch.error_file_id:
            saved = _download(client, "error", batch.error_file_id, errors_output, reporter, tally=error_tally,
                              index=index, number=len(raw) - 1, batch_id=batch.id)  # fmt: skip
            result.files.append(saved)
            result.failed_requests += saved.lines

        if merge_input is not None:
            result.merge = MergeReport()
            lines: Iterable[bytes] = iter_merged(merge_input, raw, result.merge, index=index)
        else:
            lines = iter_result_lines(raw)
        label = f"Writing {'the answers' if content_format else 'the results in input order'}"
        with _progress(reporter, label) as update:
            lines = _reported(lines, update, total=sum(path.stat().st_size for path in raw))
            if content_format is not None:
                result.tally = error_tally  # the bill of answers-only: the error file's lines, the batch's counts
                count = write_content(output, lines, fmt=content_format, field_name=content_field(batch.endpoint))
                kind = "content"
            else:
                result.tally = ResultTally()
                count = write_lines(output, tallied(lines, result.tally, count_usage))
                kind = "merged"
        from batchctl import journal

        journal.forget_saved([output])  # not the server's file: a plain re-run must not keep it
        result.files.insert(0, SavedFile(kind, output, count, output.stat().st_size, batch.output_file_id))
        if merge_input is None:
            errors = next((f.lines for f in result.files if f.kind == "error"), None)
            _warn_counts(result, batch, output_lines if batch.output_file_id else None, errors, reporter)


def tallied(lines: Iterable[bytes], tally: ResultTally, count_usage: bool) -> Iterator[bytes]:
    """`lines` as they are written, counted into `tally` (what the bill of a merged file reads)."""
    add = tally.add
    for line in lines:
        add(line, count_usage=count_usage)
        yield line


def _warn_counts(
    result: DownloadResult, batch: Batch, output_lines: int | None, error_lines: int | None, reporter: Reporter | None
) -> None:
    from batchctl.result_checks import count_differences

    result.warnings = count_differences(batch, output_lines=output_lines, error_lines=error_lines)
    for warning in result.warnings:
        if reporter is not None:
            reporter.warn(f"Check the results: {warning}.")


def _reported(lines: Iterable[bytes], update: Callable[[int, int], None] | None, *, total: int) -> Iterator[bytes]:
    """`lines` as they are written, telling `update` how many bytes of results they stand for."""
    if update is None:
        yield from lines
        return
    done = 0
    for n, line in enumerate(lines, 1):
        done += len(line) + 1
        if n % 1000 == 0:
            update(min(done, total), total)
        yield line
    update(total, total)


@contextmanager
def only_writer(path: Path) -> Iterator[None]:
    """Be the only command writing `path` while inside, else refuse at once (BatchctlError), before a byte.

    Two downloads to one name (two terminals, a script run twice) shared `<name>.part.part` (two merges,
    joins or prepares `<name>.part`): the second truncated it under the first, which renamed the mix of
    both into place and reported it whole. The lock is an `flock` on `.<name>.lock` beside it, removed
    on leaving; one left by a killed run is free (the kernel dropped its lock) and taken over. Without
    `fcntl` (Windows), or on a file system without locks, nothing is locked (as before)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        unlocked = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another command
            os.close(fd)
            raise BatchctlError(
                f"another batchctl command is writing {path} right now: nothing was written",
                "Wait for it to finish (a download run again then keeps a file it saved whole), or choose another name.",
            ) from None
        except OSError:  # a file system without locks (some network mounts): written unlocked, as before
            unlocked = True
        if unlocked:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(lock)
            yield
            return
        try:
            ours = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            ours = False
        if ours:  # else the holder removed it between our open and our lock: take the new one
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)  # while still locked: a waiter that opened it sees another inode and retries
        except OSError:
            pass
        os.close(fd)


def _progress(reporter: Reporter | None, label: str) -> AbstractContextManager[Callable[[int, int], None] | None]:
    return reporter.progress(label, None) if reporter is not None else nullcontext()


def _download(
    client: BatchClient, kind: str, file_id: str, path: Path, reporter: Reporter | None = None,
    keep: Collection[Path] = (), tally: ResultTally | None = None, count_usage: bool = False, *,
    final: Path | None = None, index: ResultIndex | None = None, number: int = 0, batch_id: str | None = None,
) -> SavedFile:  # fmt: skip
    """Download to `<path>.part`, check it is results (`ResultCheck`, counting its lines into `tally`
    as they arrive, with their usage if `count_usage`), only then rename it. `final`: the name the
    results are for (`path` by default); `index`: where to add each line as file `number`.
    A file saved under its own name is recorded in the journal at once (`journal.remember_saved`): a
    re-run after a later failure keeps it, and only it (result_checks.already_complete). One download
    at a time writes a name (`only_writer`)."""
    from batchctl.result_tally import tally_file

    if path in keep:
        lines, failed = tally_file(path, tally, count_usage=count_usage)
        return SavedFile(kind, path, lines, path.stat().st_size, file_id, failed, kept=True)

    path.parent.mkdir(parents=True, exist_ok=True)
    with nullcontext() if final is not None else only_writer(path):  # `final`: a private scratch path
        return _download_alone(client, kind, file_id, path, reporter, tally, count_usage, final=final, index=index,
                               number=number, batch_id=batch_id)  # fmt: skip


def _download_alone(
    client: BatchClient, kind: str, file_id: str, path: Path, reporter: Reporter | None, tally: ResultTally | None,
    count_usage: bool, *, final: Path | None, index: ResultIndex | None, number: int, batch_id: str | None,
) -> SavedFile:  # fmt: skip
    from batchctl.result_checks import ResultCheck
    from batchctl.result_tally import FollowedDownload

    staged = path.with_name(path.name + ".part")
    check = ResultCheck(kind=kind, file_id=file_id, final=final or path, tally=tally, count_usage=count_usage)
    restarted = False

    def add(line: bytes, start: int) -> None:
        custom_id, failed = check.add(line)
        if index is not None:
            index.add(custom_id, number, start, len(line.rstrip(b"\r")), not failed)

    def restart() -> None:
        nonlocal restarted
        restarted = True
        check.restart()

    if index is None:  # the lines need no offsets: the check takes each chunk's lines in one block
        followed = FollowedDownload(None, restart, block_sink=check.add_block)
    else:
        followed = FollowedDownload(add, restart)
    try:
        with _progress(reporter, f"Downloading the {kind} file") as update:
            size = client.files.download_to(file_id, staged, progress=followed.progress(update), on_chunk=followed.feed)
        followed.finish()
        os.replace(staged, path)
    except BaseException:
        followed.close()
        staged.unlink(missing_ok=True)
        raise
    if final is None:
        from batchctl import journal

        journal.remember_saved(path, file_id, batch_id)
    if restarted and index is not None:  # a retry: the first attempt's lines went in too
        index.reread(range(number + 1))
    lines, failed = check.counts
    return SavedFile(kind, path, lines, int(size), file_id, failed)

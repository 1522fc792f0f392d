"""Downloading a batch's results: where they go, waiting for the batch if asked, saving and tidying up.

`download_results` is the use case behind `batchctl download` and the end of `submit --wait`; it returns
what happened (`DownloadOutcome`) and leaves the telling to the caller.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import EXIT_NOT_FINISHED, BatchctlError

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.remote_cleanup import RemoteDeletion
    from batchctl.reporting import Reporter
    from batchctl.result_checks import Completeness
    from batchctl.results import DownloadResult

# `wait_for(batch_id, resume_hint)` watches a batch to its end and returns it (the CLI's watcher).
WaitFor = Callable[[str, str], "Batch"]


@dataclass
class DownloadRequest:
    """What to write: paths (None: the defaults), merge input, answers-only format, and what may go."""

    output: Path | None = None
    errors_output: Path | None = None
    merge_input: Path | None = None
    content_format: str | None = None
    force: bool = False
    delete_remote: bool = False

    def check(self) -> None:
        """Refuse at once what would fail only after the wait and the download: a --merge input that is
        missing or not a file (the same words as any other unreadable input)."""
        if self.merge_input is not None:
            from batchctl.validation import check_input_file

            check_input_file(self.merge_input)

    def paths(self, model: str | None) -> tuple[Path, Path]:
        """(output, errors output): the names asked for, else the defaults for `model`."""
        from batchctl.results import resolve_targets

        return resolve_targets(self.output, self.errors_output, model=model, content_format=self.content_format)

    def refuse_existing(
        self, paths: tuple[Path, Path], *, keep: set[Path] | frozenset[Path] = frozenset(), why: Mapping[Path, str] | None = None
    ) -> None:
        """Refuse at once paths that exist (unless `force`, or they are in `keep`: complete from an earlier
        run; `why`: why one that exists was not kept, said after the names): a refusal after a long wait
        would waste it."""
        from batchctl.results import check_overwrite

        left = [p for p in paths if p not in keep]
        try:
            check_overwrite(left, force=self.force)
        except BatchctlError as refused:
            if not why:
                raise
            raise BatchctlError(refused.message + reasons_said([p for p in left if p.exists()], why), refused.hint) from None

    def targets(self, model: str | None) -> tuple[Path, Path]:
        """`paths(model)`, refused at once where they exist (`refuse_existing`)."""
        paths = self.paths(model)
        self.refuse_existing(paths)
        return paths


@dataclass
class DownloadOutcome:
    batch: Batch
    result: DownloadResult
    content_format: str | None = None
    deletions: list[RemoteDeletion] | None = None  # None: --delete-remote was not asked for
    # Why nothing could be saved (a batch that ended without any file), for people.
    nothing_saved: str | None = None
    notes: list[str] = field(default_factory=list)  # warnings for people (e.g. a --join of a changed table)

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict()


def reasons_said(existing: list[Path], why: Mapping[Path, str]) -> str:
    """` (why)` after an `already exists` refusal: one reason for all the files, else each file's own."""
    reasons = [(p, why[p]) for p in existing if p in why]
    if len({r for _, r in reasons}) == 1 and len(reasons) == len(existing):
        return f" ({reasons[0][1]})"
    return f" ({'; '.join(f'{p}: {r}' for p, r in reasons)})" if reasons else ""


def resume_command(batch_id: str, output: Path, errors_output: Path) -> str:
    """The command that finishes an interrupted `--wait`: wait again, then download to the same files."""
    from batchctl.results import errors_path_for

    command = f"batchctl download {batch_id} --wait -o {shlex.quote(str(output))}"
    if errors_output != errors_path_for(output):
        command += f" --errors-output {shlex.quote(str(errors_output))}"
    return f"Resume with: {command}"


def not_finished_error(batch: Batch) -> BatchctlError:
    return BatchctlError(
        f"batch {batch.id} is {batch.status}, not finished yet: nothing to download",
        f"Wait for it: batchctl download {batch.id} --wait (or watch it: batchctl status --watch {batch.id}).",
        EXIT_NOT_FINISHED,
    )


def complete_from_before(
    client: BatchClient, batch: Batch, request: DownloadRequest, output: Path, errors_output: Path
) -> Completeness:
    """The files of a finished batch that an earlier plain download saved whole (kept, not fetched again),
    and why the others already there are not."""
    from batchctl.result_checks import Completeness, already_complete

    if request.force or not batch.is_terminal or request.merge_input is not None or request.content_format:
        return Completeness()
    return already_complete(client, [(batch.output_file_id, output), (batch.error_file_id, errors_output)])


def save_finished(
    client: BatchClient,
    batch: Batch,
    request: DownloadRequest,
    *,
    output: Path,
    errors_output: Path,
    input_file_id: str | None = None,
    reporter: Reporter | None = None,
    keep: set[Path] | frozenset[Path] = frozenset(),
) -> DownloadOutcome:
    """Save a finished batch's files as asked (bytes shown by `reporter`; `keep`: complete already);
    then, with `delete_remote`, delete its files on the server."""
    from batchctl.results import DownloadResult, save_results

    outcome = DownloadOutcome(batch, DownloadResult(batch.id, batch.status), content_format=request.content_format)
    if not batch.output_file_id and not batch.error_file_id and request.merge_input is None:
        reasons = "; ".join(e.message or e.code or "" for e in (batch.errors.data if batch.errors else []))
        outcome.nothing_saved = f"batch {batch.id} is {batch.status} and has no output or error file" + (
            f": {reasons}" if reasons else ""
        )
    else:
        outcome.result = save_results(
            client,
            batch,
            output=output,
            errors_output=errors_output,
            merge_input=request.merge_input,
            content_format=request.content_format,
            reporter=reporter,
            keep=keep,
        )
    if request.delete_remote:
        from batchctl.remote_cleanup import delete_remote_files, remote_files_of

        targets = remote_files_of(batch, input_file_id=input_file_id)
        outcome.deletions = delete_remote_files(client, targets) if targets else []
    return outcome


def download_results(
    client: BatchClient,
    batch_id: str,
    request: DownloadRequest,
    *,
    wait_for: WaitFor | None = None,
    reporter: Reporter | None = None,
) -> DownloadOutcome:
    """`batchctl download`: the batch's results written as `request` says, waiting first when
    `wait_for` is given (else a batch that has not finished is an error, exit code 6)."""
    from batchctl import journal

    client.files.check_served(f"downloading the results of {batch_id}")  # before anything is sent
    entry = journal.lookup(batch_id)
    batch = client.batches.retrieve(batch_id)
    # Names resolved once: a default name carries the time, and the completeness check must see the same.
    output, errors_output = request.paths(batch.model or (entry.model if entry else None))
    found = complete_from_before(client, batch, request, output, errors_output)
    keep = found.kept
    request.refuse_existing((output, errors_output), keep=keep, why=found.why_not)
    if not batch.is_terminal:
        if wait_for is None:
            raise not_finished_error(batch)
        batch = wait_for(batch_id, resume_command(batch_id, output, errors_output))
    return save_finished(
        client, batch, request, output=output, errors_output=errors_output,
        input_file_id=entry.input_file_id if entry else None, reporter=reporter, keep=keep,
    )  # fmt: skip


def failed_requests(outcome: DownloadOutcome) -> int:
    """Requests that failed, from the saved files or the batch's own counts, whichever says more."""
    return max(outcome.result.failed_requests, outcome.batch.request_counts.failed)


@dataclass
class Cleanup:
    """What `--cleanup` did with the input file."""

    path: Path
    deleted: bool
    reason: str | None = None  # why it was kept

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "deleted": self.deleted, "reason": self.reason}


def cleanup_refusal(outcome: DownloadOutcome) -> str | None:
    """Why --cleanup must keep the input, or None for a fully successful run:
    the batch completed, its output was saved, and no request failed."""
    batch = outcome.batch
    if batch.status != "completed":
        return f"the batch ended {batch.status}"
    if not any(f.kind == "output" for f in outcome.result.files):
        return "there is no output file"
    failed = failed_requests(outcome)
    if failed:
        return f"{failed:,} request{'s' if failed != 1 else ''} failed (resubmit them from it)"
    return None


def clean_up_input(path: Path, outcome: DownloadOutcome) -> Cleanup:
    reason = cleanup_refusal(outcome)
    if reason is None:
        path.unlink(missing_ok=True)
    return Cleanup(path, reason is None, reason)


"""A job's results as one output file and one error file: its parts' files concatenated in part order,
or (`--merge INPUT`) every request's result in input order across all parts.

A one-part job is saved exactly as a single batch is (`downloading.save_finished`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from batchctl.downloading import DownloadOutcome, DownloadRequest, not_finished_error, resume_command, save_finished
from batchctl.errors import EXIT_NOT_FINISHED, BatchctlError
from batchctl.jobs.steps import kill_point
from batchctl.scratch import scratch_beside

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.records import Job, Part
    from batchctl.jobs.store import Journal
    from batchctl.jobs.submit import JobOutcome, WaitForAll
    from batchctl.reporting import Reporter
    from batchctl.submitting import SubmitRequest


def save_job_results(
    client: BatchClient, job: Job, parts: Sequence[Part], batches: Sequence[Batch], request: DownloadRequest, *,
    output: Path, errors_output: Path, keep: set[Path] | frozenset[Path] = frozenset(),
) -> DownloadOutcome:
    """Save finished parts' files as the job's one output and one error file (plus --delete-remote per part);
    a one-part job's files in `keep` (complete from an earlier run) are kept, not fetched again."""
    from batchctl.answers import content_field, write_content
    from batchctl.jobs.view import aggregate
    from batchctl.merging import MergeReport, ResultIndex, iter_merged
    from batchctl.result_tally import ResultTally
    from batchctl.results import DownloadResult, SavedFile, iter_result_lines, scan_results, tallied, write_lines

    if len(batches) == 1:
        return save_finished(client, batches[0], request, output=output, errors_output=errors_output,
                             input_file_id=parts[0].file_id, keep=keep)  # fmt: skip
    total = aggregate(job, batches, parts)
    outcome = DownloadOutcome(total, DownloadResult(job.id, total.status), content_format=request.content_format)
    outputs = [(p, b.output_file_id) for p, b in zip(parts, batches) if b.output_file_id]
    errors = [(p, b.error_file_id) for p, b in zip(parts, batches) if b.error_file_id]
    if not outputs and not errors and request.merge_input is None:
        outcome.nothing_saved = f"job {job.id} is {total.status} and none of its batches has an output or error file"
        return outcome
    result = outcome.result
    # With retry parts the files are attempts of the same requests: each custom_id's newest success counts.
    retried = any(p.retry_of is not None for p in parts)
    output.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(output.parent, "download") as scratch:
        raw_out = [_fetch(client, job, part, fid, Path(scratch) / f"output-{n}.jsonl", output)
                   for n, (part, fid) in enumerate(outputs)]  # fmt: skip
        raw_err = [_fetch(client, job, part, fid, Path(scratch) / f"error-{n}.jsonl", errors_output)
                   for n, (part, fid) in enumerate(errors)]  # fmt: skip
        kill_point("download")
        ranks = [part.index for part, _ in outputs + errors]
        index = ResultIndex(raw_out + raw_err, ranks) if retried else None
        for path in raw_out if index is None else ():
            result.failed_requests += scan_results(path)[1]
        answered = 0
        if index is not None:
            answered = sum(1 for spot in index.where.values() if spot[3])
            result.failed_requests = len(index.where) - answered
        chosen_errors = sum(1 for spot in index.where.values() if spot[0] >= len(raw_out)) if index else len(raw_err)
        if raw_err and chosen_errors:
            err_lines = iter_result_lines(raw_err) if index is None else index.iter_chosen(range(len(raw_out), len(ranks)))
            count = write_lines(errors_output, err_lines)
            result.files.append(SavedFile("error", errors_output, count, errors_output.stat().st_size,
                                          ",".join(f for _, f in errors)))  # fmt: skip
            result.failed_requests += count if index is None else 0
        lines: Iterable[bytes]
        if request.merge_input is not None:
            result.merge = MergeReport()
            lines = iter_merged(request.merge_input, raw_out + raw_err, result.merge, ranks=ranks if retried else None)
            kind = "merged"
        elif request.content_format is not None:
            # Every request's result, as a single batch's --content has: part by part, its output then its errors.
            order = sorted(range(len(ranks)), key=lambda n: (ranks[n], n >= len(raw_out)))
            raw = raw_out + raw_err
            lines = iter_result_lines([raw[n] for n in order]) if index is None else index.iter_chosen(order)
        else:
            lines = iter_result_lines(raw_out) if index is None else index.iter_chosen(range(len(raw_out)))
            kind = "output"
        if request.content_format is not None:
            # The answers keep no usage: the results are counted as they pass (the bill reads the tally).
            result.tally, result.tally_is_answers = ResultTally(), True
            count = write_content(output, tallied(lines, result.tally, True), fmt=request.content_format,
                                  field_name=content_field(job.endpoint))  # fmt: skip
            kind = "content"
        elif raw_out or request.merge_input is not None:
            count = write_lines(output, lines)
        else:
            count = None
        if count is not None:
            result.files.insert(0, SavedFile(kind, output, count, output.stat().st_size, ",".join(f for _, f in outputs) or None))
        if index is not None:
            index.close()
    from batchctl.journal import forget_saved

    forget_saved([f.path for f in result.files])  # parts' files joined: no one server file a re-run could keep
    done = result.merge.succeeded == result.merge.requests if result.merge else answered >= job.input_lines
    if retried and done:
        # Every request has its answer: earlier attempts that failed, expired or were cancelled are history.
        outcome.batch = total.model_copy(update={"status": "completed"})
        result.status = "completed"
    if request.delete_remote:
        from batchctl.remote_cleanup import delete_remote_files, remote_files_of

        outcome.deletions = []
        for part, batch in zip(parts, batches):
            targets = remote_files_of(batch, input_file_id=part.file_id)
            outcome.deletions += delete_remote_files(client, targets) if targets else []
    return outcome


def _fetch(client: BatchClient, job: Job, part: Part, file_id: str, path: Path, final: Path) -> Path:
    """A part's file, downloaded to the scratch `path` and checked to be results (for `final`); a file the
    server no longer has is said to be that part's, lost (nothing is saved then)."""
    import shlex

    from batchctl.api.errors import NotFoundError
    from batchctl.result_checks import check_result_file, file_gone

    kind = "output" if path.name.startswith("output") else "error"
    try:
        client.files.download_to(file_id, path)
    except NotFoundError as exc:
        raise file_gone(
            f"part {part.index + 1} of {job.id} (batch {part.batch_id})", kind, file_id,
            f"Nothing was saved. The other parts can still be downloaded one by one (their batch ids: batchctl status "
            f"{job.id}); to answer this part's requests again, submit the input anew: batchctl submit "
            f"{shlex.quote(job.input_path)} --new.",
        ) from exc
    check_result_file(path, kind=kind, file_id=file_id, final=final)
    return path


def _created_parts(journal: Journal, job: Job) -> list[Part]:
    parts = journal.parts(job.id)
    missing = [p.index + 1 for p in parts if not p.batch_id]
    if missing or not parts:
        raise BatchctlError(
            f"{job.id} is not fully submitted: part{'s' if len(missing) != 1 else ''} "
            f"{', '.join(map(str, missing))} ha{'ve' if len(missing) != 1 else 's'} no batch yet",
            f"Finish it by running the same submit again (input {job.input_path}).",
        )
    return parts


def check_merge_input(job: Job, path: Path) -> None:
    """Refuse a --merge input whose content is not the job's input (the SHA-256 recorded at submit): merged
    with another file, every result would be left out and every request reported missing."""
    import shlex

    from batchctl.jobs.retry import sha256_of

    if job.input_sha256 and sha256_of(path) != job.input_sha256:
        raise BatchctlError(
            f"{path} is not the input of {job.id}: its content differs from the file submitted (SHA-256)",
            f"Merge with the job's input: --merge {shlex.quote(job.input_path)} (or restore that file's content).",
        )


def check_batch_merge_input(journal: Journal, batch_id: str, path: Path) -> None:
    """`download BATCH --merge INPUT`: the same refusal when the batch is the only part of a job the journal
    knows (a part of a bigger job holds a slice of its input: nothing to compare with)."""
    record = journal.lookup_batch(batch_id)
    job = journal.get_job(record.job_id) if record is not None and record.job_id else None
    if job is not None and [p.batch_id for p in journal.parts(job.id)] == [batch_id]:
        check_merge_input(job, path)


def download_job(
    journal: Journal, job: Job, client_for: Callable[[str], BatchClient], request: DownloadRequest, *,
    wait_for_all: WaitForAll | None = None, earlier: Path | None = None,
) -> DownloadOutcome:
    """`batchctl download JOB`: one output and one error file for the whole job (waiting first with `wait_for_all`).

    `client_for(batch_id)` reaches the job's batches (all on the server and channel the job was submitted to).
    `earlier`: where an earlier run saved a one-part job's output; when every file of its batch is there
    whole (`_kept_whole`), they are kept and said so instead of fetched again under the names asked for.
    """
    from batchctl.jobs.view import aggregate, note_batches

    if request.merge_input is not None:  # before anything is downloaded
        check_merge_input(job, request.merge_input)
    parts = _created_parts(journal, job)
    ids = [p.batch_id for p in parts if p.batch_id]
    client = client_for(ids[0])
    batches = [client.batches.retrieve(batch_id) for batch_id in ids]
    output, errors_output = request.paths(job.model or next((b.model for b in batches if b.model), None))
    keep: set[Path] = set()
    if earlier is not None and len(batches) == 1:
        kept = _kept_whole(client, batches[0], request, earlier)
        if kept:
            output, errors_output, keep = *kept, set(kept)
    request.refuse_existing((output, errors_output), keep=keep)
    if not all(b.is_terminal for b in batches):
        if wait_for_all is None:
            if len(batches) == 1:
                raise not_finished_error(batches[0])
            total = aggregate(job, batches, parts)
            raise BatchctlError(
                f"job {job.id} is {total.status} ({total.request_counts.completed:,}/{total.request_counts.total:,} "
                "requests done), not finished yet: nothing to download",
                f"Wait for it: batchctl download {job.id} --wait (or watch it: batchctl status --watch {job.id}).",
                EXIT_NOT_FINISHED,
            )
        kill_point("watch")
        batches = wait_for_all(ids, resume_command(job.id if len(ids) > 1 else ids[0], output, errors_output))
    note_batches(journal, job, batches)
    step = journal.begin_step(job.id, "download", detail=str(output))
    outcome = save_job_results(client, job, parts, batches, request, output=output, errors_output=errors_output, keep=keep)
    journal.finish_step(step, detail=f"{len(outcome.result.files)} files")
    if outcome.result.files:
        for batch_id in ids:
            journal.update_batch(batch_id, output_path=str(output.resolve()))
    return outcome


def saved_output(journal: Journal, parts: Sequence[Part]) -> Path | None:
    """The output file an earlier download of the whole job saved here (every part's batch records it;
    under the current directory, as a relative path), if it or its error file is still there. A part
    added since (a retry) has none recorded: its results were never saved."""
    records = [journal.lookup_batch(p.batch_id) for p in parts if p.batch_id]
    recorded = {record.output_path if record else None for record in records}
    if len(recorded) != 1 or None in recorded:
        return None
    from batchctl.results import errors_path_for

    path = Path(recorded.pop())  # type: ignore[arg-type]  # recorded resolved
    if not path.is_relative_to(Path.cwd()) or not (path.is_file() or errors_path_for(path).is_file()):
        return None  # saved elsewhere, or gone (an all-failed batch saved its error file only)
    return path.relative_to(Path.cwd())


def _kept_whole(client: BatchClient, batch: Batch, request: DownloadRequest, output: Path) -> tuple[Path, Path] | None:
    """(output, errors output) at `output` and beside it when each file `batch` has is there whole
    (`complete_from_before`: saved by a download of that file and unchanged since); else None, and nothing is kept. A file
    cut short, an earlier --merge or --content file there, or a file deleted on the server is no reason
    to refuse: the results are then saved afresh, as asked."""
    from batchctl.downloading import complete_from_before
    from batchctl.results import errors_path_for

    errors_output = errors_path_for(output)
    kept = complete_from_before(client, batch, request, output, errors_output).kept
    wanted = [path for file_id, path in ((batch.output_file_id, output), (batch.error_file_id, errors_output)) if file_id]
    return (output, errors_output) if wanted and all(path in kept for path in wanted) else None


def wait_and_download(
    outcome: JobOutcome, request: SubmitRequest, journal: Journal, client_factory: Callable[[], BatchClient],
    wait_for_all: WaitForAll, reporter: Reporter | None = None, *, reuse_saved: bool = False,
) -> None:
    """`submit --wait`: watch every part to its end, (`--retry N`) retry what failed up to N rounds, then save
    the job's results; `--cleanup` after a full success.

    `reuse_saved` (a submission attached to its earlier job, no -o given): a one-part job's results that an
    earlier run saved whole here stay where they are (kept, not fetched again nor written under a new name)."""
    from batchctl.downloading import clean_up_input
    from batchctl.jobs.view import aggregate

    client = client_factory()
    ids = outcome.batch_ids
    output, errors_output = request.download.output, request.download.errors_output
    assert output is not None and errors_output is not None
    kill_point("watch")
    wait_for_all(ids, resume_command(outcome.result_id, output, errors_output))
    if request.retry and reporter is not None:
        from batchctl.jobs.retry import retry_rounds

        outcome.retries = retry_rounds(journal, outcome.job, request.retry, client=client, reporter=reporter,
                                       wait_for_all=wait_for_all)  # fmt: skip
    earlier = None
    if reuse_saved and not outcome.retries and len(outcome.parts) == 1:
        earlier = saved_output(journal, outcome.parts)
    outcome.download = download_job(journal, outcome.job, lambda _: client, request.download, earlier=earlier)
    outcome.job = journal.get_job(outcome.job.id) or outcome.job
    outcome.parts = journal.parts(outcome.job.id)
    batch = outcome.download.batch
    outcome.final = [batch] if len(outcome.parts) == 1 else None
    outcome.total = batch if len(outcome.parts) > 1 else aggregate(outcome.job, [batch])
    if request.cleanup and request.file is not None:
        outcome.cleanup = clean_up_input(request.file, outcome.download)

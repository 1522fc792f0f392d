"""The join use case (`download BATCH|JOB --join [DATA]`): DATA's rows in their original order, each
with its answer, finish reason, token counts, error and batch id, as CSV, JSONL or Parquet.

For a job made by `submit DATA --template` the data file, its format and delimiter, the id column and
whether a JSON schema was asked for are read from the journal; given options win over recorded ones.
Such a job also records the data file's SHA-256: a file whose content is not that any more (sorted,
filtered or edited in a spreadsheet since, or another file named) is refused, since matched by row
number its rows would get other rows' answers; with --id-column it joins only when every id matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import EXIT_NOT_FINISHED, BatchctlError
from batchctl.scratch import scratch_beside

if TYPE_CHECKING:
    from batchctl.api import Batch, BatchClient
    from batchctl.downloading import DownloadOutcome
    from batchctl.jobs.records import Job
    from batchctl.jobs.store import Journal
    from batchctl.jobs.submit import WaitForAll
    from batchctl.merging import MergeReport


@dataclass
class JoinRequest:
    """--join: the data (None: the job's recorded file), how to read it, and where the joined table goes."""

    data: Path | None = None
    output: Path | None = None  # None: <DATA stem>.answers<DATA's extension>
    fmt: str | None = None  # the output's format; None: by its extension
    id_column: str | None = None
    delimiter: str | None = None
    encoding: str | None = None  # DATA's; None: as recorded, else UTF-8 or UTF-16 by its BOM
    prefix: str = ""
    parse_json: bool | None = None  # None: as recorded (--json-schema was used)
    force: bool = False


def _recorded(journal: Journal, target: str, job: Job | None) -> tuple[Job | None, dict[str, Any]]:
    """The job behind `target` (a job, or a batch that is one of a job's parts) and its prepare settings."""
    if job is None:
        entry = journal.lookup_batch(target)
        job = journal.get_job(entry.job_id) if entry is not None and entry.job_id else None
    prepared = (job.options or {}).get("prepare") if job is not None else None
    return job, prepared if isinstance(prepared, dict) else {}


def _batch_ids(journal: Journal, target: str, job: Job | None) -> list[tuple[int, str]]:
    """(rank, batch id) of what to join: a job's parts (the part index: a retry part is newer), else the batch."""
    if job is None:
        return [(0, target)]
    parts = journal.parts(job.id)
    if not parts or any(not p.batch_id for p in parts):
        raise BatchctlError(f"{job.id} is not fully submitted yet", f"Finish it by running the same submit again (input {job.input_path}).")
    return [(p.index, p.batch_id) for p in parts if p.batch_id]


def _changed_since(data: Path, job: Job | None, recorded: dict[str, Any]) -> tuple[str, str] | None:
    """The refusal to join `data` when the job recorded its table's SHA-256 (`submit DATA --template`) and
    `data`'s content is not that (sorted, filtered or edited since, or another file): matched by row number,
    its rows would get other rows' answers. None when it is the same, or nothing was recorded (a job of an
    older release, or requests made by `prepare`: nothing to compare with). As for `download --merge INPUT`
    there is no flag to join it anyway: the answers would be on the wrong rows, and they stay available
    without the table (`download JOB --content`)."""
    import shlex

    from batchctl.jobs.retry import sha256_of
    from batchctl.preparing import DATA_SHA256

    expected = recorded.get(DATA_SHA256)
    if job is None or not expected or not data.is_file() or sha256_of(data) == expected:
        return None
    original = Path(recorded.get("data") or data).name
    id_column = recorded.get("id_column")
    if id_column:
        safe = (f"Its requests carry ids from the column {id_column!r}: a table that was only re-sorted (each id "
                "still there once) joins by them.")  # fmt: skip
    else:
        safe = ("Rows are matched by their number (row-1, row-2, ...): a table prepared with --id-column COLUMN "
                "would join by its own ids even when re-sorted.")  # fmt: skip
    return (
        f"{data.name} changed since {job.id} was submitted (SHA-256 differs)",
        f"Restore {original} as it was submitted (e.g. from a backup), or name an unchanged copy: batchctl download "
        f"{job.id} --join {shlex.quote('COPY' + Path(original).suffix)}; the answers alone, without the rows: "
        f"batchctl download {job.id} --content. {safe}",
    )


def _same_ids(rows: Iterator[tuple[dict[str, Any], tuple[Any, ...]]], report: MergeReport, changed: tuple[str, str],
              id_column: str) -> Iterator[tuple[dict[str, Any], tuple[Any, ...]]]:  # fmt: skip
    """The joined rows of a changed table, refused (nothing is written) unless every row's id matched one
    request and every request one row: the table was re-sorted, not filtered, extended or given new ids (a row edited in place cannot be told from the rest)."""
    yield from rows
    if report.missing or report.unexpected:
        detail = []
        if report.missing:
            detail.append(f"{len(report.missing):,} rows match no result ({', '.join(report.missing[:3])}"
                          f"{', ...' if len(report.missing) > 3 else ''})")  # fmt: skip
        if report.unexpected:
            detail.append(f"{report.unexpected:,} results match no row")
        raise BatchctlError(f"{changed[0]}, and its {id_column} ids are not the job's: {'; '.join(detail)}; "
                            "nothing was written", changed[1])  # fmt: skip


def join_results(
    journal: Journal, target: str, job: Job | None, client_for: Callable[[str], BatchClient], request: JoinRequest, *,
    wait_for_all: WaitForAll | None = None,
) -> DownloadOutcome:
    """Fetch the results of `target` (a batch id, or `job` when it names one; waiting with `wait_for_all`)
    and write DATA's rows joined with them."""
    from batchctl.downloading import DownloadOutcome, not_finished_error
    from batchctl.jobs.view import aggregate
    from batchctl.merging import MergeReport
    from batchctl.prepare import open_rows
    from batchctl.prepare.join import JoinSettings, added_columns, joined_rows, output_format, write_joined
    from batchctl.results import DownloadResult, SavedFile, check_overwrite

    owner, recorded = _recorded(journal, target, job)
    data = request.data or (Path(recorded["data"]) if recorded.get("data") else None)
    if data is None:
        raise BatchctlError(f"--join needs the data file: {target} was not submitted from one with --template",
                            f"Name it: batchctl download {target} --join DATA.")  # fmt: skip
    changed = _changed_since(data, owner, recorded)
    same_data = request.data is None or str(data.resolve()) == recorded.get("data")
    delimiter = request.delimiter or (recorded.get("delimiter") if same_data else None)
    encoding = request.encoding or (recorded.get("encoding") if same_data else None)
    source = open_rows(data, fmt=recorded.get("format") if same_data else None, delimiter=delimiter, encoding=encoding)
    settings = JoinSettings(
        id_column=request.id_column or recorded.get("id_column"), prefix=request.prefix,
        parse_json=request.parse_json if request.parse_json is not None else bool(recorded.get("json_schema")),
    )  # fmt: skip
    if settings.id_column is not None and settings.id_column not in source.columns:
        raise BatchctlError(f"--id-column {settings.id_column!r} is not a column of {data.name}; its columns are: "
                            f"{', '.join(source.columns)}", "Name the column the requests were prepared with.")  # fmt: skip
    by_id = changed is not None and recorded.get("id_column") is not None and settings.id_column == recorded["id_column"]
    if changed is not None and not by_id:
        raise BatchctlError(f"{changed[0]}: its rows would get other rows' answers", changed[1])
    suffix = data.suffix if data.suffix.lower() in (".csv", ".tsv", ".jsonl", ".parquet") else ".csv"
    output = request.output or Path(f"{data.stem}.answers{suffix}")
    fmt = output_format(output, request.fmt)
    added = added_columns(source.columns, request.prefix)
    check_overwrite([output], force=request.force, hint="Use --force to overwrite, or choose another name with --output.")

    ranked = _batch_ids(journal, target, job)
    ids = [batch_id for _, batch_id in ranked]
    client = client_for(ids[0])
    batches = [client.batches.retrieve(batch_id) for batch_id in ids]
    if not all(b.is_terminal for b in batches):
        if wait_for_all is None:
            if len(batches) == 1:
                raise not_finished_error(batches[0])
            raise BatchctlError(f"{target} has not finished yet: nothing to join",
                                f"Wait for it: batchctl download {target} --join --wait.", EXIT_NOT_FINISHED)  # fmt: skip
        batches = wait_for_all(ids, f"Resume with: batchctl download {target} --join --wait")
    total: Batch = batches[0] if len(batches) == 1 or owner is None else aggregate(owner, batches, journal.parts(owner.id))
    report = MergeReport()
    outcome = DownloadOutcome(total, DownloadResult(total.id, total.status, merge=report), content_format=fmt)
    output.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(output.parent, "join") as scratch:
        paths, owners, ranks = [], [], []
        for (rank, _), batch in zip(ranked, batches):
            for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
                if file_id:
                    path = Path(scratch) / f"{kind}-{len(paths)}.jsonl"
                    client.files.download_to(file_id, path)
                    paths.append(path)
                    owners.append(batch.id)
                    ranks.append(rank)
        # With retry parts, the files are attempts of the same requests: each row gets its newest success.
        rows = joined_rows(source, paths, owners, settings, report, ranks=ranks)
        if by_id:  # a changed table joined by its rows' own ids: written only when each id is there once
            rows = _same_ids(rows, report, changed, settings.id_column)  # type: ignore[arg-type]
        count = write_joined(output, fmt, source.columns, added, rows, arrow_schema=source.arrow_schema,
                             delimiter="\t" if output.suffix.lower() == ".tsv" else ",")  # fmt: skip
    outcome.result.files.append(SavedFile("joined", output, count, output.stat().st_size))
    outcome.result.failed_requests = len(report.failed)
    if by_id:
        assert owner is not None
        outcome.notes.append(f"{data.name} changed since {owner.id} was submitted; its rows were joined by their "
                             f"{settings.id_column} (every id matched one request): the order does not matter, but a "
                             "row edited since keeps the answer to its old text")  # fmt: skip
    if count and not report.succeeded and report.missing and len(report.missing) == count and settings.id_column is None:
        outcome.nothing_saved = (f"no row of {data.name} matched a result by row number: if the requests were "
                                 "prepared with --id-column, pass the same --id-column")  # fmt: skip
    return outcome

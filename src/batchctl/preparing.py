"""The prepare use case: a table of rows and a prompt template -> a Batch input file, one request per row.

`prepare_requests` backs `batchctl prepare`; `prepared_input` backs `submit DATA --template` (prepare
into a temporary file in the data dir, submit it as a job that records the data file and template, so
`download JOB --join` needs no arguments). Everything that can refuse (an unknown column, an endpoint
the provider lacks) is checked before a row is read; the output is written atomically.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from batchctl.errors import BatchctlError

if TYPE_CHECKING:
    from batchctl.cost.estimate import Estimate
    from batchctl.prepare import PrepareSpec, RowSource
    from batchctl.providers import ProviderSpec
    from batchctl.reporting import Reporter
    from batchctl.submitting import SubmitRequest
    from batchctl.validation import ValidationReport

BYTES_PER_TOKEN = 4  # the estimate `validate` gives: UTF-8 bytes of prompt text / 4
# The data file's SHA-256 in a job's options["prepare"]; not part of the key a re-run finds its job by
# (the same requests from a re-saved table attach to their job, which then records the new content).
DATA_SHA256 = "data_sha256"


@dataclass
class PrepareRequest:
    """What to read (DATA, its format and delimiter), how to build each request, and where to write."""

    data: Path
    spec: PrepareSpec
    output: Path | None = None  # None: <DATA stem>.requests.jsonl in the current directory
    fmt: str | None = None  # None: by DATA's extension
    delimiter: str | None = None  # None: tab for .tsv, else comma
    encoding: str | None = None  # None: UTF-8, or UTF-16 by its BOM
    force: bool = False
    profile: str | None = None  # whose price overrides the estimate uses

    def recorded(self, source: RowSource, sha256: str) -> dict[str, Any]:
        """The settings a job keeps for the join: the data file, its content's SHA-256 (the join refuses
        the file once it changed: its rows would get other rows' answers), how it was read, and the spec."""
        encoding = {"encoding": self.encoding} if self.encoding else {}
        return {"data": str(self.data.resolve()), DATA_SHA256: sha256, "format": source.fmt,
                "delimiter": source.delimiter, **encoding, **self.spec.recorded()}  # fmt: skip


@dataclass
class PrepareOutcome:
    data: Path
    output: Path
    report: ValidationReport  # the summary `validate` would give (it is valid by construction)
    estimate: Estimate | None = None  # validate's estimate: tokens, and the cost where the price is known

    def to_dict(self) -> dict[str, Any]:
        estimate = self.estimate.to_dict() if self.estimate is not None else None
        return {"data": str(self.data), "output": str(self.output), **self.report.to_dict(), "estimate": estimate}


def open_checked(request: PrepareRequest, provider: ProviderSpec) -> RowSource:
    """Open DATA and refuse, before any row is read, what would fail: unknown columns, a bad endpoint."""
    from batchctl.prepare import open_rows

    spec = request.spec
    spec.check()
    spec.url_prefix = provider.wire.line_url_prefix  # lines in the provider's own paths (zhipu: /v4/...)
    if spec.url not in provider.endpoints:
        raise BatchctlError(f"{provider.name} does not support {spec.url}",
                            f"Use an endpoint it supports: {', '.join(provider.endpoints)}.")  # fmt: skip
    source = open_rows(request.data, fmt=request.fmt, delimiter=request.delimiter, encoding=request.encoding)
    spec.template.check_columns(source.columns, request.data.name)
    if spec.system is not None:
        spec.system.check_columns(source.columns, request.data.name)
    if spec.id_column is not None and spec.id_column not in source.columns:
        raise BatchctlError(
            f"--id-column {spec.id_column!r} is not a column of {request.data.name}; its columns are: "
            f"{', '.join(source.columns)}; nothing was written",
            "Name one of its columns, or drop --id-column to number the rows (row-1, row-2, ...).",
        )
    return source


def _write(source: RowSource, spec: PrepareSpec, handle: IO[bytes], counts: list[int]) -> int:
    """Write one request line per row; counts = [rows, prompt bytes]. Ids from a column must be unique."""
    seen: dict[str, int] | None = {} if spec.id_column is not None else None
    rows = text_bytes = 0
    write = handle.write
    for n, row in source.rows():
        cid, line, size = spec.line(row, n)
        if seen is not None:
            if not cid:
                raise BatchctlError(f"row {n}: the id column {spec.id_column!r} is empty; nothing was written",
                                    "Every row needs an id, or drop --id-column to number the rows.")  # fmt: skip
            first = seen.setdefault(cid, n)
            if first != n:
                raise BatchctlError(
                    f"rows {first} and {n} have the same {spec.id_column} {cid!r}: --id-column must be unique; nothing was written",
                    "Make the ids unique, or drop --id-column to number the rows (row-1, row-2, ...).",
                )
        write(line.encode())
        write(b"\n")
        rows += 1
        text_bytes += size
    counts[:] = [rows, text_bytes]
    return rows


def write_prepared(request: PrepareRequest, source: RowSource, output: Path) -> ValidationReport:
    from batchctl.results import write_atomically
    from batchctl.validation import ValidationReport

    counts = [0, 0]
    rows = write_atomically(output, lambda handle: _write(source, request.spec, handle, counts))
    if rows == 0:
        output.unlink(missing_ok=True)
        raise BatchctlError(f"{request.data.name} has no data rows: nothing to prepare", "Add rows under the header.")
    return ValidationReport(
        path=str(output), size_bytes=output.stat().st_size, lines=rows, requests=rows, blank_lines=0,
        endpoint=request.spec.url, model=request.spec.model,
        est_input_tokens=math.ceil(counts[1] / BYTES_PER_TOKEN), problems=[], problem_count=0,
    )  # fmt: skip


def default_output(data: Path) -> Path:
    return Path(f"{data.stem}.requests.jsonl")


def prepare_requests(request: PrepareRequest, provider: ProviderSpec) -> PrepareOutcome:
    """`batchctl prepare`: one request line per row of DATA, checked up front, written atomically; then
    the estimate `validate` gives (a second streamed pass over the file written)."""
    from batchctl.cost.estimate import estimate_for_profile
    from batchctl.results import check_overwrite

    output = request.output or default_output(request.data)
    source = open_checked(request, provider)
    check_overwrite([output], force=request.force, hint="Use --force to overwrite, or choose another name with --output.")
    output.parent.mkdir(parents=True, exist_ok=True)
    outcome = PrepareOutcome(request.data, output, write_prepared(request, source, output))
    outcome.estimate = estimate_for_profile(output, endpoint=request.spec.endpoint, profile=request.profile)
    return outcome


@dataclass
class Prepared:
    """The requests `submit DATA --template` made: `<data dir>/prepared/<stem>-<sha>/<stem>.requests.jsonl`.

    The same DATA and options always make the same file at the same path, so a re-run resumes or attaches
    to its job. It stays while `batchctl retry JOB` may need it (retry resends lines of the job's input),
    and goes when the submit waited and every request succeeded."""

    path: Path
    keep: bool = True

    def settle(self, outcome: Any) -> None:
        """After the submit: drop the file when it waited and every request succeeded."""
        from batchctl.downloading import cleanup_refusal

        download = getattr(outcome, "download", None)
        self.keep = download is None or cleanup_refusal(download) is not None


@contextmanager
def prepared_input(request: SubmitRequest, provider: ProviderSpec, reporter: Reporter) -> Iterator[Prepared]:
    """`submit DATA --template`: prepare DATA into the data dir and point `request` at the file (the job
    then records the data file and template, for `download --join`)."""
    from batchctl.config import data_dir
    from batchctl.jobs.retry import sha256_of

    prepare: PrepareRequest = request.prepare
    source = open_checked(prepare, provider)
    if warning := prepare.spec.same_for_every_row:
        reporter.warn(warning)
    data_sha256 = sha256_of(prepare.data)  # streamed; before the rows are read, as the join will compare
    base = data_dir() / "prepared"
    base.mkdir(parents=True, exist_ok=True)
    name = f"{prepare.data.stem}.requests.jsonl"
    scratch = Path(tempfile.mkdtemp(dir=base, prefix=".tmp-"))
    try:
        report = write_prepared(prepare, source, scratch / name)
        final = base / f"{prepare.data.stem}-{sha256_of(scratch / name)[:16]}"
        if final.exists():  # the same requests, prepared before (a re-run): that copy is the job's input
            shutil.rmtree(scratch)
        else:
            scratch.rename(final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    prepared = Prepared(final / name)
    reporter.info(f"Prepared {report.requests:,} requests from {prepare.data} ({source.fmt})")
    request.file, request.prepare = prepared.path, None
    request.endpoint = prepare.spec.url
    request.model = None  # every line has it already: no rewritten copy of the file (it is recorded below)
    request.job_options = {"prepare": prepare.recorded(source, data_sha256)}
    try:
        yield prepared
    finally:
        if not prepared.keep:
            shutil.rmtree(final, ignore_errors=True)

"""How the results of the use cases read to people: a validation report, a download, a final state.

Shared by the commands that show them (`validate` and `submit`; `download` and `submit --wait`), so that
no command module imports another. Each function takes the Output and the data; nothing here decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from batchctl.api import Batch
    from batchctl.cli.output import Output
    from batchctl.cost.estimate import Estimate
    from batchctl.doctor import DoctorReport
    from batchctl.downloading import DownloadOutcome
    from batchctl.providers import ProviderSpec
    from batchctl.validation import ValidationReport

def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


# -- validation ------------------------------------------------------------------------------------------


def show_summary_table(out: Output, report: ValidationReport, spec: ProviderSpec, estimate: Estimate | None = None) -> None:
    """The file at a glance, one fact per row (fits a narrow terminal); input tokens from the cost
    estimate when there is one (the same count its line below prices)."""
    from batchctl.providers import format_size
    from batchctl.validation import format_tokens

    blank = f" ({report.blank_lines:,} blank)" if report.blank_lines else ""
    rows = [
        ("File", report.path),
        ("Lines", f"{report.lines:,}{blank}"),
        ("Requests", f"{report.requests:,}"),
        ("Endpoint", report.endpoint or "-"),
        ("Model", report.model or "-"),
        ("Size", format_size(report.size_bytes)),
        ("Est. input tokens", format_tokens(report.est_input_tokens) if estimate is None
         else f"{format_tokens(estimate.input_tokens)} ({estimate.method})"),  # fmt: skip
        ("Limits", f"{spec.name}: {spec.max_requests:,} requests, {format_size(spec.max_file_bytes)} per file"),
    ]
    out.key_values(rows)


def show_problems(out: Output, report: ValidationReport, *, limit: int) -> None:
    """Each problem as `line N: what is wrong` (stdout), the first `limit` of them, then how many more."""
    from batchctl.validation import problem_lines

    for line in problem_lines(report, limit):
        out.line(line)
    for warning in report.warnings:
        out.warn(warning.message)


# -- downloads -------------------------------------------------------------------------------------------

_SAVED_LABELS = {"output": "Output", "error": "Errors", "merged": "Merged results (input order)", "joined": "Rows with answers"}


def show_download(out: Output, outcome: DownloadOutcome) -> None:
    """Where each file went, what the merge found, what failed, and what was deleted on the server (stderr)."""
    batch, result = outcome.batch, outcome.result
    if outcome.nothing_saved:
        out.warn(outcome.nothing_saved)
    for note in outcome.notes:
        out.warn(note)
    for saved in result.files:
        label = _SAVED_LABELS.get(saved.kind, f"Answers ({outcome.content_format})")
        kept = ", complete from an earlier run: kept" if saved.kept else ""
        out.success(f"{label}: {saved.path} ({_plural(saved.lines, 'row' if saved.kind in ('content', 'joined') else 'line')}{kept})")
    if not outcome.nothing_saved and not batch.output_file_id and result.merge is None and outcome.content_format is None:
        out.info("The batch has no output file: no request succeeded.")
    merge = result.merge
    if merge is not None:
        out.info(
            f"{merge.requests:,} requests: {merge.succeeded:,} succeeded, {len(merge.failed):,} failed, "
            f"{len(merge.missing):,} missing."
        )
        for label, ids in (("Failed", merge.failed), ("Missing", merge.missing)):
            if ids:
                shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10:,} more" if len(ids) > 10 else "")
                out.warn(f"{label}: {shown}")
        if merge.unexpected:
            out.warn(f"{merge.unexpected:,} results have a custom_id that is not in the input file (left out).")
        if merge.duplicates:
            out.warn(f"{merge.duplicates:,} duplicate results for one custom_id were left out (the first was kept).")
        if merge.unreadable:
            out.warn(f"{merge.unreadable:,} result lines are not JSON objects with a custom_id (left out).")
        if merge.invalid_json:
            out.warn(f"{_plural(merge.invalid_json, 'answer')} {'was' if merge.invalid_json == 1 else 'were'} not valid "
                     "JSON (counted as failed): each kept as text, its error column says invalid_json.")
    elif result.failed_requests:
        out.warn(f"{_plural(result.failed_requests, 'request')} failed; see the error file.")
    if outcome.deletions is not None:
        if not outcome.deletions:
            out.info("--delete-remote: the batch names no files on the server.")
        for done in outcome.deletions:
            if done.deleted:
                out.info(f"Deleted the remote {done.kind} file {done.file_id}" + (f" ({done.error})" if done.error else ""))
            else:
                out.warn(f"could not delete the remote {done.kind} file {done.file_id}: {done.error}")


def exit_for_final_state(out: Output, batch: Batch, *, saved_files: bool) -> None:
    """Exit 3/4/5 when the batch ended failed/expired/cancelled (or completed with no request
    succeeding: 3); return when it completed."""
    from batchctl.errors import exit_code_for_batches, nothing_succeeded  # not `watching`: a download watches nothing

    code = exit_code_for_batches([batch])
    if code:
        saved = "; the files above hold what it produced" if saved_files else ""
        if nothing_succeeded(batch):
            out.warn(f"batch {batch.id} completed, but 0 of {batch.request_counts.total:,} requests succeeded{saved}.")
        else:
            out.warn(f"batch {batch.id} ended {batch.status}{saved}.")
        raise typer.Exit(code)


# -- doctor ----------------------------------------------------------------------------------------------

_MARK = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def show_doctor(out: Output, report: DoctorReport) -> None:
    """One row per check (ok, warn, FAIL, skip) with what to do, then the verdict (stderr)."""
    out.info(
        f"Profile {report.profile} ({report.provider}) at {report.base_url}"
        + (f", channel {report.channel}" if report.channel else "")
    )
    rows = []
    for check in report.checks:
        detail = check.detail + (f"\n→ {check.hint}" if check.hint and check.status != "ok" else "")
        rows.append([_MARK.get(check.status, check.status), check.name, detail])
    out.table(["", "check", "result"], rows)
    failed = [c.name for c in report.checks if c.status == "fail"]
    if failed:
        out.error(f"{len(failed)} check(s) failed: {', '.join(failed)}", "Fix them as each line says, then run batchctl doctor again.")
    else:
        out.success("No failures" + (" (see the warnings above)" if any(c.status == "warn" for c in report.checks) else ""))


# -- jobs ------------------------------------------------------------------------------------------------


def _when(ts: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _counts(done: int | None, failed: int | None, total: int | None) -> str:
    if total is None:
        return "-"
    return f"{done or 0:,}/{total:,}" + (f" ({failed:,} failed)" if failed else "")


def show_job(out: Output, view, *, live_counts: bool = True) -> None:
    """A job: the aggregate panel (combined bar, ETA) when its batches were fetched, then a row per part."""
    import time
    from pathlib import Path

    from batchctl.cli.render import BatchView, batch_panel
    from batchctl.watching import rate_from_timestamps

    job = view.job
    out.info(
        f"{job.id}: {Path(job.input_path).name} ({_plural(job.input_lines, 'request')}), profile {job.profile}, "
        f"created {_when(job.created_at)}, {job.state}"
    )
    if view.total is not None:
        now = time.time()
        rate = rate_from_timestamps(view.total, now) if live_counts else None
        out.print(batch_panel(BatchView(view.total, live_counts=live_counts, rate=rate), now=now))
    rows = []
    for part in view.to_dict()["parts"]:
        counts = part["request_counts"]
        lines = f"{part['first_line']:,}-{part['last_line']:,}"
        if part["retry_of"] is not None:
            lines = f"retry of {part['retry_of'] + 1}"
        rows.append([
            part["part"] + 1, lines, part["batch_id"] or "-",
            part["status"] or part["step"], _counts(counts["completed"], counts["failed"], counts["total"] or part["requests"]),
        ])  # fmt: skip
    out.table(["part", "lines", "batch", "status", "done"], rows, keep=("batch",))
    if any(p.retry_of is not None for p in view.parts):
        counts = view.requests
        pending = f", {counts.pending:,} pending" if counts.pending else ""
        out.line(f"Requests: {counts.succeeded:,} of {counts.requests:,} succeeded, {counts.failed:,} failed{pending} "
                 "(each by its newest attempt; the parts above count attempts)")  # fmt: skip
    from batchctl.cli.cost_render import bill_line

    cost = bill_line(getattr(view, "bill", None))
    if cost:
        out.line(cost)


def _codes(codes) -> str:
    return ", ".join(f"{code} {count:,}" for code, count in sorted(codes.items()))


def show_retry(out: Output, outcome) -> None:
    """`retry`: what was retried from which part, what was left alone, and (--wait) where the job stands."""
    before, job_id = outcome.before, outcome.job.id
    if outcome.nothing_to_retry:
        kept = f" ({_plural(sum(before.kept.values()), 'failed request')} left alone: {_codes(before.kept)})" if before.kept else ""
        say = out.info if kept else out.success
        say(f"Nothing to retry in {job_id}: {before.succeeded:,} of {_plural(before.requests, 'request')} succeeded{kept}.")
        return
    if not outcome.resumed:
        out.info(f"{_plural(before.to_retry, 'request')} retried ({_codes(before.retry_codes)})"
                 + (f"; left alone: {_codes(before.kept)}" if before.kept else ""))  # fmt: skip
    for part in outcome.parts:
        out.line(part.batch_id or f"part {part.index + 1} (no batch yet)")
    after = outcome.after
    if after is not None:
        summary = after.summary()
        out.info(f"{summary['requests']:,} requests: {summary['succeeded']:,} succeeded, {summary['failed']:,} failed, "
                 f"{summary['missing']:,} missing" + (f" ({_codes(after.failed)})" if after.failed else "") + ".")  # fmt: skip
        out.info(f"Download the results: batchctl download {job_id} --merge {outcome.job.input_path}")
    else:
        out.info(f"Watch it: batchctl status --watch {job_id}; then: batchctl download {job_id}")


def _parts(parts) -> str:
    retries = sum(1 for p in parts if p.retry_of is not None)
    return f"{len(parts) - retries} + {retries} retr{'ies' if retries != 1 else 'y'}" if retries else str(len(parts))


def job_line(view) -> str:
    """One line for a job (the end of `status JOB --watch` when piped)."""
    total = view.total
    if total is None:
        return f"{view.job.id}  {view.job.state}"
    counts = total.request_counts
    return f"{view.job.id}  {total.status}  {_counts(counts.completed, counts.failed, counts.total)}  {len(view.parts)} parts"


def show_jobs(out: Output, views) -> None:
    """`batchctl jobs`: one row per job from the journal (no network); the cost its last download found."""
    from pathlib import Path

    from batchctl.cli.cost_render import bill_cost

    rows = []
    for view in views:
        parts = view.parts
        done = sum(p.completed or 0 for p in parts)
        failed = sum(p.failed or 0 for p in parts)
        total = sum((p.total or p.request_count) for p in parts)
        if any(p.retry_of is not None for p in parts):  # the job's requests, once each, not its attempts
            counts = view.requests
            done, failed, total = counts.succeeded, counts.failed, counts.requests
        statuses = sorted({p.status or p.step for p in parts} - {view.job.state})
        rows.append([
            view.job.id, _when(view.job.created_at), view.job.profile, Path(view.job.input_path).name, _parts(parts),
            view.job.state + (f" ({', '.join(statuses)})" if statuses else ""), _counts(done, failed, total),
            bill_cost(view.bill),
        ])  # fmt: skip
    out.table(["job", "created", "profile", "input", "parts", "state", "done", "cost"], rows, keep=("job",),
              empty="No jobs in the journal yet: batchctl submit FILE makes one.")  # fmt: skip

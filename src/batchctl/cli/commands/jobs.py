"""`batchctl jobs`: the jobs in the local journal (no network): list them, show one, forget one."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli.context import AppState
from batchctl.cli.options import JsonOpt, complete_job_ids

JobIdArg = Annotated[
    str,
    typer.Argument(help="Job id (job_…), a unique start of one, or `last`: the newest submitted from here.",
                   show_default=False, metavar="JOB_ID", autocompletion=complete_job_ids),  # fmt: skip
]

app = typer.Typer(
    help="Jobs (one input file submitted as one or more batches) from the local journal; no network.",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)


@app.callback()
def list_jobs(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List the jobs in the journal, newest first: id, created, profile, input, parts, last known state, counts.

    Example: batchctl jobs --json
    """
    state = AppState.get(ctx, json_=json_)  # `jobs --json show JOB`: the group's --json holds for it too
    if ctx.invoked_subcommand is not None:
        return
    from batchctl.cli.reports import show_jobs
    from batchctl.jobs.view import list_jobs as jobs_of

    views = jobs_of(state.journal())
    state.out.result(views, human=lambda: show_jobs(state.out, views), ids=[view.job.id for view in views])


@app.command("show")
def show(ctx: typer.Context, job_id: JobIdArg, json_: JsonOpt = False) -> None:
    """Show one job as the journal knows it: input, options, and each part's lines, file, batch and last state.

    Example: batchctl jobs show job_3f2a
    """
    from batchctl.cli.reports import show_job
    from batchctl.jobs.view import load_view

    state = AppState.get(ctx, json_=json_)
    view = load_view(state.journal(), _job(state, job_id))
    state.out.result(view, human=lambda: show_job(state.out, view))


@app.command("forget")
def forget(ctx: typer.Context, job_id: JobIdArg, json_: JsonOpt = False) -> None:
    """Forget a job: hidden from `jobs`, and the same input can be submitted again as a new job.

    Its batches keep running and stay reachable by their batch ids. Example: batchctl jobs forget job_3f2a
    """
    state = AppState.get(ctx, json_=json_)
    job = _job(state, job_id)
    state.journal().forget_job(job.id)
    state.out.success(f"Forgot {job.id}; its batches keep their ids: batchctl list shows them.")
    state.out.result({"job_id": job.id, "forgotten": True})


def _job(state: AppState, job_id: str):
    """The job `job_id` names: a job id, a unique start of one (`job_` may be left out), or `last`."""
    from batchctl.cli.context import LAST_ALIAS
    from batchctl.errors import BatchctlError
    from batchctl.jobs import JOB_PREFIX
    from batchctl.jobs.records import NotFound

    wanted = state.resolve_ids([job_id])[0]
    if job_id == LAST_ALIAS and not wanted.startswith(JOB_PREFIX):  # a one-part job goes by its batch id
        record = state.journal().lookup_batch(wanted)
        if record is None or not record.job_id:
            raise BatchctlError(f"the newest submission, {wanted}, is a batch without a job",
                                "batchctl jobs lists the jobs; batchctl status last shows that batch.")  # fmt: skip
        wanted = record.job_id
    try:
        job = state.find_job(wanted if wanted.startswith(JOB_PREFIX) else JOB_PREFIX + wanted)
    except NotFound as exc:  # named as typed, not with the job_ put in front of it
        raise NotFound(f"no job {job_id!r} in the journal", exc.hint) from None
    if job is None:
        raise BatchctlError(f"{job_id!r} is not a job id", "Job ids start with job_; batchctl jobs lists them.")
    return job

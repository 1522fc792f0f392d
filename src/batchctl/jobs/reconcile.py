"""Reconciling with the server before a part's batch is created (again).

Every batch a job creates carries metadata tags: `batchctl_job`, `batchctl_part` and a per-attempt
`batchctl_token`. When the journal shows a create that was sent but never answered (a crash, a 5xx, a
timeout), the server's batch list is searched for those tags: a batch found is adopted, so a part never
gets two batches. A provider that cannot list batches cannot be asked: that is said, not guessed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from batchctl.errors import BatchctlError
from batchctl.urls import display_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from batchctl.api import Batch, BatchClient
    from batchctl.jobs.records import Job, Part

TAG_JOB = "batchctl_job"
TAG_PART = "batchctl_part"
TAG_TOKEN = "batchctl_token"
# Batches listed newest first: stop this long before the job began (clocks of client and server differ).
CLOCK_SLACK_S = 3600
# The journal step recorded just before a create goes out without the job's tags (a server that refuses
# metadata, `steps.create_part`): its start is when batches untagged from the part's file may be this part's.
UNTAGGED_STEP = "create-untagged"


def tags(job: Job, part: Part, token: str) -> dict[str, str]:
    """The user's metadata with the job's tags merged in (the tags win)."""
    return {**(job.metadata or {}), TAG_JOB: job.id, TAG_PART: str(part.index), TAG_TOKEN: token}


class CannotReconcile(BatchctlError):
    """The server cannot list batches, so whether a sent create made a batch cannot be known."""


def find_tagged(
    client: BatchClient, job: Job, part: Part, *, untagged_since: float | None = None,
    owner_of: Callable[[str], tuple[str | None, int | None] | None] | None = None,
) -> Batch | None:
    """The server's batch for this job's part (any attempt's token; the current one preferred), or None;
    failing a tagged one, the first made from the file the part uploaded (metadata dropped on the way).
    `untagged_since`: when this part first sent a create without its tags (`UNTAGGED_STEP`); for a job of
    `submit --input-file-id` (a file that may have other batches) only an untagged batch made from it since
    then is the part's. `owner_of(batch_id)`: the (job, part) the journal recorded a batch for, if any; an
    untagged batch recorded for another job or part is theirs (an earlier `submit --input-file-id F`).

    Raises CannotReconcile when the server does not list batches (HTTP 404/405/501).
    """
    from batchctl.api import errors as api

    since = job.created_at - CLOCK_SLACK_S
    # A file this part uploaded itself is its own: a batch made from it is this part's even untagged (a
    # gateway that drops metadata). Not so for `submit --input-file-id`: that file may have other batches.
    own_file = part.file_id if not (job.options or {}).get("input_file_id") else None
    # That file's batches made untagged since this part created one untagged (the server refuses metadata):
    # the part's too, or a create cut off there would be taken for none and sent again.
    not_before = None
    if own_file is None and untagged_since is not None and part.file_id:
        own_file, not_before = part.file_id, untagged_since - CLOCK_SLACK_S
    found: list[Batch] = []
    untagged: list[Batch] = []
    try:
        for batch in client.batches.iter(limit=100):
            meta = batch.metadata or {}
            if meta.get(TAG_JOB) == job.id and str(meta.get(TAG_PART)) == str(part.index):
                found.append(batch)
            elif own_file is not None and batch.input_file_id == own_file and TAG_JOB not in meta:
                owner = owner_of(batch.id) if owner_of is not None else None
                theirs = owner is not None and (owner[0], owner[1]) != (job.id, part.index)
                if not theirs and (not_before is None or (batch.created_at or 0) >= not_before):
                    untagged.append(batch)
            if batch.created_at is not None and batch.created_at < since:
                break
    except (api.NotFoundError, api.NotImplementedByServerError) as exc:
        raise cannot_list(job, part, exc) from None
    except api.APIStatusError as exc:
        if exc.status == 405:
            raise cannot_list(job, part, exc) from None
        raise
    if not found:
        return min(untagged, key=lambda b: b.created_at or 0) if untagged else None
    found.sort(key=lambda b: ((b.metadata or {}).get(TAG_TOKEN) != part.token, b.created_at or 0))
    return found[0]


def cannot_list(job: Job, part: Part, exc: Exception) -> CannotReconcile:
    sent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(part.updated_at or time.time()))
    status = getattr(exc, "status", None)
    file_id = (job.options or {}).get("input_file_id")  # a job of `submit --input-file-id` (jobs.file_id)
    again = "batchctl submit FILE --new"
    if file_id:
        from batchctl.submission import retry_command

        again = retry_command(file_id, job.endpoint or "", job.completion_window or "24h", job.metadata) + " --new"
    return CannotReconcile(
        f"part {part.index + 1} of {job.id}: the create sent at {sent} got no usable answer, and "
        f"{display_url(job.base_url)} cannot list batches (HTTP {status}), so batchctl cannot know whether that batch exists",
        f"Look for a batch with metadata {TAG_JOB}={job.id}, {TAG_PART}={part.index} in the provider's console. "
        f"If there is none, submit again as a new job ({again}) or drop this one "
        f"(batchctl jobs forget {job.id}); if there is one, its batch id works with every command.",
    )

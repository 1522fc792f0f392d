"""The journal's vocabulary: its rows as Python values (batches, jobs, parts, steps), the states they
move through, and the errors about them. Pure: no I/O, so these decisions are tested without a database.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from batchctl.errors import BatchctlError

# A job's life. `forgotten` hides it from listings and from find_job, but keeps its batches' routing.
JOB_STATES = ("splitting", "submitting", "active", "completed", "failed", "cancelled", "forgotten")
# The states in which a job stands for its submission: submitting the same input again resumes it.
LIVE_JOB_STATES = ("splitting", "submitting", "active", "completed")
# Where a part is in upload -> create -> download; an `-ing` state means the step may have been cut off.
PART_STEPS = ("planned", "uploading", "uploaded", "creating", "created", "downloading", "done", "failed", "cancelled")


@dataclass
class BatchRecord:
    """How one batch was submitted: the server, channel pin and profile every later call must use.

    Field for field today's `journal.JournalEntry`, plus the job and part the batch belongs to.
    """

    batch_id: str
    profile: str
    base_url: str
    provider: str
    channel: str | None = None
    input_path: str | None = None
    input_file_id: str | None = None
    endpoint: str | None = None
    model: str | None = None
    output_path: str | None = None
    recorded_at: float = field(default_factory=time.time)
    job_id: str | None = None
    part: int | None = None


JournalEntry = BatchRecord  # the name existing callers import

BATCH_COLUMNS = tuple(f.name for f in fields(BatchRecord))


@dataclass
class Job:
    """One submission of an input file: what was sent where, with which options, and how far it got."""

    id: str
    created_at: float
    updated_at: float
    input_path: str
    input_sha256: str
    input_size: int
    input_lines: int  # requests (non-blank lines), not physical lines
    profile: str
    base_url: str
    provider: str
    channel: str | None
    endpoint: str | None
    model: str | None
    completion_window: str | None
    options_key: str
    state: str
    options: dict[str, Any]
    metadata: dict[str, str]


JOB_COLUMNS = tuple(f.name for f in fields(Job))
JOB_JSON_COLUMNS = ("options", "metadata")


@dataclass
class Part:
    """One batch of a job: a slice of the input's lines and how far its upload/create/download got."""

    job_id: str
    index: int  # 0-based
    first_line: int  # 1-based input line numbers, inclusive
    last_line: int
    byte_start: int  # input byte offsets, end exclusive
    byte_end: int
    request_count: int
    path: str | None = None  # the slice written to disk, while it exists
    token: str | None = None  # the current attempt's token
    file_id: str | None = None
    batch_id: str | None = None
    step: str = "planned"
    status: str | None = None  # the batch status last seen on the server
    total: int | None = None
    completed: int | None = None
    failed: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    retry_of: int | None = None  # the part index whose failed requests this part retries
    updated_at: float = 0.0


PART_COLUMNS = tuple("part" if f.name == "index" else f.name for f in fields(Part))
PART_UPDATABLE = frozenset(PART_COLUMNS) - {"job_id", "part", "updated_at"}


@dataclass
class Step:
    """The intent to run one step, written before it runs; `finished_at` None means it was in flight."""

    id: int
    job_id: str
    part: int | None
    name: str  # "split", "upload", "create", "download", ...
    token: str | None
    started_at: float
    finished_at: float | None
    outcome: str | None  # "ok", "error", ... as the caller reports it
    detail: str | None


@dataclass
class SavedFileRecord:
    """A result file a download wrote whole under its final name: which server file, and what the file
    looked like on disk right after the rename. A re-run keeps the file only while it still looks so
    (`unchanged`): same size, modification and change times, inode. A hash would prove more but costs
    a full read on every download; these cost one stat."""

    path: str  # resolved
    file_id: str
    batch_id: str | None
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    saved_at: float = field(default_factory=time.time)

    @classmethod
    def of(cls, path: str, file_id: str, batch_id: str | None, st: os.stat_result) -> SavedFileRecord:
        return cls(path, file_id, batch_id, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def unchanged(self, st: os.stat_result) -> bool:
        """The file on disk is still the one written (an edit changes the change time even when the
        size and modification time are put back)."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
        )  # fmt: skip


SAVED_FILE_COLUMNS = tuple(f.name for f in fields(SavedFileRecord))


def submission_options(
    *,
    input_sha256: str,
    base_url: str,
    profile: str,
    channel: str | None,
    endpoint: str | None,
    model: str | None,
    completion_window: str | None,
    metadata: Mapping[str, str] | None,
    max_requests: int,
    max_file_bytes: int,
    max_line_bytes: int | None,
) -> dict[str, Any]:
    """The options that make two submissions "the same": identical values mean the job is reused."""
    return {
        "input_sha256": input_sha256,
        "base_url": base_url.rstrip("/"),
        "profile": profile,
        "channel": channel,
        "endpoint": endpoint,
        "model": model,
        "completion_window": completion_window,
        "metadata": dict(sorted((metadata or {}).items())),
        "split": {"max_requests": max_requests, "max_file_bytes": max_file_bytes, "max_line_bytes": max_line_bytes},
    }


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces), so equal options hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def options_key(options: Mapping[str, Any]) -> str:
    """The SHA-256 of the canonical options: the index a repeated submission is found by."""
    return hashlib.sha256(canonical_json(options).encode("utf-8")).hexdigest()


def check_changes(changes: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    """Refuse unknown column names, so a typo fails loudly instead of being dropped."""
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValueError(f"cannot change {', '.join(unknown)} of a {what}: known fields are {', '.join(sorted(allowed))}")


def check_state(value: str | None, states: tuple[str, ...], what: str) -> None:
    if value is not None and value not in states:
        raise ValueError(f"{value!r} is not a {what}: use one of {', '.join(states)}")


class JobExists(BatchctlError):
    """A live job already stands for this submission; `job` is that job."""

    def __init__(self, job: Job) -> None:
        super().__init__(
            f"{job.id} already submits this input with these options (it is {job.state})",
            "Follow that job, or forget it to submit the input again as a new job.",
        )
        self.job = job


class NotFound(BatchctlError, LookupError):
    """No job, batch or step by that id in the journal."""


class Ambiguous(BatchctlError, LookupError):
    """An id prefix that matches more than one id; `matches` lists them."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        super().__init__(f"{prefix!r} matches {len(matches)} ids: {shown}", "Give more of the id.")
        self.matches = matches

"""Jobs: one input file submitted as one or more batches ("parts"), remembered in the SQLite journal."""

from __future__ import annotations

import secrets

JOB_PREFIX = "job_"


def new_job_id() -> str:
    """`job_` and 24 hex digits, the shape of the server's own ids (`batch_…`, `file-…`)."""
    return JOB_PREFIX + secrets.token_hex(12)


def new_token() -> str:
    """A fresh attempt token: names one try at a step, so a retry after a crash can find what it left."""
    return secrets.token_hex(8)

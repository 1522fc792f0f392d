"""The aggregate of a job's parts (pure: no server)."""

from __future__ import annotations

import pytest

from batchctl.api.models import Batch
from batchctl.jobs.reconcile import tags
from batchctl.jobs.records import Job, Part
from batchctl.jobs.view import aggregate, aggregate_status


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["completed", "completed"], "completed"),
        (["completed", "in_progress"], "in_progress"),
        (["validating", "validating"], "validating"),
        (["completed", "cancelling"], "cancelling"),
        (["completed", "cancelled", "failed"], "failed"),
        (["completed", "expired"], "expired"),
        (["completed", None], "submitting"),  # a part without a batch yet
    ],
)
def test_aggregate_status(statuses, expected):
    assert aggregate_status(statuses) == expected


def job(**kw) -> Job:
    values = dict(id="job_1", created_at=1.0, updated_at=1.0, input_path="/in.jsonl", input_sha256="x", input_size=1,
                  input_lines=3, profile="p", base_url="http://h/v1", provider="local", channel=None,
                  endpoint="/v1/chat/completions", model=None, completion_window="24h", options_key="k",
                  state="active", options={}, metadata={"team": "nlp"})  # fmt: skip
    return Job(**{**values, **kw})


def test_aggregate_sums_counts_and_spans_times():
    parts = [
        Batch(id="b1", status="completed", created_at=10, in_progress_at=11, completed_at=20, output_file_id="f1",
              request_counts={"total": 2, "completed": 2, "failed": 0}),
        Batch(id="b2", status="completed", created_at=12, in_progress_at=13, completed_at=30, output_file_id="f2",
              error_file_id="e2", request_counts={"total": 1, "completed": 0, "failed": 1}),
    ]  # fmt: skip
    total = aggregate(job(), parts)
    assert total.id == "job_1" and total.status == "completed"
    assert (total.request_counts.total, total.request_counts.completed, total.request_counts.failed) == (3, 2, 1)
    assert total.created_at == 10 and total.in_progress_at == 11 and total.completed_at == 30
    assert total.output_file_id == "2 files, one per part" and total.error_file_id == "e2"


def test_tags_join_the_users_metadata_and_win():
    part = Part(job_id="job_1", index=2, first_line=1, last_line=3, byte_start=0, byte_end=9, request_count=3)
    assert tags(job(metadata={"team": "nlp", "batchctl_part": "x"}), part, "t0") == {
        "team": "nlp", "batchctl_job": "job_1", "batchctl_part": "2", "batchctl_token": "t0",
    }  # fmt: skip

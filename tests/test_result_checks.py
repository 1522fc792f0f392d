"""result_checks: a downloaded file is results, and its line counts agree with the batch's counts."""

from __future__ import annotations

import pytest

from batchctl.api.models import Batch
from batchctl.errors import BatchctlError
from batchctl.result_checks import check_result_file, count_differences


def batch(completed: int, failed: int) -> Batch:
    return Batch.model_validate({"id": "batch_1", "status": "completed", "request_counts":
                                 {"total": completed + failed, "completed": completed, "failed": failed}})  # fmt: skip


def test_counts_that_agree_say_nothing_and_a_short_file_is_named():
    assert count_differences(batch(3, 1), output_lines=3, error_lines=1) == []
    (note,) = count_differences(batch(3, 1), output_lines=2, error_lines=None, live=False)
    assert "hold 2 result lines but the batch counts 3 completed + 1 failed = 4" in note
    assert "may not be final" in note


def test_a_completed_batch_whose_counts_fall_short_of_its_total_is_named():
    """An older `batchctl serve` ended a batch whose input file was deleted mid-run `completed`, 48/200."""
    short = Batch.model_validate({"id": "batch_1", "status": "completed",
                                  "request_counts": {"total": 200, "completed": 48, "failed": 0}})  # fmt: skip
    (note,) = count_differences(short, output_lines=48, error_lines=None)
    assert note == ("the batch is completed but counts only 48 of its 200 requests as completed or failed:"
                    " 152 requests got no result")  # fmt: skip
    cancelled = short.model_copy(update={"status": "cancelled"})  # a cancel leaves requests unrun, as it should
    assert count_differences(cancelled, output_lines=48, error_lines=None) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"custom_id": "a"}\n<html><body>502</body></html>\n', "line 2 is an HTML page"),
        (b'{"custom_id": "a"}\n{"custom_id": "b", "resp\n', "line 2 is not JSON"),
        (b'{"id": "x"}\n', "line 1 has no custom_id"),
    ],
)
def test_a_file_that_is_not_results_is_refused(tmp_path, content, problem):
    path = tmp_path / "f.jsonl"
    path.write_bytes(content)
    with pytest.raises(BatchctlError, match=problem):
        check_result_file(path, kind="output", file_id="file-1", final=tmp_path / "out.jsonl")

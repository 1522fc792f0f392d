"""Pure tests of the retry decisions: each custom_id's newest success counts, the codes of what failed,
what a cancelled or expired part left undone, and the lines written for a retry (no server)."""

from __future__ import annotations

import json

from batchctl.jobs.attempts import assess, failure_codes
from batchctl.jobs.records import Part
from batchctl.merging import MergeReport, iter_merged


def ok(cid: str, text: str = "ok") -> dict:
    return {"id": "r", "custom_id": cid, "response": {"status_code": 200, "body": {"answer": text}}, "error": None}


def http_error(cid: str, status: int, code: str | None) -> dict:
    body = {"error": {"message": "no", "type": "x", "code": code}}
    return {"id": "r", "custom_id": cid, "response": {"status_code": status, "body": body}, "error": None}


def write(path, rows) -> object:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def requests(path, n: int):
    return write(path, [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "m", "messages": []}} for i in range(1, n + 1)])  # fmt: skip


def part(index: int, first: int, last: int, retry_of: int | None = None, path: str | None = None) -> Part:
    return Part("job_x", index, first, last, 0, 0, last - first + 1, path=path, retry_of=retry_of)


def test_failure_codes_prefer_the_error_code_then_the_body_code_and_the_status():
    assert failure_codes({"error": {"code": "batch_expired"}, "response": None}) == ("batch_expired",)
    assert failure_codes(http_error("a", 429, "rate_limit_exceeded")) == ("rate_limit_exceeded", "429")
    assert failure_codes(http_error("a", 500, None)) == ("500",)
    assert failure_codes(None) == ("unreadable_result",)


def test_the_newest_success_counts_and_a_newer_failure_never_hides_an_older_success(tmp_path):
    source = requests(tmp_path / "in.jsonl", 3)
    first = write(tmp_path / "p0.jsonl", [ok("c1", "old"), http_error("c2", 429, "rl"), http_error("c3", 500, None)])
    second = write(tmp_path / "p1.jsonl", [http_error("c1", 500, None), ok("c2", "new"), http_error("c3", 400, "bad")])
    report = MergeReport()
    merged = [json.loads(line) for line in iter_merged(source, [first, second], report, ranks=[0, 1])]
    assert merged[0]["response"]["body"]["answer"] == "old"  # the newer failure did not hide it
    assert merged[1]["response"]["body"]["answer"] == "new"
    assert merged[2]["response"]["status_code"] == 400  # between failures, the newest
    assert (report.succeeded, report.failed, report.superseded, report.duplicates) == (2, ["c3"], 3, 0)


def test_assess_names_codes_by_attempt_and_writes_the_original_lines_per_source_part(tmp_path):
    source = requests(tmp_path / "in.jsonl", 6)
    parts = [part(0, 1, 3), part(1, 4, 6)]
    results = [(0, write(tmp_path / "o0.jsonl", [ok("c1"), http_error("c2", 429, "rate_limit_exceeded")])),
               (1, write(tmp_path / "o1.jsonl", [ok("c4"), http_error("c5", 400, "invalid_value")]))]  # fmt: skip
    statuses = {0: "expired", 1: "cancelled"}  # c3 and c6 were left undone
    out = tmp_path / "retry"
    out.mkdir()
    attempts = assess(source, parts, results, statuses, {}, only_codes={"429", "batch_expired", "batch_cancelled"},
                      out_dir=out)  # fmt: skip
    assert attempts.succeeded == 2 and attempts.requests == 6
    assert attempts.failed == {"rate_limit_exceeded": 1, "batch_expired": 1, "invalid_value": 1, "batch_cancelled": 1}
    assert attempts.kept == {"invalid_value": 1} and attempts.retry == {0: 2, 1: 1}
    assert attempts.spans == {0: (2, 3), 1: (6, 6)}
    lines = source.read_text().splitlines()
    assert (out / ".retry-0.tmp").read_text().splitlines() == [lines[1], lines[2]]
    assert (out / ".retry-1.tmp").read_text().splitlines() == [lines[5]]


def test_a_retry_part_that_returned_nothing_is_the_attempt_that_counts(tmp_path):
    source = requests(tmp_path / "in.jsonl", 2)
    retry_file = requests(tmp_path / "retry-002.jsonl", 1)  # the retry part was asked for c1 only
    parts = [part(0, 1, 2), part(1, 1, 1, retry_of=0, path=str(retry_file))]
    results = [(0, write(tmp_path / "e0.jsonl", [http_error("c1", 429, "rl"), http_error("c2", 429, "rl")]))]
    from batchctl.jobs.attempts import asked_by_retries

    attempts = assess(source, parts, results, {0: "completed", 1: "cancelled"}, asked_by_retries(parts))
    assert attempts.failed == {"batch_cancelled": 1, "rl": 1} and attempts.retry == {1: 1, 0: 1}
    assert attempts.summary() == {"requests": 2, "succeeded": 0, "failed": 2, "missing": 0,
                                  "codes": {"batch_cancelled": 1, "rl": 1}}  # fmt: skip


class FakeBatches:
    def __init__(self, batches):
        self.by_id = {b.id: b for b in batches}

    def retrieve(self, batch_id):
        return self.by_id[batch_id]


def journal_with_job(tmp_path, source, status: str):
    from batchctl.api.models import Batch
    from batchctl.jobs.retry import sha256_of
    from batchctl.jobs.store import Journal

    journal = Journal.open(tmp_path / "journal.db")
    job = journal.create_job(input_path=str(source), input_sha256=sha256_of(source), input_size=1, input_lines=2,
                             profile="p", base_url="http://h/v1", provider="local", options={}, state="active")  # fmt: skip
    journal.add_part(job.id, 0, first_line=1, last_line=2, byte_start=0, byte_end=1, request_count=2)
    journal.update_part(job.id, 0, batch_id="batch_1", step="created")
    batch = Batch(id="batch_1", status=status, request_counts={"total": 2, "completed": 1, "failed": 0})
    client = type("Client", (), {"batches": FakeBatches([batch])})()
    return journal, job, client


def test_a_running_job_or_a_changed_input_is_refused(tmp_path):
    import pytest

    from batchctl.errors import BatchctlError
    from batchctl.jobs.retry import assess_job

    source = requests(tmp_path / "in.jsonl", 2)
    journal, job, client = journal_with_job(tmp_path, source, "in_progress")
    with pytest.raises(BatchctlError) as running:
        assess_job(journal, job, client)
    assert running.value.exit_code == 6 and f"batchctl status --watch {job.id}" in running.value.hint
    journal.close()
    journal, job, client = journal_with_job(tmp_path / "second", source, "completed")
    source.write_text(source.read_text() + "\n")
    with pytest.raises(BatchctlError, match="changed since it was submitted"):
        assess_job(journal, job, client)
    journal.close()

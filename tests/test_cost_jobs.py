"""The cost of each job in `batchctl jobs`: `download` records its bill's totals in the journal."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from batchctl.cli.cost_render import bill_cost
from batchctl.jobs.store import Journal

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def run_json(*args: str):
    return json.loads(invoke("--json", *args).stdout)


def test_record_bill_on_jobs_and_batches(tmp_path):
    from batchctl.jobs.records import BatchRecord

    bill = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "currency": "CNY", "cost": 0.8, "saving": 0.8}
    with Journal.open(tmp_path / "j.db") as journal:
        job = journal.create_job(input_path="in.jsonl", input_sha256="x", input_size=1, input_lines=1, profile="p",
                                 base_url="u", provider="openai", options={"k": 1})  # fmt: skip
        journal.add_part(job.id, 0, first_line=1, last_line=1, byte_start=0, byte_end=1, request_count=1)
        journal.update_part(job.id, 0, batch_id="batch_1")
        journal.record_batch(BatchRecord(batch_id="batch_1", profile="p", base_url="u", provider="openai", job_id=job.id, part=0))
        journal.record_batch(BatchRecord(batch_id="batch_2", profile="p", base_url="u", provider="openai"))
        assert journal.bill(job.id) is None and journal.bill("batch_1") is None
        assert journal.record_bill("batch_1", bill)  # the only part of its job: the job has it too
        assert journal.bill("batch_1") == bill == journal.bill(job.id)
        assert journal.record_bill("batch_2", {**bill, "cost": 0.1}) and journal.bill("batch_2")["cost"] == 0.1
        assert journal.bill(job.id)["cost"] == 0.8
        assert not journal.record_bill("batch_unknown", bill) and not journal.record_bill("job_unknown", bill)
        assert not journal.record_bill(job.id, None) and journal.bill(job.id) == bill
        journal.record_batch(BatchRecord(batch_id="batch_1", profile="p", base_url="u", provider="openai", job_id=job.id, part=0))
        assert journal.bill("batch_1") == bill  # recording the route again keeps the bill
    assert bill_cost(bill) == "¥0.80" and bill_cost({**bill, "currency": "USD", "cost": 0.12}) == "$0.12"
    assert bill_cost(None) == "-" and bill_cost({**bill, "cost": None}) == "-"


@pytest.mark.e2e
def test_jobs_show_the_cost_a_download_found(start_server, in_tmp):
    server = start_server(latency=0.0)
    invoke("profile", "add", "small", "--preset", "local", "--base-url", server.base_url, "--max-requests", "50",
           "--poll-interval", "0.1")  # fmt: skip
    invoke("profile", "price", "set", "echo", "--input", "1", "--output", "2")  # $ per 1M tokens, batch -50 %
    job_id = run_json("submit", str(write_requests(in_tmp / "big.jsonl", 60)))["job_id"]  # two parts
    single = run_json("submit", str(write_requests(in_tmp / "one.jsonl", 3)))  # one part: shown by batch id

    listed = {j["job_id"]: j for j in run_json("jobs")}
    assert listed[job_id]["bill"] is None and listed[single["job_id"]]["bill"] is None
    assert invoke("jobs").stdout.count(" - ") >= 2

    downloaded = run_json("download", job_id, "--wait", "--interval", "0.1", "-o", "big.out.jsonl")
    usage = downloaded["bill"]["usage"]
    run_json("download", single["id"], "--wait", "--interval", "0.1", "-o", "one.out.jsonl")

    listed = {j["job_id"]: j for j in run_json("jobs")}
    bill = listed[job_id]["bill"]
    assert bill["input_tokens"] == usage["input_tokens"] > 0 and bill["currency"] == "USD"
    expected = (usage["input_tokens"] * 1 + usage["output_tokens"] * 2) / 1e6 * 0.5
    assert bill["cost"] == pytest.approx(expected) and bill["saving"] == pytest.approx(expected)
    assert listed[single["job_id"]]["bill"]["cost"] > 0  # downloaded by its batch id
    assert run_json("jobs", "show", job_id)["bill"] == bill
    table = invoke("jobs").stdout
    assert "cost" in table and table.count("$0.0") == 2
    assert "Cost: $0.0" in invoke("jobs", "show", job_id).stdout

    with Journal.open() as journal:
        assert journal.bill(single["id"])["cost"] == listed[single["job_id"]]["bill"]["cost"]
        names = [row[0] for row in journal.conn.execute("SELECT name FROM _migrations")]
    assert names.count("m003_bills") == 1

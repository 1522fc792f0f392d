"""`download JOB --join` against a real local server (the echo model answers `echo: <user text>`) when the
table is not what was submitted, and when a --json-schema answer is not JSON.

A job made by `submit DATA --template` records the table's SHA-256: a table sorted or filtered since (in a
spreadsheet, say) is refused, not joined with every answer on another row; with --id-column a table that
was only re-sorted joins by its ids. An answer that should be JSON and is not gets `invalid_json: …`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.jobs.store import Journal
from test_prepare_cli import read_csv, write_csv

pytestmark = pytest.mark.e2e
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def local(start_server):
    handle = start_server(latency=0.0)
    result = invoke("profile", "add", "trial", "--preset", "local", "--base-url", handle.base_url, "--poll-interval", "0.1")
    assert result.exit_code == 0, result.output
    return handle


def reviews(n: int = 30) -> list[dict[str, str]]:
    return [{"sku": f"S-{i:03d}", "product": f"item {i}", "review": f"第{i}条评论：质量很好"} for i in range(1, n + 1)]


def submit(data: str, *extra: str) -> str:
    result = invoke("submit", data, "--template", "Review: {review}", "--model", "echo", *extra,
                    "--wait", "--interval", "0.1", "-o", "raw.jsonl", "--force")  # fmt: skip
    assert result.exit_code == 0, result.output
    with Journal.open() as journal:
        return journal.jobs()[0].id


def test_a_table_sorted_since_submit_is_refused_instead_of_joined_onto_the_wrong_rows(local, in_tmp):
    rows = reviews()
    write_csv(in_tmp / "r3.csv", rows)
    (in_tmp / "backup.csv").write_bytes((in_tmp / "r3.csv").read_bytes())
    job_id = submit("r3.csv")
    write_csv(in_tmp / "r3.csv", rows[::-1])  # sorted the other way round in a spreadsheet, saved over

    refused = invoke("download", "last", "--join", "-o", "r3.answers.csv")
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith(f"Error: r3.csv changed since {job_id} was submitted (SHA-256 differs): its rows "
                                     "would get other rows' answers")  # fmt: skip
    assert f"batchctl download {job_id} --content" in refused.stderr and "--id-column" in refused.stderr
    assert not (in_tmp / "r3.answers.csv").exists()
    # Named explicitly, by the batch id too, or filtered: the same refusal. The content decides, not the name.
    with Journal.open() as journal:
        [batch_id] = [part.batch_id for part in journal.parts(job_id)]
    for args in ([job_id, "--join", "r3.csv"], [batch_id, "--join", "r3.csv"]):
        again = invoke("download", *args, "-o", "r3.answers.csv")
        assert again.exit_code == 1 and "r3.csv changed since" in again.stderr, again.output
    write_csv(in_tmp / "filtered.csv", rows[:20])
    filtered = invoke("download", job_id, "--join", "filtered.csv", "-o", "r3.answers.csv")
    assert filtered.exit_code == 1 and f"filtered.csv changed since {job_id} was submitted" in filtered.stderr
    assert not (in_tmp / "r3.answers.csv").exists()

    # The file as it was submitted joins, under any name: every answer on its own row.
    joined = invoke("download", job_id, "--join", "backup.csv", "-o", "r3.answers.csv")
    assert joined.exit_code == 0, joined.output
    out = read_csv(in_tmp / "r3.answers.csv")
    assert [r["sku"] for r in out] == [r["sku"] for r in rows]
    assert all(r["answer"] == "echo: Review: " + r["review"] for r in out)


def test_a_table_with_ids_joins_re_sorted_but_not_filtered(local, in_tmp):
    rows = reviews()
    write_csv(in_tmp / "r3.csv", rows)
    job_id = submit("r3.csv", "--id-column", "sku")
    write_csv(in_tmp / "r3.csv", rows[::-1])

    joined = invoke("download", "last", "--join", "-o", "r3.answers.csv")
    assert joined.exit_code == 0, joined.output
    assert f"r3.csv changed since {job_id} was submitted; its rows were joined by their sku" in joined.stderr
    out = read_csv(in_tmp / "r3.answers.csv")
    assert [r["sku"] for r in out] == [r["sku"] for r in rows[::-1]]  # the table's order now
    assert all(r["answer"] == "echo: Review: " + r["review"] and r["error"] == "" for r in out)  # each its own answer

    write_csv(in_tmp / "r3.csv", rows[:29][::-1])  # and a row deleted: refused, nothing written
    refused = invoke("download", "last", "--join", "-o", "r3.fewer.csv")
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith(f"Error: r3.csv changed since {job_id} was submitted (SHA-256 differs), and its "
                                     "sku ids are not the job's: 1 results match no row; nothing was written")  # fmt: skip
    assert not (in_tmp / "r3.fewer.csv").exists() and not list(in_tmp.glob("*.part"))


def test_a_job_without_a_recorded_sha256_joins_as_before_and_a_resaved_table_attaches(local, in_tmp):
    rows = reviews(5)
    write_csv(in_tmp / "r.csv", rows)
    job_id = submit("r.csv")
    with Journal.open() as journal:  # as an older release recorded it: no SHA-256 of the table
        job = journal.get_job(job_id)
        assert job is not None and len(job.options["prepare"]["data_sha256"]) == 64
        journal.update_job(job_id, options={**job.options, "prepare": {k: v for k, v in job.options["prepare"].items()
                                                                        if k != "data_sha256"}})  # fmt: skip
    write_csv(in_tmp / "r.csv", rows[::-1])
    old = invoke("download", job_id, "--join", "-o", "old.csv")
    assert old.exit_code == 0, old.output  # nothing to compare with: joined as before

    # The same requests from a table changed elsewhere (a column the template does not use): the same
    # submit attaches to its job, which records the table as it is now; the join takes it.
    write_csv(in_tmp / "s.csv", rows)
    job_id = submit("s.csv")
    write_csv(in_tmp / "s.csv", [{**r, "product": r["product"].upper()} for r in rows])
    assert "s.csv changed since" in invoke("download", job_id, "--join", "-o", "new.csv").stderr
    again = invoke("submit", "s.csv", "--template", "Review: {review}", "--model", "echo")
    assert again.exit_code == 0 and f"already submitted as {job_id}" in again.stderr, again.output
    joined = invoke("download", job_id, "--join", "-o", "new.csv")
    assert joined.exit_code == 0, joined.output
    assert [(r["product"], r["answer"]) for r in read_csv(in_tmp / "new.csv")][0] == ("ITEM 1", "echo: Review: 第1条评论：质量很好")


def test_answers_of_a_json_schema_job_that_are_not_json_say_so(local, in_tmp):
    write_csv(in_tmp / "r.csv", reviews(4))
    (in_tmp / "schema.json").write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    submit("r.csv", "--json-schema", "@schema.json")
    joined = invoke("download", "last", "--join", "-o", "answers.jsonl")
    assert joined.exit_code == 0, joined.output  # as for other failed rows: the batch completed
    assert "4 requests: 0 succeeded, 4 failed, 0 missing." in joined.stderr
    assert "4 answers were not valid JSON (counted as failed)" in joined.stderr
    out = [json.loads(line) for line in (in_tmp / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["answer"] for r in out] == [f"echo: Review: 第{i}条评论：质量很好" for i in range(1, 5)]  # the raw text
    assert all(r["error"].startswith("invalid_json: the answer is not valid JSON (Expecting value at character 0)")
               for r in out)  # fmt: skip

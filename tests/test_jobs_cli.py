"""Jobs end to end against a real local server: a 230-request file with a 50-request limit is a job of
5 batches; status, download (--merge), cancel and `jobs` take the job id; a re-run attaches."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from batchctl.jobs.store import Journal

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture
def small(start_server):
    """A server and an active profile `small` pointing at it with a 50-request limit."""
    handle = start_server(latency=0.0)
    result = runner.invoke(app, ["profile", "add", "small", "--preset", "local", "--base-url", handle.base_url,
                                 "--max-requests", "50", "--poll-interval", "0.1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return handle


def server_batches(server) -> list[dict]:
    return httpx.get(server.base_url + "/batches", params={"limit": 100}).json()["data"]


def uploads(server) -> list[dict]:
    return [f for f in httpx.get(server.base_url + "/files").json()["data"] if f["purpose"] == "batch"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_a_file_over_the_limit_is_a_job_of_parts_downloaded_in_input_order(small, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 230)
    result = invoke("submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    job_id = result.stdout.splitlines()[0].strip()
    assert job_id.startswith("job_")
    assert f"input has 230 requests: 5 batches of ≤ 50 ({job_id})" in result.stderr
    batches = server_batches(small)
    assert len(batches) == 5 and {b["metadata"]["batchctl_job"] for b in batches} == {job_id}
    assert sorted(b["request_counts"]["total"] for b in batches) == [30, 50, 50, 50, 50]
    lines = (in_tmp / "out.jsonl").read_text().splitlines()
    assert len(lines) == 230  # the parts' outputs, concatenated in part order
    assert {json.loads(line)["custom_id"] for line in lines[:50]} == {f"req-{i}" for i in range(1, 51)}

    merged = invoke("download", job_id, "--merge", str(source), "-o", "merged.jsonl")
    assert merged.exit_code == 0, merged.output
    ids = [json.loads(line)["custom_id"] for line in (in_tmp / "merged.jsonl").read_text().splitlines()]
    assert ids == [f"req-{i}" for i in range(1, 231)]

    content = invoke("--json", "download", job_id, "--content", "-o", "answers.jsonl")
    assert content.exit_code == 0, content.output
    assert json.loads(content.stdout)["files"][0]["lines"] == 230

    with Journal.open() as journal:
        job = journal.get_job(job_id)
        parts = journal.parts(job_id)
    assert job.state == "completed" and job.input_lines == 230 and job.input_sha256
    assert [(p.first_line, p.last_line) for p in parts] == [(1, 50), (51, 100), (101, 150), (151, 200), (201, 230)]
    assert all(p.step == "created" and p.status == "completed" and p.file_id for p in parts)

    # The same submission again attaches: nothing uploaded, no new batch.
    before = len(uploads(small))
    again = invoke("submit", str(source))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == job_id
    assert f"already submitted as {job_id} on " in again.stderr and "--new to submit again" in again.stderr
    assert len(uploads(small)) == before and len(server_batches(small)) == 5


def test_status_jobs_and_json(small, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 120)
    submitted = invoke("--json", "submit", str(source))
    assert submitted.exit_code == 0, submitted.output
    data = json.loads(submitted.stdout)
    job_id = data["job_id"]
    assert data["object"] == "job" and [p["requests"] for p in data["parts"]] == [50, 50, 20]
    assert all(p["batch_id"].startswith("batch_") for p in data["parts"])

    watched = invoke("status", job_id, "--watch", "--json", "--interval", "0.1")
    assert watched.exit_code == 0, watched.output
    last = json.loads(watched.stdout.strip().splitlines()[-1])  # NDJSON: the aggregate comes last
    assert last["job_id"] == job_id and last["aggregate"]["status"] == "completed"
    assert last["aggregate"]["request_counts"] == {"total": 120, "completed": 120, "failed": 0}
    assert [p["status"] for p in last["parts"]] == ["completed"] * 3

    shown = invoke("status", job_id[:10])  # a unique prefix works too
    assert shown.exit_code == 0, shown.output
    assert "120/120" in shown.stdout and data["parts"][2]["batch_id"] in shown.stdout

    listed = invoke("jobs", "--json")
    assert [j["job_id"] for j in json.loads(listed.stdout)] == [job_id]
    assert invoke("-q", "jobs").stdout == f"{job_id}\n"  # ids only, for xargs
    table = invoke("jobs")
    assert job_id in table.stdout and "chat.jsonl" in table.stdout and "120/120" in table.stdout
    detail = invoke("jobs", "show", job_id, "--json")
    assert json.loads(detail.stdout)["parts"][0]["first_line"] == 1
    assert json.loads(invoke("jobs", "--json", "show", job_id).stdout) == json.loads(detail.stdout)  # the group's flag
    missing = invoke("jobs", "--json", "show", "job_nope")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"]["message"] == "no job 'job_nope' in the journal"

    cancelled = invoke("cancel", job_id, "--yes")  # every part has finished: nothing to cancel, no failure
    assert cancelled.exit_code == 0, cancelled.output
    assert "already finished" in cancelled.stderr

    forgotten = invoke("jobs", "forget", job_id)
    assert forgotten.exit_code == 0 and job_id not in invoke("jobs").stdout
    again = invoke("submit", str(source))  # forgotten: submitted again as a new job
    assert again.exit_code == 0 and again.stdout.strip() != job_id


def test_one_part_job_keeps_the_batch_id_and_no_split_refuses(small, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 20)
    result = invoke("--json", "submit", str(source))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"].startswith("batch_") and data["job_id"].startswith("job_") and data["object"] == "batch"
    status = invoke("status", data["job_id"], "--json")
    assert json.loads(status.stdout)[0]["parts"][0]["batch_id"] == data["id"]

    big = write_requests(in_tmp / "big.jsonl", 51)
    refused = invoke("submit", str(big), "--no-split")
    assert refused.exit_code == 1
    assert "51 requests, 1 over" in refused.stderr and "nothing was uploaded" in refused.stderr
    assert "Every line is valid: without --no-split, submit makes it a job of several batches." in refused.stderr
    assert "--no-validate" not in refused.stderr  # no line to fix, no check to skip
    new = invoke("submit", str(source), "--new")
    assert new.exit_code == 0 and new.stdout.strip() != data["id"]
    assert len(server_batches(small)) == 2


def test_submitting_a_saved_job_again_keeps_its_results_where_they_are(small, in_tmp, monkeypatch):
    """`submit FILE --wait` run again after it finished and saved: attached, nothing fetched or written
    anew under another default name; -o (or --force) still saves as asked."""
    source = write_requests(in_tmp / "chat.jsonl", 20)
    first = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1")
    assert first.exit_code == 0, first.output
    (saved,) = [f for f in json.loads(first.stdout)["download"]["files"] if f["kind"] == "output"]
    saved_bytes = Path(saved["path"]).read_bytes()
    contents = []
    with monkeypatch.context() as patch:
        patch.setattr("batchctl.results.default_output_name", lambda *a, **k: "another-name.jsonl")
        patch.setattr("batchctl.api.resources.files.Files.download_to",
                      lambda self, *a, **k: contents.append(a) or pytest.fail("downloaded again"))  # fmt: skip
        again = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1")
    assert again.exit_code == 0, again.output
    files = json.loads(again.stdout)["download"]["files"]
    assert [(f["path"], f["kept"], f["lines"]) for f in files] == [(saved["path"], True, 20)]
    assert Path(saved["path"]).read_bytes() == saved_bytes and not contents
    assert sorted(p.name for p in in_tmp.glob("*.jsonl")) == sorted(["chat.jsonl", Path(saved["path"]).name])
    assert len(server_batches(small)) == 1

    named = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1", "-o", "named.jsonl")
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["download"]["files"][0]["kept"] is False
    assert (in_tmp / "named.jsonl").read_bytes() == saved_bytes
    assert len(server_batches(small)) == 1


def test_a_second_submit_keeps_an_all_failed_jobs_error_file_and_obeys_errors_output(start_server, in_tmp, monkeypatch):
    from test_cli_download import FAILING, FAILURE_RATE

    server = start_server(failure_rate=FAILURE_RATE)
    assert invoke("profile", "add", "flaky", "--preset", "local", "--base-url", server.base_url).exit_code == 0
    source = write_requests(in_tmp / "all.jsonl", int(FAILING[0].split("-")[1]))
    source.write_text(source.read_text().splitlines()[-1] + "\n")  # only a request that fails
    first = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1")
    assert first.exit_code == 3, first.output  # every request failed
    (saved,) = json.loads(first.stdout)["download"]["files"]
    assert saved["kind"] == "error"
    monkeypatch.setattr("batchctl.results.default_output_name", lambda *a, **k: "again.jsonl")
    again = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1")
    assert [(f["path"], f["kept"]) for f in json.loads(again.stdout)["download"]["files"]] == [(saved["path"], True)]
    asked = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1", "--errors-output", "mine.jsonl")
    assert [(f["path"], f["kept"]) for f in json.loads(asked.stdout)["download"]["files"]] == [("mine.jsonl", False)]


@pytest.mark.parametrize("earlier", ["cut", "content", "elsewhere"])
def test_results_not_whole_here_are_saved_afresh_on_a_second_submit(small, in_tmp, monkeypatch, earlier):
    """What the journal recorded is kept only when it is here and whole: a file cut short, an earlier
    --content file, or results saved in another directory are no reason to refuse; they are saved anew."""
    source = write_requests(in_tmp / "chat.jsonl", 20)
    first = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1")
    assert first.exit_code == 0, first.output
    (saved,) = [Path(f["path"]) for f in json.loads(first.stdout)["download"]["files"] if f["kind"] == "output"]
    whole = saved.read_bytes()
    if earlier == "cut":
        saved.write_bytes(whole[:100])
    elif earlier == "content":  # the job's last download was --content: the journal records that file
        content = invoke("download", json.loads(first.stdout)["job_id"], "--content", "-o", "answers.jsonl")
        assert content.exit_code == 0, content.output
    else:
        (in_tmp / "elsewhere").mkdir()
        monkeypatch.chdir(in_tmp / "elsewhere")
    monkeypatch.setattr("batchctl.results.default_output_name", lambda *a, **k: "again.jsonl")
    again = invoke("--json", "submit", str(source), "--wait", "--interval", "0.1")
    assert again.exit_code == 0, again.output
    files = json.loads(again.stdout)["download"]["files"]
    assert [(f["path"], f["kept"]) for f in files] == [("again.jsonl", False)]
    assert Path("again.jsonl").read_bytes() == whole


def test_cancel_a_running_job_cancels_every_part(start_server, in_tmp):
    server = start_server(latency=0.2, extra_args=["--concurrency", "1"])
    assert invoke("profile", "add", "slow", "--preset", "local", "--base-url", server.base_url,
                  "--max-requests", "10").exit_code == 0  # fmt: skip
    job_id = invoke("submit", str(write_requests(in_tmp / "chat.jsonl", 30))).stdout.strip()
    result = invoke("cancel", job_id, "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3
    assert all(b["status"] in ("cancelling", "cancelled") for b in server_batches(server))


def test_ids_complete_from_the_journal_newest_first(small, in_tmp):
    from batchctl.cli.options import complete_ids, complete_job_ids

    assert complete_ids("") == []  # no journal yet: nothing, and no error
    first = invoke("submit", str(write_requests(in_tmp / "one.jsonl", 5))).stdout.strip()
    job_id = invoke("submit", str(write_requests(in_tmp / "two.jsonl", 60))).stdout.strip()
    with Journal.open() as journal:
        steps = [s.name for s in journal.steps(job_id)]
    assert steps[0] == "split" and steps.count("upload") == steps.count("create") == 2  # each intent recorded
    jobs = complete_job_ids("job_")
    assert [value for value, _ in jobs][0] == job_id and dict(jobs)[job_id] == "two.jsonl"
    batches = dict(complete_ids("batch_"))
    assert batches[first] == "one.jsonl" and len(batches) == 3


def test_usage_of_a_job_sums_its_batches(start_server, monkeypatch, in_tmp):
    server = start_server()
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    assert runner.invoke(app, ["profile", "add", "small", "--base-url", server.base_url, "--provider", "local",
                               "--max-requests", "4"]).exit_code == 0  # fmt: skip
    source = write_requests(in_tmp / "chat.jsonl", 10)
    job_id = runner.invoke(app, ["submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl"]).stdout.strip()
    assert job_id.startswith("job_"), job_id
    bill = json.loads(runner.invoke(app, ["usage", job_id, "--json"]).stdout)
    assert len(bill["batches"]) == 3 and bill["usage"]["succeeded"] == 10
    assert json.loads(runner.invoke(app, ["usage", "last", "--json"]).stdout)["usage"]["succeeded"] == 10


def test_last_names_the_newest_job_in_retry_and_jobs_show_and_forget(small, in_tmp):
    """`last` works as in status/download: retry, jobs show and jobs forget take it; an unknown id's
    hint names `batchctl jobs` (the journal's jobs), not `batchctl list` alone (the server's batches)."""
    for args in (["retry", "last"], ["jobs", "show", "last"], ["jobs", "forget", "last"]):
        empty = invoke(*args)
        assert empty.exit_code == 1 and empty.stderr.startswith("Error: nothing was submitted from this machine yet"), args
    one = invoke("submit", str(write_requests(in_tmp / "one.jsonl", 5)), "--wait", "--interval", "0.1", "-o", "one.out")
    assert one.exit_code == 0, one.output
    batch_id = one.stdout.splitlines()[0].strip()
    with Journal.open() as journal:
        one_job = journal.lookup_batch(batch_id).job_id
    assert batch_id.startswith("batch_") and one_job.startswith("job_")
    shown = invoke("jobs", "show", "last", "--json")  # a one-part job goes by its batch id: still its job
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["job_id"] == one_job

    two = invoke("submit", str(write_requests(in_tmp / "two.jsonl", 60)), "--wait", "--interval", "0.1", "-o", "two.out")
    assert two.exit_code == 0, two.output
    job_id = two.stdout.splitlines()[0].strip()
    assert job_id.startswith("job_") and job_id != one_job
    retried = invoke("retry", "last")
    assert retried.exit_code == 0, retried.output
    assert f"Nothing to retry in {job_id}: 60 of 60 requests succeeded" in retried.stderr
    assert json.loads(invoke("jobs", "show", "last", "--json").stdout)["job_id"] == job_id
    assert job_id in invoke("jobs", "show", "last").output
    forgotten = invoke("jobs", "forget", "last")
    assert forgotten.exit_code == 0, forgotten.output
    assert f"Forgot {job_id}" in forgotten.stderr and job_id not in invoke("jobs").stdout
    assert json.loads(invoke("jobs", "show", "last", "--json").stdout)["job_id"] == one_job  # the one before it

    for args, said in (
        (["retry", "nope"], "Error: no job or batch 'nope' in the journal"),
        (["retry", "job_nope"], "Error: no job 'job_nope' in the journal"),
        (["jobs", "show", "nope"], "Error: no job 'nope' in the journal"),
        (["jobs", "forget", "nope"], "Error: no job 'nope' in the journal"),
    ):
        missing = invoke(*args)
        assert missing.exit_code == 1, (args, missing.output)
        message, hint = missing.stderr.splitlines()[:2]
        assert message == said and "job_job_" not in missing.output, (args, missing.stderr)
        assert hint.startswith("`batchctl jobs` lists the jobs in the journal"), (args, hint)
    assert invoke("retry", "nope").stderr.splitlines()[1].endswith("; `batchctl list` lists the server's batches.")


def test_a_job_sent_to_a_url_with_a_password_keeps_it_but_never_shows_it(small, in_tmp):
    url = small.base_url.replace("http://", "http://bob:hunter2pass@")
    masked = small.base_url.replace("http://", "http://bob:****@")
    assert invoke("profile", "add", "pw", "--preset", "local", "--base-url", url, "--max-requests", "50").exit_code == 0
    submitted = invoke("submit", str(write_requests(in_tmp / "chat.jsonl", 60)), "--wait", "--interval", "0.1", "-o", "out.jsonl")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.splitlines()[0].strip()
    with Journal.open() as journal:
        assert journal.get_job(job_id).base_url == url  # later commands reach the server the same way
    shown = invoke("jobs", "show", job_id, "--json")
    assert json.loads(shown.stdout)["base_url"] == masked
    logged = invoke("--debug", "status", job_id)
    assert logged.exit_code == 0, logged.output
    assert f"HTTP GET {masked}/batches/batch_" in logged.stderr
    for result in (submitted, shown, logged, invoke("jobs", "show", job_id), invoke("--json", "status", job_id)):
        assert "hunter2pass" not in result.output

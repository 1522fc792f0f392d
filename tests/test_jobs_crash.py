"""Crash safety of `submit FILE`: kill -9 after each step, then the same command again, leaves exactly one
batch per part and a complete job; a create answered 500 after the batch was made is reconciled, not
repeated; concurrent submits keep each other's journal records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from server_fixture import ServerHandle, ThreadedApp, _child_env, free_port
from batchctl.cli.app import app
from batchctl.jobs.store import Journal

pytestmark = pytest.mark.e2e
runner = CliRunner()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for the module: each test has its own journal and tells its batches apart by job tag."""
    handle = ServerHandle(port=free_port(), data_dir=tmp_path_factory.mktemp("server") / "data", args=[])
    handle.start()
    yield handle
    handle.kill()


def use_profile(base_url: str, max_requests: int = 20) -> None:
    result = runner.invoke(app, ["profile", "add", "t", "--preset", "local", "--base-url", base_url,
                                 "--max-requests", str(max_requests), "--poll-interval", "0.1"])  # fmt: skip
    assert result.exit_code == 0, result.output


def batches_of(server_url: str, job_id: str) -> list[dict]:
    data = httpx.get(server_url + "/batches", params={"limit": 100}).json()["data"]
    return [b for b in data if (b.get("metadata") or {}).get("batchctl_job") == job_id]


def batchctl(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batchctl", *args], cwd=cwd, capture_output=True, text=True,
                          env={**_child_env(None), **env}, timeout=60)  # fmt: skip


def inputs_on(server) -> list[dict]:
    return [f for f in httpx.get(server.base_url + "/files").json()["data"] if f["purpose"] == "batch"]


def only_job() -> tuple:
    with Journal.open() as journal:
        jobs = journal.jobs()
        assert len(jobs) == 1, jobs
        return journal.get_job(jobs[0].id), journal.parts(jobs[0].id), journal.batches(job_id=jobs[0].id)


KILL_POINTS = ["split", "upload-sent", "upload:2", "create-sent", "create-sent:3", "create", "watch", "download"]


@pytest.mark.parametrize("kill_after", KILL_POINTS)
def test_kill_9_after_any_step_then_rerun_gives_one_batch_per_part(shared_server, in_tmp, kill_after):
    use_profile(shared_server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 50)  # 3 parts of <= 20
    command = ["submit", str(source), "--wait", "--interval", "0.1", "-o", "out.jsonl"]
    killed = batchctl(command, in_tmp, BATCHCTL_TEST_KILL_AFTER=kill_after)
    assert killed.returncode == -9, killed.stderr
    assert not (in_tmp / "out.jsonl").exists() and not list(in_tmp.glob("*.part"))

    again = runner.invoke(app, command)
    assert again.exit_code == 0, again.output
    job, parts, records = only_job()
    assert "resuming" in again.stderr or "attaching" in again.stderr
    if kill_after == "create-sent":
        assert "found batch_" in again.stderr and "adopting it" in again.stderr
    if kill_after == "upload-sent":
        assert "uploading it again" in again.stderr
    on_server = batches_of(shared_server.base_url, job.id)
    assert sorted(int(b["metadata"]["batchctl_part"]) for b in on_server) == [0, 1, 2]  # one per part
    assert sorted(p.batch_id for p in parts) == sorted(b["id"] for b in on_server) == sorted(r.batch_id for r in records)
    assert job.state == "completed" and all(p.status == "completed" for p in parts)
    assert len((in_tmp / "out.jsonl").read_text().splitlines()) == 50
    assert not list((Path(os.environ["BATCHCTL_DATA_DIR"]) / "jobs" / job.id).glob("part-*"))  # slices removed


def test_rerun_of_a_completed_submit_uploads_nothing(shared_server, in_tmp):
    use_profile(shared_server.base_url)
    source = write_requests(in_tmp / "chat.jsonl", 30)
    first = runner.invoke(app, ["submit", str(source)])
    assert first.exit_code == 0, first.output
    files = inputs_on(shared_server)
    second = runner.invoke(app, ["submit", str(source), "--metadata", "x=1"])  # other options: a new job
    third = runner.invoke(app, ["--debug", "submit", str(source)])
    assert second.exit_code == third.exit_code == 0
    assert third.stdout.strip() == first.stdout.strip()
    assert "POST" not in third.stderr  # attached: no upload, no create
    assert len(inputs_on(shared_server)) == len(files) + 2  # the new job's 2 parts, nothing for the third run


# -- a fault proxy: the create reaches the server, the answer is a 500 --------------------------------


class FaultProxy(ThreadedApp):
    """Forwards to `upstream`; answers the first POST /v1/batches with 500 after forwarding it.

    `list_status`: answer GET /v1/batches with this status instead (a provider that cannot list);
    `drop_metadata`: batches come back without their metadata (a gateway that does not relay it);
    `refuse_metadata`: a create with metadata is refused 400 (as Google's layers refuse unknown fields),
    one without it is forwarded and answered as it is (`fail_untagged`: the first one with 500 after it).
    """

    def __init__(self, upstream: str, list_status: int | None = None, drop_metadata: bool = False,
                 refuse_metadata: bool = False, fail_untagged: bool = False) -> None:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        self.upstream = upstream.rstrip("/").removesuffix("/v1")  # the request path carries /v1
        self.failed_creates = 0
        self.list_status = list_status
        self.fail_untagged = fail_untagged

        async def forward(request):
            path = request.url.path
            if request.method == "GET" and path == "/v1/batches" and self.list_status:
                return Response('{"error": {"message": "no such route"}}', self.list_status)
            body = await request.body()
            if refuse_metadata and request.method == "POST" and path == "/v1/batches":
                if "metadata" in json.loads(body):
                    return Response('{"error": {"message": "Invalid JSON payload received. Unknown name \\"metadata\\": '
                                    'Cannot find field."}}', 400, media_type="application/json")  # fmt: skip
                if not self.fail_untagged:
                    self.failed_creates += 1  # only the refusal is a fault here: the create goes through
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.request(request.method, self.upstream + path, params=request.query_params,
                                              content=body, headers=headers)  # fmt: skip
            if request.method == "POST" and path == "/v1/batches" and self.failed_creates == 0:
                self.failed_creates += 1
                return Response('{"error": {"message": "upstream hiccup"}}', 500, media_type="application/json")
            keep = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type",)}
            content = answer.content
            if drop_metadata and path.startswith("/v1/batches") and answer.status_code == 200:
                body = answer.json()
                for batch in body.get("data", [body]):
                    batch["metadata"] = None
                content = json.dumps(body).encode()
            return Response(content, answer.status_code, headers=keep)

        self.app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])


def test_create_answered_500_after_the_batch_was_made_is_adopted_not_repeated(shared_server, in_tmp):
    with FaultProxy(shared_server.base_url) as proxy:
        use_profile(proxy.base_url)
        source = write_requests(in_tmp / "chat.jsonl", 30)
        first = runner.invoke(app, ["submit", str(source)])
        assert first.exit_code == 0, first.output
        assert proxy.failed_creates == 1
        assert "HTTP 500" in first.stderr and "found batch_" in first.stderr
        again = runner.invoke(app, ["submit", str(source)])
        assert again.exit_code == 0, again.output
    job, parts, _ = only_job()
    assert sorted(int(b["metadata"]["batchctl_part"]) for b in batches_of(shared_server.base_url, job.id)) == [0, 1]


def test_through_a_gateway_that_drops_metadata_the_batch_made_from_the_parts_file_is_adopted(shared_server, in_tmp):
    """Reconciling looks for the job's tags; a gateway that does not relay metadata hides them, and the
    create answered 500 was taken for none, so the next run made a second batch. The part uploaded its
    file itself: the batch made from it is the part's."""
    with FaultProxy(shared_server.base_url, drop_metadata=True) as proxy:
        use_profile(proxy.base_url)
        source = write_requests(in_tmp / "chat.jsonl", 10)
        first = runner.invoke(app, ["submit", str(source)])
        assert first.exit_code == 0, first.output
        assert proxy.failed_creates == 1 and "found batch_" in first.stderr
        again = runner.invoke(app, ["submit", str(source)])
        assert again.exit_code == 0, again.output
    job, parts, _ = only_job()
    assert len(batches_of(shared_server.base_url, job.id)) == len(parts)  # one batch a part, none twice


def test_a_provider_that_refuses_metadata_gets_its_batches_created_without_it(shared_server, in_tmp):
    """Google's OpenAI layers answer fields they do not know with 400; the job's tags made every create
    fail there. A 400 naming `metadata` made no batch: the create goes again without it, once."""
    with FaultProxy(shared_server.base_url, refuse_metadata=True) as proxy:
        use_profile(proxy.base_url)
        source = write_requests(in_tmp / "chat.jsonl", 10)
        first = runner.invoke(app, ["submit", str(source)])
        assert first.exit_code == 0, first.output
        assert "refuses batch metadata (HTTP 400" in first.stderr and "creating the batch without it" in first.stderr
        assert proxy.failed_creates == 1  # one create reached the server
    job, parts, _ = only_job()
    assert [p.batch_id is not None for p in parts] == [True]


def test_an_untagged_create_from_a_file_id_answered_500_is_adopted_not_sent_again(shared_server, in_tmp):
    """`submit --input-file-id` through a provider that refuses metadata: the create goes untagged, and
    one answered 500 after the batch was made was taken for none ("lists no batch tagged for it"), so
    the same command again made a second batch from the file. The untagged batch made since is adopted."""
    source = write_requests(in_tmp / "chat.jsonl", 3)
    answer = httpx.post(shared_server.base_url + "/files", data={"purpose": "batch"},
                        files={"file": ("chat.jsonl", source.read_bytes())})  # fmt: skip
    file_id = answer.json()["id"]
    command = ["submit", "--input-file-id", file_id, "--endpoint", "/v1/chat/completions"]
    with FaultProxy(shared_server.base_url, refuse_metadata=True, fail_untagged=True) as proxy:
        use_profile(proxy.base_url)
        first = runner.invoke(app, command)
        assert proxy.failed_creates == 1, first.output
        again = runner.invoke(app, command)
        assert again.exit_code == 0, again.output
    data = httpx.get(shared_server.base_url + "/batches", params={"limit": 100}).json()["data"]
    made = [b for b in data if b["input_file_id"] == file_id]
    assert len(made) == 1  # paid once
    assert first.exit_code == 0 and "adopting it" in first.stderr, first.output
    assert again.stdout.splitlines()[0] == first.stdout.splitlines()[0] == made[0]["id"]


def test_an_untagged_create_cut_off_never_adopts_an_earlier_jobs_batch_of_the_file(shared_server, in_tmp):
    """`submit --input-file-id F --new` through a provider that refuses metadata: reconciling its cut-off
    untagged create must not adopt the untagged batch an earlier job made from F (the journal has it)."""
    import time

    source = write_requests(in_tmp / "chat.jsonl", 3)
    answer = httpx.post(shared_server.base_url + "/files", data={"purpose": "batch"},
                        files={"file": ("chat.jsonl", source.read_bytes())})  # fmt: skip
    file_id = answer.json()["id"]
    command = ["submit", "--input-file-id", file_id, "--endpoint", "/v1/chat/completions"]
    with FaultProxy(shared_server.base_url, refuse_metadata=True) as proxy:
        use_profile(proxy.base_url)
        first = runner.invoke(app, command)
        assert first.exit_code == 0, first.output
        earlier = first.stdout.splitlines()[0]
        time.sleep(1.1)  # created_at is in seconds: the earlier batch is the older one
        proxy.fail_untagged, proxy.failed_creates = True, 0  # the next untagged create: made, then a 500
        second = runner.invoke(app, [*command, "--new"])
        assert proxy.failed_creates == 1
        assert second.exit_code == 0, second.output
    data = httpx.get(shared_server.base_url + "/batches", params={"limit": 100}).json()["data"]
    made = [b["id"] for b in data if b["input_file_id"] == file_id]
    assert len(made) == 2
    assert second.stdout.splitlines()[0] == next(b for b in made if b != earlier)  # its own, not job 1's


def test_without_a_batch_list_the_error_says_what_cannot_be_known(shared_server, in_tmp):
    with FaultProxy(shared_server.base_url, list_status=404) as proxy:
        use_profile(proxy.base_url)
        source = write_requests(in_tmp / "chat.jsonl", 10)
        first = runner.invoke(app, ["submit", str(source)])
        assert first.exit_code == 1
        text = " ".join(first.stderr.split())
        assert "cannot list batches (HTTP 404)" in text and "cannot know whether that batch exists" in text
        assert "--new" in text and "batchctl jobs forget job_" in text
        again = runner.invoke(app, ["submit", str(source)])  # still unknown: still refused, never a second create
        assert again.exit_code == 1 and "cannot know" in " ".join(again.stderr.split())
    job, parts, _ = only_job()
    assert len(batches_of(shared_server.base_url, job.id)) == 1 and parts[0].step == "creating"


def test_ten_concurrent_submits_keep_every_record(shared_server, in_tmp):
    use_profile(shared_server.base_url, max_requests=10)
    sources = [write_requests(in_tmp / f"in-{n}.jsonl", 11 + n) for n in range(7)]
    sources += [sources[0]] * 3  # the same submission three more times: one job, one batch per part
    procs = [subprocess.Popen([sys.executable, "-m", "batchctl", "submit", str(s)], cwd=in_tmp, env=_child_env(None),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in sources]  # fmt: skip
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    assert len({out.strip() for _, out, _ in results[:1] + results[7:]}) == 1
    with Journal.open() as journal:
        jobs = journal.jobs()
        assert len(jobs) == 7
        for job in jobs:
            parts = journal.parts(job.id)
            assert len(parts) == 2 and all(p.batch_id for p in parts)
            assert len(journal.batches(job_id=job.id)) == 2
            assert len(batches_of(shared_server.base_url, job.id)) == 2

"""`batchctl serve` against hostile input and lost state: a lone surrogate (JSON's `\\ud800` escape without
its pair) in a create body or a custom_id, and a running batch's input file deleted through the API or by hand."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.server.store import Store

pytestmark = pytest.mark.e2e

LINE = {"method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
JSON = {"content-type": "application/json"}
# JSON text as a client sends it: the escape of a lone surrogate is valid JSON, and Python reads it as '\ud800'.
LONE = "\\ud800"


def jsonl(n: int) -> bytes:
    return b"".join(json.dumps({"custom_id": f"r{i}", **LINE}).encode() + b"\n" for i in range(n))


def upload(server, content: bytes) -> str:
    answer = httpx.post(server.base_url + "/files", files={"file": ("in.jsonl", content)}, data={"purpose": "batch"})
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def create(server, file_id: str) -> dict:
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    answer = httpx.post(server.base_url + "/batches", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for(server, batch_id: str, done, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        batch = httpx.get(f"{server.base_url}/batches/{batch_id}").json()
        if done(batch) or time.monotonic() > deadline:
            return batch
        time.sleep(0.05)


def ended(batch: dict) -> bool:
    return batch["status"] in ("completed", "failed", "expired", "cancelled")


def lines_of(server, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    answer = httpx.get(f"{server.base_url}/files/{file_id}/content")
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.content.splitlines()]


# -- a lone surrogate in a create body --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "param"),
    [
        (f'"metadata": {{"k": "{LONE}"}}', "metadata"),
        (f'"metadata": {{"{LONE}": "v"}}', "metadata"),
        (f'"metadata": {{"k": "a{LONE}b\\udfff"}}', "metadata"),
        (f'"{LONE}": 1', LONE),  # an unknown parameter's name: its param is its escape
        ('"output_expires_after": {"anchor": "created_\\udc80", "seconds": 3600}', "output_expires_after"),
    ],
)
def test_a_lone_surrogate_in_a_create_body_is_a_400_and_nothing_is_stored(local_server, field, param):
    file_id = upload(local_server, jsonl(2))
    body = f'{{"input_file_id": "{file_id}", "endpoint": "/v1/chat/completions", "completion_window": "24h", {field}}}'
    answer = httpx.post(local_server.base_url + "/batches", content=body, headers=JSON)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_value"
    assert error["param"] == param
    assert "lone surrogate" in error["message"]
    assert answer.headers["x-should-retry"] == "false"
    listed = httpx.get(local_server.base_url + "/batches")
    assert listed.status_code == 200 and listed.json()["data"] == []  # nothing stored


@pytest.mark.parametrize("name", ["input_file_id", "endpoint", "completion_window"])
def test_a_lone_surrogate_in_a_required_field_is_a_400_naming_it(local_server, name):
    body = {"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    text = json.dumps(body).replace(f'"{name}": "', f'"{name}": "{LONE}', 1)
    answer = httpx.post(local_server.base_url + "/batches", content=text, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == name


def test_a_surrogate_pair_and_other_non_ascii_text_are_accepted(local_server):
    file_id = upload(local_server, jsonl(1))
    body = (f'{{"input_file_id": "{file_id}", "endpoint": "/v1/chat/completions", "completion_window": "24h",'
            ' "metadata": {"emoji": "\\ud83d\\ude00", "plain": "caf\\u00e9 \u65e5\u672c"}}')  # fmt: skip
    answer = httpx.post(local_server.base_url + "/batches", content=body.encode(), headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["metadata"] == {"emoji": "\U0001f600", "plain": "café 日本"}


def test_a_lone_surrogate_an_older_release_stored_does_not_break_the_list(start_server, tmp_path):
    """Such a release stored the batch (and answered 500): the list, the batch and a restart must all still work."""
    data_dir = tmp_path / "data"
    store = Store(data_dir)
    row = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-gone", completion_window="24h",
                             window_seconds=86400.0, metadata={"k": "\ud800", "\udfff": "v"})  # fmt: skip
    store.transition(row["id"], "failed")
    store.close()
    server = start_server(data_dir=data_dir)
    listed = httpx.get(server.base_url + "/batches")
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"][0]["metadata"] == {"k": "\ufffd", "\ufffd": "v"}  # text a client can print
    one = httpx.get(f"{server.base_url}/batches/{row['id']}")
    assert one.status_code == 200 and one.json()["metadata"]["k"] == "\ufffd"
    shown = CliRunner().invoke(app, ["--base-url", server.base_url, "list", "--json"])
    assert shown.exit_code == 0, shown.output  # batchctl list failed on an escape's lone surrogate
    assert json.loads(shown.stdout)[0]["metadata"] == {"k": "\ufffd", "\ufffd": "v"}


# -- a lone surrogate in a custom_id ----------------------------------------------------------------


def test_a_lone_surrogate_custom_id_is_refused_by_validation_with_its_line(local_server, tmp_path):
    from batchctl.providers import get_provider
    from batchctl.validation import validate_file

    content = (jsonl(1) + json.dumps({"custom_id": "x", **LINE}).replace('"x"', f'"{LONE}"').encode() + b"\n")
    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    report = validate_file(path, spec=get_provider("local"))
    assert [(p.line, p.param) for p in report.problems] == [(2, "custom_id")]
    assert "lone surrogate" in report.problems[0].message

    model = json.dumps({"custom_id": "m", **LINE}).replace('"echo"', f'"e{LONE}"').encode() + b"\n"
    path.write_bytes(content + model)  # a model holding one: the report could not even be printed
    report = validate_file(path, spec=get_provider("local"))
    assert [(p.line, p.param) for p in report.problems] == [(2, "custom_id"), (3, "body.model")]
    assert report.model == "echo"

    batch = wait_for(local_server, create(local_server, upload(local_server, content))["id"], ended)
    assert batch["status"] == "failed", batch
    assert [(e["line"], e["param"], e["code"]) for e in batch["errors"]["data"]] == [(2, "custom_id", "invalid_value")]


def test_a_result_line_that_cannot_be_written_is_that_lines_error_not_the_batchs_failure(start_server, tmp_path):
    """A batch an older release validated (it let such a custom_id through) and had running when it stopped:
    the lines around the bad one get their results, the bad one an error line."""
    data_dir = tmp_path / "data"
    store = Store(data_dir)
    path = store.files_dir / "file-in"
    bad = json.dumps({"custom_id": "x", **LINE}).replace('"x"', f'"{LONE}"')
    path.write_bytes(jsonl(1) + bad.encode() + b"\n" + jsonl(2).replace(b'"r0"', b'"r9"'))
    store.add_file("file-in", path=path, filename="in.jsonl", purpose="batch")
    row = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-in", completion_window="24h",
                             window_seconds=86400.0, metadata=None)  # fmt: skip
    store.transition(row["id"], "in_progress", total=4, model="echo")
    store.close()
    server = start_server(data_dir=data_dir)
    batch = wait_for(server, row["id"], ended)
    assert batch["status"] == "completed", batch
    assert batch["request_counts"] == {"total": 4, "completed": 3, "failed": 1}
    assert [line["custom_id"] for line in lines_of(server, batch["output_file_id"])] == ["r0", "r9", "r1"]
    errors = lines_of(server, batch["error_file_id"])
    assert [line["custom_id"] for line in errors] == ["\ufffd"]  # not an escape: a client could not print that
    assert errors[0]["error"]["code"] == "internal_error" and "could not be written" in errors[0]["error"]["message"]


# -- a running batch's input file deleted -------------------------------------------------------------


def test_deleting_a_running_batchs_input_file_keeps_its_content_until_the_batch_ends(start_server):
    """Gone from the API at once; still read by the batch, also after a kill -9 and a restart; removed once
    the batch has ended. No request is lost."""
    server = start_server(latency=0.3)
    file_id = upload(server, jsonl(60))
    batch = create(server, file_id)
    wait_for(server, batch["id"], lambda b: b["request_counts"]["completed"] > 0)
    deleted = httpx.delete(f"{server.base_url}/files/{file_id}")
    assert deleted.status_code == 200 and deleted.json() == {"id": file_id, "object": "file", "deleted": True}
    assert httpx.get(f"{server.base_url}/files/{file_id}").status_code == 404
    assert httpx.get(f"{server.base_url}/files/{file_id}/content").status_code == 404
    assert file_id not in [f["id"] for f in httpx.get(f"{server.base_url}/files").json()["data"]]
    again = httpx.post(server.base_url + "/batches", json={"input_file_id": file_id, "endpoint": "/v1/chat/completions",
                                                          "completion_window": "24h"})  # fmt: skip
    assert again.status_code == 404
    content = server.data_dir / "files" / file_id
    assert content.is_file()  # kept for the batch

    server.kill()  # mid-batch
    server.start()
    batch = wait_for(server, batch["id"], ended)
    assert batch["status"] == "completed", batch
    assert batch["request_counts"] == {"total": 60, "completed": 60, "failed": 0}
    assert len(lines_of(server, batch["output_file_id"])) == 60
    assert not content.exists()  # the batch has ended: the deleted file's content goes


def test_a_batch_whose_input_content_is_gone_fails_and_counts_its_unrun_requests(start_server):
    """Removed by hand (nothing the API does): the batch must not end `completed` with requests silently missing."""
    server = start_server(latency=0.3)
    file_id = upload(server, jsonl(60))
    batch = create(server, file_id)
    wait_for(server, batch["id"], lambda b: b["request_counts"]["completed"] > 0)
    server.kill()
    (server.data_dir / "files" / file_id).unlink()
    server.start()
    batch = wait_for(server, batch["id"], ended)
    assert batch["status"] == "failed", batch
    counts = batch["request_counts"]
    assert counts["total"] == 60 and 0 < counts["completed"] < 60 and counts["completed"] + counts["failed"] == 60
    [error] = batch["errors"]["data"]
    assert error["code"] == "input_file_missing" and error["param"] == "input_file_id"
    assert f"{counts['failed']} of the batch's 60 requests were not run" in error["message"]
    assert len(lines_of(server, batch["output_file_id"])) == counts["completed"]  # what ran is kept


def test_a_deleted_files_content_left_by_a_crash_goes_at_start_but_an_unfinished_batchs_input_stays(tmp_path):
    store = Store(tmp_path)
    (store.files_dir / "file-orphan").write_text("its batch ended, then a crash before its content went\n")
    with store.db:
        store.db.execute("INSERT INTO file_tombstones (id, seq) VALUES ('file-orphan', 99)")
    (store.files_dir / "file-unknown").write_text("no row ever named it: not ours to remove\n")
    path = store.files_dir / "file-in"
    path.write_bytes(jsonl(2))
    store.add_file("file-in", path=path, filename="in.jsonl", purpose="batch")
    row = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-in", completion_window="24h",
                             window_seconds=86400.0, metadata=None)  # fmt: skip
    store.delete_file("file-in")
    store.close()
    store = Store(tmp_path)
    assert sorted(p.name for p in store.files_dir.iterdir()) == ["file-in", "file-unknown"]
    assert store.get_file("file-in") is None and store.input_path("file-in") == path
    store.transition(row["id"], "completed")
    store.release_input(row["id"])
    assert not path.exists()
    store.close()

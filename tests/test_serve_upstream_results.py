"""How `serve --upstream` writes results: the upstream's bytes spliced into the line, JSON with and without
msgspec, and group commits that count a row recorded twice only once."""

from __future__ import annotations

import json

import pytest

from batchctl import jsonfast
from batchctl.server.executors import UpstreamExecutor
from batchctl.server.outcome import Outcome
from batchctl.server.runner import result_line
from batchctl.server.store import ResultRow, Store


def test_an_upstream_answer_is_spliced_into_the_result_line_as_it_came():
    raw = '{\n  "object": "chat.completion",\n  "choices": [{"message": {"content": "line one\\nzwei \u00fc"}}],\r\n "x": 1.50}'
    outcome = UpstreamExecutor._outcome(200, {"x-request-id": "req_up"}, raw.encode(), "OK")
    assert outcome.ok and outcome.body["x"] == 1.5 and "\n" not in outcome.body_text
    text = result_line('cid "quoted"', outcome)
    assert "\n" not in text and '"x": 1.50}' in text  # the upstream's own bytes, not re-written
    line = json.loads(text)
    assert line["custom_id"] == 'cid "quoted"' and line["error"] is None and line["id"].startswith("batch_req_")
    assert line["response"] == {"status_code": 200, "request_id": "req_up", "body": outcome.body}
    assert line["response"]["body"]["choices"][0]["message"]["content"] == "line one\nzwei \u00fc"


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbf{\"a\": 1}", '{"a": "\u00e9"}'.encode("utf-16")])
def test_answers_that_cannot_be_spliced_are_written_anew(raw):
    outcome = UpstreamExecutor._outcome(200, {}, raw, "OK")
    assert outcome.body == {"a": 1} or outcome.body == {"a": "\u00e9"}
    assert outcome.body_text is None
    assert json.loads(result_line("c", outcome))["response"]["body"] == outcome.body


def test_failures_and_non_json_answers_are_lines_too():
    line = json.loads(result_line("c", Outcome(error_code="upstream_timeout", error_message="slow")))
    assert line["response"] is None and line["error"] == {"code": "upstream_timeout", "message": "slow"}
    line = json.loads(result_line("c", UpstreamExecutor._outcome(200, {}, b"<html>", "OK")))
    assert line["response"]["status_code"] == 502
    assert line["response"]["body"]["error"]["code"] == "bad_upstream_response"


@pytest.mark.parametrize("fast", [True, False])
def test_jsonfast_with_and_without_msgspec(fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(jsonfast, "_encode", None)
        monkeypatch.setattr(jsonfast, "parse", json.loads)
    value = {"a": [1, 2.5, None, True], "t": "\u00fc\n", "big": 2**70}  # 2**70: past 64-bit integers
    assert json.loads(jsonfast.dumps(value)) == value
    assert json.loads(jsonfast.dumps_bytes(value)) == value
    assert jsonfast.loads(b'{"x": NaN}')["x"] != jsonfast.loads(b'{"x": NaN}')["x"]  # NaN, as json reads it
    with pytest.raises(ValueError):
        jsonfast.loads(b"{nope")


def test_a_group_with_a_row_recorded_before_counts_it_once(tmp_path):
    store = Store(tmp_path)
    batch = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-x", completion_window="24h",
                               window_seconds=86400, metadata=None)["id"]  # fmt: skip
    store.record_group(batch, [1, 2, 3], [])
    assert store.get_batch(batch)["started_upto"] == 3
    store.record_group(batch, [], [ResultRow(1, "a", True, '{"custom_id": "a"}', 3, 4)])
    rows = [ResultRow(1, "a", True, {"custom_id": "a"}, 3, 4), ResultRow(2, "b", False, {"custom_id": "b"}),
            ResultRow(3, "c", True, {"custom_id": "c"}, 1, 1)]  # fmt: skip
    store.record_group(batch, [], rows)
    counts = store.get_batch(batch)
    assert (counts["completed"], counts["failed"], counts["input_tokens"], counts["output_tokens"]) == (2, 1, 4, 5)
    assert counts["started_upto"] == 3  # results leave the mark alone: their rows say those lines are done
    assert store.done_lines(batch) == {1, 2, 3}
    store.close()


def test_a_restart_counts_the_lines_sent_without_a_result_once(tmp_path):
    """After a crash the lines up to `started_upto` without a result row were in flight, and so are the rows an
    older release marked one by one (`inflight`): counted into the metadata once, and the marks cleared."""
    from batchctl.server.runner import _unfinished_upto
    from batchctl.server.store import POSSIBLY_DUPLICATED

    path = tmp_path / "input.jsonl"
    lines = [json.dumps({"custom_id": f"r{n}", "body": {}}) for n in range(1, 11)]
    lines[3] = ""  # line 4 is blank: no request, never counted
    path.write_text("\n".join(lines) + "\n")
    store = Store(tmp_path / "state")
    batch = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-x", completion_window="24h",
                               window_seconds=86400, metadata={"k": "v"})["id"]  # fmt: skip
    store.record_group(batch, [1, 2, 3, 5], [])
    store.record_group(batch, [6, 7], [ResultRow(n, f"r{n}", True, "{}") for n in (1, 3, 5)])
    with store.db:  # as a release before started_upto left a crash: one row a request in flight
        store.db.execute("INSERT INTO inflight (batch_id, line_no, started) VALUES (?, 9, 0)", (batch,))
    store.close()

    store = Store(tmp_path / "state")  # the restart
    file, done = {"path": str(path)}, store.done_lines(batch)
    assert store.take_interrupted(batch, lambda upto: _unfinished_upto(file, done, upto)) == 4  # 2, 6, 7 and 9
    after = store.get_batch(batch)
    assert json.loads(after["metadata"]) == {"k": "v", POSSIBLY_DUPLICATED: "4"} and after["started_upto"] == -1
    changes = store.db.total_changes
    assert store.take_interrupted(batch, lambda upto: _unfinished_upto(file, done, upto)) == 0  # counted once
    assert store.db.total_changes == changes  # and nothing marked, nothing written
    store.record_group(batch, [2], [])  # sent again, then another crash: it counts again, the total grows
    assert store.take_interrupted(batch, lambda upto: _unfinished_upto(file, done, upto)) == 1
    assert json.loads(store.get_batch(batch)["metadata"])[POSSIBLY_DUPLICATED] == "5"
    assert _unfinished_upto(None, done, 10) == 0  # the input file is gone: nothing to send again either
    store.close()


def test_usage_details_are_added_as_results_come_and_recounted_on_resume(tmp_path):
    """Cached and reasoning tokens are summed per group (no pass over every result at the end); a resumed batch
    is recounted from its rows, which an older release may have recorded without adding them."""
    store = Store(tmp_path)
    batch = store.create_batch(endpoint="/v1/chat/completions", input_file_id="file-x", completion_window="24h",
                               window_seconds=86400, metadata=None)["id"]  # fmt: skip
    chat = Outcome(200, {"usage": {"prompt_tokens": 9, "completion_tokens": 3,
                                   "prompt_tokens_details": {"cached_tokens": 4},
                                   "completion_tokens_details": {"reasoning_tokens": 2}}})  # fmt: skip
    responses = Outcome(200, {"usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 1}}})
    failed = Outcome(500, {"usage": {"prompt_tokens_details": {"cached_tokens": 100}}})
    assert (chat.usage_details(), responses.usage_details(), failed.usage_details()) == ((4, 2), (1, 0), (0, 0))
    rows = [ResultRow(n, f"r{n}", o.ok, result_line(f"r{n}", o), *o.usage(), *o.usage_details())
            for n, o in enumerate((chat, responses, failed), 1)]  # fmt: skip
    store.record_group(batch, [], rows)
    details = "SELECT cached_tokens, reasoning_tokens FROM batches WHERE id = ?"
    assert tuple(store.db.execute(details, (batch,)).fetchone()) == (5, 2)
    with store.db:
        store.db.execute("UPDATE batches SET cached_tokens = 0, reasoning_tokens = 0")  # as an older release left it
    store.recount_usage_details(batch)
    assert tuple(store.db.execute(details, (batch,)).fetchone()) == (5, 2)
    store.close()

"""One pass over files: the fast JSON parser decides as the stdlib does, custom_ids in fixed-size slots,
result lines counted once as they stream in, and the bill of a download equal to reading the files back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.cost.bill import Bill, _feed, bill_for_files
from batchctl.cost.prices import price_table
from batchctl.jsonfast import loads
from batchctl.providers import get_provider
from batchctl.result_tally import FollowedDownload, ResultTally
from batchctl.results import iter_result_lines
from batchctl.validation import DUPLICATE_CUSTOM_ID, validate_file
from batchctl.validation.ids import SeenIds
from test_cli_download import finished_batch, flaky  # noqa: F401 - flaky: the failing server fixture

runner = CliRunner()


# -- jsonfast ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 123456789012345678901234567890}',  # past 64 bits: msgspec refuses, the stdlib keeps the int
        b'{"a": "\\ud800"}',  # a lone surrogate escape
        b'{"a": 1e400}',  # infinity
        b'{"a": 1, "a": 2}',  # the last of duplicate keys wins
        b' {"a": [1.5, -0, true, null, "\\u00e9"]} \r\n',
        "{\"a\": \"\u5199\u8bd7\"}".encode(),
    ],
)
def test_jsonfast_loads_gives_what_json_loads_gives(data):
    assert repr(loads(data)) == repr(json.loads(data))


@pytest.mark.parametrize("data", [b"{not json", b'{"a": "\xff"}', b"", b"[" * 5000 + b"]" * 5000])
def test_jsonfast_loads_refuses_what_json_loads_refuses(data):
    with pytest.raises((ValueError, RecursionError)) as stdlib:
        json.loads(data)
    with pytest.raises(stdlib.type):
        loads(data)


def test_jsonfast_loads_reads_nan_as_the_stdlib_does():
    # msgspec refuses NaN; json.loads reads it (validation refuses it with its own decoder)
    assert math.isnan(loads(b'{"a": NaN}')["a"])


# -- custom_ids in fixed-size slots ---------------------------------------------------------------------


def test_seen_ids_remembers_each_id_past_the_set_and_many_growths():
    seen = SeenIds(slots=4, set_ids=100)
    assert not any(seen.seen(f"request-{n}") for n in range(20_000))
    assert len(seen) == 20_000
    assert seen.seen("request-0") and seen.seen("request-19999")
    assert not seen.seen("request-20000")


def test_a_duplicate_far_down_a_file_names_the_id_and_both_lines(tmp_path):
    lines = [
        {"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
        for n in range(1, 30_001)
    ]  # fmt: skip
    lines += [dict(lines[4_999]), dict(lines[6]), dict(lines[4_999])]  # lines 30,001-3 repeat 5,000 and 7
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report = validate_file(path, spec=get_provider("local"))
    assert [(p.code, p.message) for p in report.problems] == [
        (DUPLICATE_CUSTOM_ID, 'line 30001: custom_id "r5000" already used on line 5000'),
        (DUPLICATE_CUSTOM_ID, 'line 30002: custom_id "r7" already used on line 7'),
        (DUPLICATE_CUSTOM_ID, 'line 30003: custom_id "r5000" already used on line 5000'),
    ]
    capped = validate_file(path, spec=get_provider("local"), max_problems=1)
    assert capped.problem_count == 3 and [p.line for p in capped.problems] == [30001]


# -- result lines counted once ------------------------------------------------------------------------


def mixed_results() -> bytes:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
             "prompt_tokens_details": {"cached_tokens": 2}, "completion_tokens_details": {"reasoning_tokens": True}}  # fmt: skip
    lines = [
        {"custom_id": "a", "response": {"status_code": 200, "body": {"model": "gpt-4o-mini", "usage": usage}}, "error": None},
        {"custom_id": "b", "response": {"status_code": 200, "body": {"model": "qwen-plus", "usage": {"input_tokens": 7, "output_tokens": -3}}}},
        {"custom_id": "c", "response": {"status_code": 429, "body": {"error": {"code": "rate_limit_exceeded", "message": "slow"}}}},
        {"custom_id": "d", "response": None, "error": {"code": "server_error", "message": "boom"}},
        {"custom_id": "e", "response": {"status_code": 200, "body": "not an object"}},
        {"custom_id": "f", "response": {"status_code": 200, "body": {"model": 5, "usage": {"prompt_tokens": 3}}}, "error": ""},
        {"custom_id": "g", "response": {"status_code": 500, "body": {"usage": {"prompt_tokens": 4}}}},
        {"custom_id": 7, "response": {"status_code": 200}},
        [1, 2],
    ]  # fmt: skip
    return b"\n\n".join(json.dumps(line).encode() for line in lines) + b"\r\n{cut line\n   \n"


def test_a_tally_counts_what_reading_the_file_back_counts(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(mixed_results())
    tally = ResultTally()
    for line in iter_result_lines([path]):
        tally.add(line)
    bill = Bill()
    _feed(iter_result_lines([path]), bill)
    assert tally.usage.to_dict() == bill.usage.to_dict()
    assert tally.failures.to_dict() == bill.failures.to_dict()
    assert (tally.lines, tally.failed) == (10, 5)  # c, d, g, the array and the cut line failed


def test_a_followed_download_counts_lines_as_they_land_and_starts_over_on_a_retry():
    data = mixed_results()
    seen: list[tuple[bytes, int]] = []
    restarts: list[int] = []
    followed = FollowedDownload(lambda line, start: seen.append((line, start)), lambda: restarts.append(1))
    progress = followed.progress(None)

    def attempt(chunks: list[bytes]) -> None:  # as Files.download_to calls them
        progress(0, len(data))
        received = 0
        for chunk in chunks:
            followed.feed(chunk)
            received += len(chunk)
            progress(received, len(data))

    first = data.index(b"\n") + 1
    attempt([data[: first + 5], data[first + 5 : first + 9]])  # a first attempt, cut short after one line
    assert len(seen) == 1 and not restarts
    seen.clear()
    attempt([data[i : i + 37] for i in range(0, len(data), 37)])  # the retry, in small pieces
    assert restarts == [1]
    followed.finish()
    assert [line for line, _ in seen] == [line for line in data.split(b"\n") if line.strip()]
    assert all(data[start : start + len(line)] == line for line, start in seen)


# -- end to end: the bill of a download is the bill of its files read back ---------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("merge", [False, True])
def test_the_bill_of_a_download_is_the_bill_of_its_files_read_back(flaky, tmp_path, in_tmp, merge):
    batch_id = finished_batch(flaky, tmp_path, 40)
    args = ["--json", "download", batch_id, "-o", "res.jsonl"]
    if merge:
        args += ["--merge", str(next(tmp_path.glob("input-40-*.jsonl")))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["bill"]["failures"]
    files = [in_tmp / "res.jsonl"] + ([] if merge else [in_tmp / "res.errors.jsonl"])
    read_back = bill_for_files(files, prices=price_table(None)).failures.to_dict()
    assert shown["failed"] > 0
    for key in ("lines", "succeeded", "failed", "retryable", "by_code", "top_messages"):
        assert shown[key] == read_back[key], key


def test_an_id_that_only_shares_a_hash_with_an_earlier_one_is_no_duplicate(tmp_path, monkeypatch):
    import batchctl.validation.checks as checks

    class Colliding(SeenIds):  # "r9" hashes like an id seen before it
        def seen(self, custom_id: str) -> bool:
            return super().seen(custom_id) or custom_id == "r9"

    monkeypatch.setattr(checks, "SeenIds", Colliding)
    lines = [{"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}} for n in range(1, 13)]  # fmt: skip
    lines.append(dict(lines[8]))  # line 13 really repeats r9
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report = validate_file(path, spec=get_provider("local"))
    assert report.problem_count == 1
    assert [p.message for p in report.problems] == ['line 13: custom_id "r9" already used on line 9']


@pytest.mark.parametrize("size", [1, 5, 37, 4096, 1 << 20])
@pytest.mark.parametrize("count_usage", [False, True])
@pytest.mark.parametrize("blank_lines", [False, True])
def test_lines_taken_a_block_at_a_time_count_what_one_at_a_time_counts(size, count_usage, blank_lines):
    """`FollowedDownload(block_sink=...)` hands each chunk's lines over as one block and `add_block`
    counts them: the same figures as `add` line by line, whatever the chunks cut (CRLF, failures; blank
    lines, which make a block be read line by line)."""
    results = [line for line in mixed_results().split(b"\n") if line.strip() and ResultTally().add(line)[0] is not None]
    if blank_lines:
        data = b"\n\n".join(results[:3]) + b"\r\n" + b"\n   \n".join(results[3:]) + b"\n\n" + results[0]  # no final newline
    else:
        data = b"\n".join(results[:3]) + b"\r\n" + b"\n".join(results[3:]) + b"\n" + results[0]
    one_by_one = ResultTally()
    for line in data.split(b"\n"):
        if line.strip():
            assert one_by_one.add(line, count_usage=count_usage)[0] is not None
    chunked = ResultTally()
    refused: list[bytes | None] = []
    followed = FollowedDownload(None, lambda: None,
                                block_sink=lambda block: refused.append(chunked.add_block(block, count_usage=count_usage)))  # fmt: skip
    progress = followed.progress(None)
    progress(0, len(data))
    for i in range(0, len(data), size):
        followed.feed(data[i : i + size])
        progress(min(i + size, len(data)), len(data))
    followed.finish()
    assert set(refused) == {None}
    assert (chunked.lines, chunked.failed) == (one_by_one.lines, one_by_one.failed) == (len(results) + 1, 3)
    assert chunked.usage.to_dict() == one_by_one.usage.to_dict()
    assert chunked.failures.to_dict() == one_by_one.failures.to_dict()


@pytest.mark.parametrize("merge", [False, True])
def test_a_download_cut_mid_line_and_restarted_counts_what_its_file_read_back_counts(tmp_path, merge):
    """`_download` counts the chunks `Files.download_to` hands over: a first attempt cut mid-line by a
    dropped connection counts for nothing, the retry's lines split across chunks count once."""
    import httpx

    from batchctl.api import BatchClient
    from batchctl.merging import ResultIndex
    from batchctl.result_tally import tally_file
    from batchctl.results import _download

    results = [line for line in mixed_results().split(b"\n") if line.strip() and ResultTally().add(line)[0] is not None]
    data = b"\n".join(results * 3) + b"\r\n"
    cut = data.index(b"\n", 100) + 20
    answers = [([data[:50], data[50:cut]], httpx.RemoteProtocolError("peer closed connection")),
               ([data[i : i + 37] for i in range(0, len(data), 37)], None)]  # fmt: skip

    def content():
        chunks, error = answers.pop(0)
        yield from chunks
        if error is not None:
            raise error

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=content()))
    client = BatchClient("https://api.example.test/v1", "sk-test", transport=transport)
    client._sleep = lambda seconds: None
    folder = tmp_path / "saved"  # beside it only what the download left: no .part (the journal is elsewhere)
    folder.mkdir()
    path = folder / "out.jsonl"
    index = ResultIndex([path], read=False) if merge else None
    tally = ResultTally()
    saved = _download(client, "output", "file-out", path, tally=tally, count_usage=True, index=index)
    assert not answers and path.read_bytes() == data and sorted(p.name for p in folder.iterdir()) == ["out.jsonl"]
    read_back = ResultTally()
    assert (saved.lines, saved.failed) == tally_file(path, read_back, count_usage=True) == (len(results) * 3, 9)
    assert tally.usage.to_dict() == read_back.usage.to_dict()
    assert tally.failures.to_dict() == read_back.failures.to_dict()
    if merge:
        assert index.where == ResultIndex([path]).where


def test_a_chunk_stops_at_its_first_line_that_is_no_result():
    tally = ResultTally()
    lines = [b'{"custom_id": "a", "response": {"status_code": 200}}', memoryview(b"<html>"), b'{"custom_id": "b"}']
    assert tally.add_lines(lines) == b"<html>"
    assert (tally.lines, tally.failed) == (2, 1)
    block = ResultTally()
    assert block.add_block(b"\n".join(map(bytes, lines))) == b"<html>"
    assert (block.lines, block.failed) == (2, 1)


S = b'{"custom_id": "a", "response": {"status_code": 200}}'
F = b'{"custom_id": "f", "response": {"status_code": 500, "body": {"error": {"message": "boom"}}}}'


@pytest.mark.parametrize(
    "lines",
    [
        [S, b'{"custom_id": "b"},{"custom_id": "c"}', S],  # two objects on a line
        [S + b"],[" + S],  # a line that closes its array and opens another
        [S + b"],[" + S, F],
        [S + b"],[" + F, S],
        [b'{"custom_id": "a", "x": "abc', b'", "response": {"status_code": 200}}'],  # a string run on
        [S, b"", F, b"   ", S],  # blank lines: read line by line
    ],
)
def test_a_block_counts_what_line_by_line_counts_even_for_lines_that_are_no_result(lines):
    """`add_block` reads a block as one array only when element i is line i; otherwise line by line:
    the same counts and the same refused line as `add`, line after line."""
    from batchctl.result_tally import _outlines

    one_by_one, refused = ResultTally(), None
    for line in lines:
        if line.strip() and one_by_one.add(line)[0] is None:
            refused = line
            break
    block = ResultTally()
    assert block.add_block(b"\n".join(lines)) == refused
    assert (block.lines, block.failed) == (one_by_one.lines, one_by_one.failed)
    assert block.failures.to_dict() == one_by_one.failures.to_dict()
    assert _outlines(b"\n".join([S, F, S]), False) is not None  # the one-array read is taken for plain lines


def _odd_value(rng):
    """A value where a token count goes: mostly a count, else what providers send by mistake."""
    return rng.choice([0, 1, 7, 12345, 2**40, -3, True, False, None, 2.0, 3.5, "12", [], {}, 2**70])


def _usage(rng) -> object:
    """A usage object of either shape, with fields missing, odd values and odd details."""
    if rng.random() < 0.05:
        return rng.choice([None, 5, "usage", [1]])
    usage: dict = {}
    for name in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "total_tokens"):
        if rng.random() < 0.6:
            usage[name] = rng.randint(0, 500) if rng.random() < 0.8 else _odd_value(rng)
    for name, key in (("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens"),
                      ("completion_tokens_details", "reasoning_tokens"), ("output_tokens_details", "reasoning_tokens")):  # fmt: skip
        roll = rng.random()
        if roll < 0.3:
            usage[name] = {key: rng.randint(0, 50) if rng.random() < 0.8 else _odd_value(rng), "other": 1}
        elif roll < 0.4:
            usage[name] = rng.choice([None, {}, 3, "x"])
    return usage


@pytest.mark.parametrize("seed", range(6))
def test_typed_usage_counts_what_the_usage_dicts_count(seed):
    """Success lines' usage is read typed (`result_tally._Usage`, ints >= 0); anything else sends the
    line to the dict road. Random usage of both shapes, with odd values (bools, floats, negatives,
    null, strings, huge ints, odd details), several models: the bill read back as dicts (`_feed`), line
    by line (`add`) and a block at a time (`add_block`) agree to the token, models in the same order."""
    import random

    rng = random.Random(seed)
    models = ["gpt-4o-mini", "qwen-plus", None, 5]
    lines = []
    for i in range(400):
        body: dict = {"usage": _usage(rng)}
        if rng.random() < 0.9:
            body["model"] = rng.choice(models)
        status = 200 if rng.random() < 0.9 else 500
        lines.append(json.dumps({"custom_id": f"r{i}", "response": {"status_code": status, "body": body}}).encode())
    bill = Bill()
    _feed(iter(lines), bill)
    one_by_one, chunked = ResultTally(), ResultTally()
    for line in lines:
        one_by_one.add(line)
    start = 0
    while start < len(lines):  # blocks of 1 to 40 lines
        end = start + rng.randint(1, 40)
        assert chunked.add_block(b"\n".join(lines[start:end])) is None
        start = end
    expected = bill.usage.to_dict()
    assert expected["input_tokens"] > 0 and len(expected["models"]) == 3
    assert one_by_one.usage.to_dict() == expected
    assert chunked.usage.to_dict() == expected
    assert list(chunked.usage.by_model) == list(bill.usage.by_model)


def test_a_line_nested_past_the_parser_is_no_result_rather_than_a_crash():
    """200,000 nested arrays: msgspec and then the stdlib give up with RecursionError; the line is
    counted as no result (the download then refuses the file, naming the line), as the bill's read does."""
    from batchctl.results import parse_result

    deep = b'{"custom_id": "x", "response": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    tally = ResultTally()
    assert tally.add(deep) == (None, True)
    assert tally.add_block(b'{"custom_id": "a", "response": {"status_code": 200}}\n' + deep) == deep
    assert parse_result(deep) is None

"""The streaming JSONL validator: every per-line and file-level check, the edges, limits and the report."""

from __future__ import annotations

import json

import pytest

from batchctl.providers import get_provider
from batchctl.validation import Problem, ValidationReport, check_limits, iter_request_lines, validate_file

OPENAI = get_provider("openai")
DASHSCOPE = get_provider("dashscope")
LOCAL = get_provider("local")


def chat(cid="req-1", model="gpt-4o-mini", content="Hello there", url="/v1/chat/completions", **extra):
    line = {
        "custom_id": cid,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": [{"role": "user", "content": content}]},
    }
    line.update(extra)
    return line


def embedding(cid="emb-1", model="text-embedding-3-small", text="some text"):
    return {"custom_id": cid, "method": "POST", "url": "/v1/embeddings", "body": {"model": model, "input": text}}


def jsonl(*lines) -> bytes:
    return b"".join((json.dumps(x).encode() if not isinstance(x, bytes) else x) + b"\n" for x in lines)


@pytest.fixture
def write(tmp_path):
    def write(data: bytes | str, name="in.jsonl"):
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return write


def run(write, data, spec=OPENAI, **kw) -> ValidationReport:
    return validate_file(write(data), spec=spec, **kw)


def codes(report):
    return [(p.line, p.code) for p in report.problems]


# --- a valid file ----------------------------------------------------------------------------------


def test_valid_chat_file(write):
    report = run(write, jsonl(chat("a"), chat("b"), chat("c")))
    assert report.ok
    assert report.problems == [] and report.problem_count == 0 and report.warnings == []
    assert (report.lines, report.requests, report.blank_lines) == (3, 3, 0)
    assert report.endpoint == "/v1/chat/completions"
    assert report.model == "gpt-4o-mini"


def test_valid_embeddings_completions_and_responses(write):
    assert run(write, jsonl(embedding("a"), embedding("b", text=["x", "y"]))).ok
    completions = {"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "hi"}}
    assert run(write, jsonl(completions)).ok
    responses = {"custom_id": "r", "method": "POST", "url": "/v1/responses", "body": {"model": "m", "input": "hi"}}
    assert run(write, jsonl(responses)).ok


def test_dashscope_test_endpoint_is_chat(write):
    report = run(write, jsonl(chat(url="/v1/chat/ds-test", model="batch-test-model")), spec=DASHSCOPE)
    assert report.ok
    bad = chat(url="/v1/chat/ds-test")
    del bad["body"]["messages"]
    assert codes(run(write, jsonl(bad), spec=DASHSCOPE)) == [(1, "missing_required_parameter")]


def test_tool_calling_assistant_turn_may_have_no_content(write):
    line = chat()
    line["body"]["messages"] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
    ]
    assert run(write, jsonl(line)).ok


def test_multimodal_content_parts_are_accepted(write):
    line = chat(
        content=[
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        ]
    )
    assert run(write, jsonl(line)).ok


# --- per-line checks -------------------------------------------------------------------------------


def test_invalid_json_names_the_line_and_keeps_going(write):
    report = run(write, jsonl(chat("a"), b'{"custom_id": "b", ', chat("c"), b"not json"))
    assert codes(report) == [(2, "invalid_json_line"), (4, "invalid_json_line")]
    assert report.problems[0].message.startswith("line 2: not valid JSON")
    assert report.requests == 4


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(write, constant):
    raw = json.dumps(chat("b")).encode().replace(b'"messages"', b'"temperature": ' + constant + b', "messages"')
    report = run(write, jsonl(chat("a"), raw))
    assert codes(report) == [(2, "invalid_json_line")]
    assert report.problems[0].message == f"line 2: not valid JSON: {constant.decode()} is not a JSON value"
    assert [n for n, _ in iter_request_lines(write(jsonl(chat("a"), raw)))] == [1]


@pytest.mark.parametrize(
    ("value", "kind"), [([1, 2], "an array"), ('"text"', "a string"), ("42", "a number"), ("null", "null")]
)
def test_line_must_be_an_object(write, value, kind):
    raw = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    report = run(write, jsonl(chat("a"), raw))
    assert codes(report) == [(2, "invalid_value")]
    assert report.problems[0].message == f"line 2: expected a JSON object, got {kind}"


def test_custom_id_missing(write):
    line = chat()
    del line["custom_id"]
    report = run(write, jsonl(line))
    assert codes(report) == [(1, "missing_required_parameter")]
    assert report.problems[0].param == "custom_id"


@pytest.mark.parametrize("cid", [7, None, ["x"], ""])
def test_custom_id_must_be_a_non_empty_string(write, cid):
    line = chat()
    line["custom_id"] = cid
    report = run(write, jsonl(line))
    expected = "missing_required_parameter" if cid is None else "invalid_value"
    assert codes(report) == [(1, expected)]
    assert report.problems[0].param == "custom_id"


def test_duplicate_custom_id_names_the_first_line(write):
    report = run(
        write, jsonl(chat("req-1"), chat("req-3"), chat("req-2"), chat("x"), chat("y"), chat("z"), chat("req-3"))
    )
    assert codes(report) == [(7, "duplicate_custom_id")]
    assert report.problems[0].message == 'line 7: custom_id "req-3" already used on line 2'


@pytest.mark.parametrize(
    ("method", "code"), [(None, "missing_required_parameter"), ("GET", "invalid_value"), ("post", "invalid_value")]
)
def test_method_must_be_post(write, method, code):
    line = chat()
    if method is None:
        del line["method"]
    else:
        line["method"] = method
    report = run(write, jsonl(line))
    assert codes(report) == [(1, code)]
    assert report.problems[0].param == "method"
    assert '"POST"' in report.problems[0].message


def test_url_missing(write):
    line = chat()
    del line["url"]
    report = run(write, jsonl(line))
    assert codes(report) == [(1, "missing_required_parameter")]
    assert report.endpoint is None


def test_url_must_be_a_supported_endpoint(write):
    report = run(write, jsonl(chat(url="/v1/completions")), spec=DASHSCOPE)
    assert codes(report) == [(1, "invalid_value")]
    message = report.problems[0].message
    assert '"/v1/completions"' in message and "dashscope" in message and "/v1/chat/ds-test" in message


def test_responses_is_refused_where_not_served(write):
    line = {"custom_id": "r", "method": "POST", "url": "/v1/responses", "body": {"model": "m", "input": "hi"}}
    assert run(write, jsonl(line), spec=OPENAI).ok
    assert run(write, jsonl(line), spec=LOCAL).ok  # `serve`'s echo model answers it
    assert codes(run(write, jsonl(line), spec=DASHSCOPE)) == [(1, "invalid_value")]


def test_all_lines_share_one_url(write):
    report = run(write, jsonl(chat("a"), chat("b"), embedding("c", model="gpt-4o-mini")))
    assert codes(report) == [(3, "mismatched_endpoint")]
    assert report.problems[0].message == (
        'line 3: url "/v1/embeddings" differs from "/v1/chat/completions" used on line 1; '
        "all requests of a batch go to one endpoint"
    )
    assert report.endpoint == "/v1/chat/completions"


def test_lines_must_match_the_given_endpoint(write):
    report = run(write, jsonl(chat("a"), chat("b")), endpoint="/v1/embeddings")
    assert codes(report) == [(1, "mismatched_endpoint"), (2, "mismatched_endpoint")]
    assert 'the batch\'s endpoint "/v1/embeddings"' in report.problems[0].message
    assert report.endpoint == "/v1/embeddings"


def test_given_endpoint_must_be_supported(write):
    report = run(write, jsonl(chat("a")), spec=DASHSCOPE, endpoint="/v1/responses")
    assert (None, "invalid_value") in codes(report)
    assert any(p.param == "endpoint" for p in report.problems)


@pytest.mark.parametrize(
    ("body", "code"), [(None, "missing_required_parameter"), ("text", "invalid_value"), ([1], "invalid_value")]
)
def test_body_must_be_an_object(write, body, code):
    line = chat()
    if body is None:
        del line["body"]
    else:
        line["body"] = body
    report = run(write, jsonl(line))
    assert codes(report) == [(1, code)]
    assert report.problems[0].param == "body"


@pytest.mark.parametrize(("model", "code"), [(None, "missing_required_parameter"), (5, "invalid_value")])
def test_model_present_and_a_string(write, model, code):
    line = chat()
    if model is None:
        del line["body"]["model"]
    else:
        line["body"]["model"] = model
    report = run(write, jsonl(line))
    assert codes(report) == [(1, code)]
    assert report.problems[0].param == "body.model"


def test_one_model_per_file(write):
    report = run(
        write,
        jsonl(chat("a", model="qwen-plus"), chat("b", model="qwen-plus"), chat("c", model="qwen-max")),
        spec=DASHSCOPE,
    )
    assert codes(report) == [(3, "mismatched_model")]
    assert '"qwen-max" differs from "qwen-plus" used on line 1' in report.problems[0].message
    assert report.model == "qwen-plus"


@pytest.mark.parametrize(
    ("messages", "code", "param"),
    [
        (None, "missing_required_parameter", "body.messages"),
        ([], "invalid_value", "body.messages"),
        ("hi", "invalid_value", "body.messages"),
        (["hi"], "invalid_value", "body.messages[0]"),
        ([{"content": "hi"}], "missing_required_parameter", "body.messages[0].role"),
        (
            [{"role": "user", "content": "a"}, {"role": "user"}],
            "missing_required_parameter",
            "body.messages[1].content",
        ),
        ([{"role": "assistant"}], "missing_required_parameter", "body.messages[0].content"),
    ],
)
def test_chat_messages(write, messages, code, param):
    line = chat()
    if messages is None:
        del line["body"]["messages"]
    else:
        line["body"]["messages"] = messages
    report = run(write, jsonl(line))
    assert codes(report) == [(1, code)]
    assert report.problems[0].param == param
    assert report.problems[0].message.startswith(f"line 1: {param}")


def test_embeddings_need_input(write):
    line = embedding()
    del line["body"]["input"]
    report = run(write, jsonl(line))
    assert codes(report) == [(1, "missing_required_parameter")]
    assert report.problems[0].param == "body.input"


def test_completions_need_prompt(write):
    line = {"custom_id": "c", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "input": "x"}}
    report = run(write, jsonl(line))
    assert codes(report) == [(1, "missing_required_parameter")]
    assert report.problems[0].param == "body.prompt"


def test_responses_need_input(write):
    line = {"custom_id": "r", "method": "POST", "url": "/v1/responses", "body": {"model": "m", "messages": []}}
    report = run(write, jsonl(line))
    assert codes(report) == [(1, "missing_required_parameter")]
    assert report.problems[0].param == "body.input"


def test_one_line_can_have_several_problems(write):
    line = {"custom_id": 3, "method": "GET", "url": "/v1/chat/completions", "body": {"messages": []}}
    report = run(write, jsonl(line))
    assert [c for _, c in codes(report)] == [
        "invalid_value",
        "invalid_value",
        "missing_required_parameter",
        "invalid_value",
    ]


def test_line_too_large(write):
    spec = DASHSCOPE.with_overrides(max_line_bytes=300)
    small, big = json.dumps(chat("a", model="q")), json.dumps(chat("b", model="q", content="x" * 400))
    report = run(write, (small + "\r\n" + big + "\r\n").encode(), spec=spec)
    assert codes(report) == [(2, "line_too_large")]
    assert "over dashscope's limit of 300 bytes per line" in report.problems[0].message


def test_line_exactly_at_the_limit_is_fine(write):
    raw = json.dumps(chat("a", model="q")).encode()
    spec = DASHSCOPE.with_overrides(max_line_bytes=len(raw))
    assert run(write, raw + b"\r\n", spec=spec).ok


# --- encodings, line endings, blank lines, truncation ----------------------------------------------


def test_invalid_utf8_names_the_line_and_keeps_going(write):
    bad = json.dumps(chat("b")).encode().replace(b"Hello", b"Hel\xfflo")
    report = run(write, jsonl(chat("a"), bad, chat("b")))
    assert codes(report) == [(2, "invalid_utf8")]
    assert report.problems[0].message.startswith("line 2: not valid UTF-8 (byte 0xff")
    assert report.requests == 3


def test_utf16_file_gets_a_hint(write):
    report = run(write, jsonl(chat()).decode().encode("utf-16"))
    assert report.problems[0].code == "invalid_utf8"
    assert "UTF-16" in report.problems[0].message


def test_non_ascii_content_is_fine(write):
    report = run(write, jsonl(chat(content="写一首诗 🎉"), chat("b", content="naïve")))
    assert report.ok


def test_bom_is_accepted_with_a_warning(write):
    report = run(write, b"\xef\xbb\xbf" + jsonl(chat("a"), chat("b")))
    assert report.ok
    assert [(w.line, w.code) for w in report.warnings] == [(1, "utf8_bom")]


def test_crlf_is_accepted_with_one_warning(write):
    data = jsonl(chat("a"), chat("b"), chat("c")).replace(b"\n", b"\r\n")
    report = run(write, data)
    assert report.ok and report.requests == 3
    assert [(w.line, w.code) for w in report.warnings] == [(1, "crlf_line_endings")]


def test_blank_lines_are_ignored_with_a_warning(write):
    data = jsonl(chat("a")) + b"\n" + jsonl(chat("b")) + b"   \r\n\t\n" + jsonl(chat("c")) + b"\n"
    report = run(write, data)
    assert report.ok
    assert (report.lines, report.requests, report.blank_lines) == (7, 3, 4)
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert (warning.line, warning.code) == (2, "blank_lines")
    assert warning.message == "4 blank lines ignored (lines 2, 4, 5, 7)"


def test_many_blank_lines_are_summarised(write):
    report = run(write, jsonl(chat("a")) + b"\n" * 20)
    assert report.ok
    assert report.warnings[0].message == "20 blank lines ignored (lines 2, 3, 4, 5, 6 and 15 more)"


def test_last_line_without_newline_is_parsed(write):
    data = jsonl(chat("a")) + json.dumps(chat("b")).encode()
    report = run(write, data)
    assert report.ok and report.requests == 2


def test_truncated_last_line_is_invalid_json(write):
    data = jsonl(chat("a")) + json.dumps(chat("b")).encode()[:-10]
    report = run(write, data)
    assert codes(report) == [(2, "invalid_json_line")]
    assert "may be truncated" in report.problems[0].message


def test_empty_file(write):
    report = run(write, b"")
    assert not report.ok
    assert codes(report) == [(None, "empty_file")]
    assert report.problems[0].message == "the file has no requests: it is empty"
    assert (report.lines, report.requests) == (0, 0)


def test_only_blank_lines(write):
    report = run(write, b"\n  \n\r\n")
    assert codes(report) == [(None, "empty_file")]
    assert "only blank lines" in report.problems[0].message
    assert report.blank_lines == 3


def test_only_a_bom(write):
    assert codes(run(write, b"\xef\xbb\xbf")) == [(None, "empty_file")]


def test_missing_file_raises(tmp_path):
    from batchctl.errors import BatchctlError

    with pytest.raises(BatchctlError, match="no such file"):
        validate_file(tmp_path / "nope.jsonl", spec=OPENAI)


# --- limits ----------------------------------------------------------------------------------------


def test_too_many_requests_says_by_how_much_and_how_to_split(write):
    spec = OPENAI.with_overrides(max_requests=3)
    report = run(write, jsonl(*(chat(f"r{i}") for i in range(8))), spec=spec)
    assert codes(report) == [(None, "too_many_requests")]
    assert report.problems[0].message == (
        "the file has 8 requests, 5 over openai's limit of 3 per batch; "
        "split it into 3 files of at most 3 requests and 200 MB each"
    )
    assert report.over_one_batch  # every line valid: submit makes it a job
    told = run(write, jsonl(*(chat(f"r{i}") for i in range(8))), spec=spec, submit_splits=True)  # `batchctl validate`
    assert told.problems[0].message.endswith(
        "batchctl submit makes it a job of 3 batches, or split it into 3 files of at most 3 requests and 200 MB each"
    )


def test_file_too_large(write):
    data = jsonl(chat("a"), chat("b"))
    spec = OPENAI.with_overrides(max_file_bytes=len(data) // 2 - 1)
    report = run(write, data, spec=spec)
    assert codes(report) == [(None, "file_too_large")]
    message = report.problems[0].message
    assert report.over_one_batch and not run(write, data + b"{oops\n", spec=spec).over_one_batch
    assert message.startswith(f"the file is {len(data)} bytes, ") and "over openai's limit" in message
    assert "split it into at least 3 files" in message


def test_check_limits_within():
    assert check_limits(50_000, 200 * 1024 * 1024, OPENAI) == []


def test_check_limits_counts_parts_from_both_limits():
    spec = OPENAI.with_overrides(max_requests=10, max_file_bytes=1000)
    problems = check_limits(25, 4500, spec)
    assert [p.code for p in problems] == ["too_many_requests", "file_too_large"]
    for p in problems:
        assert p.line is None
        assert "split it into at least 5 files" in p.message  # 5 by size beats 3 by count
    assert "15 over" in problems[0].message
    assert "3.4 KB over" in problems[1].message
    assert "the file is 4.4 KB (4,500 bytes)" in problems[1].message


def test_check_limits_dashscope_seed_figure():
    spec = get_provider("dashscope", {"max_requests": 10_000})
    [problem] = check_limits(25_000, 1_000_000, spec)
    assert problem.message == (
        "the file has 25,000 requests, 15,000 over dashscope's limit of 10,000 per batch; "
        "split it into 3 files of at most 10,000 requests and 500 MB each"
    )


# --- report ----------------------------------------------------------------------------------------


def test_problems_are_capped_but_all_counted(write):
    report = run(write, jsonl(*(chat("same") for _ in range(10))), max_problems=3)
    assert report.problem_count == 9
    assert len(report.problems) == 3
    assert report.to_dict()["problems_truncated"] is True
    assert not report.ok


def test_report_to_dict(write):
    data = jsonl(chat("a", content="x" * 40), chat("a", content="y" * 40)) + b"\n"
    path = write(data)
    report = validate_file(path, spec=OPENAI)
    d = report.to_dict()
    assert d == {
        "path": str(path),
        "ok": False,
        "size_bytes": len(data),
        "lines": 3,
        "requests": 2,
        "blank_lines": 1,
        "endpoint": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "est_input_tokens": 20,
        "problem_count": 1,
        "problems_truncated": False,
        "problems": [
            {
                "line": 2,
                "code": "duplicate_custom_id",
                "message": 'line 2: custom_id "a" already used on line 1',
                "param": "custom_id",
            }
        ],
        "warnings": [{"line": 3, "code": "blank_lines", "message": "1 blank line ignored (line 3)", "param": None}],
    }
    json.dumps(d)  # plain JSON


def test_problem_to_dict():
    assert Problem(3, "invalid_value", "line 3: x", "url").to_dict() == {
        "line": 3,
        "code": "invalid_value",
        "message": "line 3: x",
        "param": "url",
    }


def test_token_estimate_is_utf8_bytes_over_four(write):
    # 8 ASCII characters + a text part of 4 CJK characters (12 bytes) + 1 = 21 bytes -> 6 tokens
    line = chat(content="abcdefgh")
    line["body"]["messages"].append(
        {"role": "user", "content": [{"type": "text", "text": "写诗写诗"}, {"type": "text", "text": "!"}]}
    )
    report = run(write, jsonl(line))
    assert report.est_input_tokens == 6


def test_token_estimate_for_embeddings(write):
    report = run(write, jsonl(embedding("a", text=["abcd", "efgh"]), embedding("b", text=[1, 2, 3])))
    assert report.est_input_tokens == 2 + 3


# --- iter_request_lines ----------------------------------------------------------------------------


def test_iter_request_lines_skips_what_is_not_a_request(write):
    data = (
        b"\xef\xbb\xbf"
        + jsonl(chat("a"))
        + b"\r\n"
        + b"not json\n"
        + b"[1, 2]\n"
        + json.dumps(chat("b")).encode().replace(b"Hello", b"\xff")
        + b"\n"
        + jsonl(chat("c")).replace(b"\n", b"\r\n")
        + json.dumps(chat("d")).encode()
    )
    got = [(n, obj["custom_id"]) for n, obj in iter_request_lines(write(data))]
    assert got == [(1, "a"), (6, "c"), (7, "d")]


def test_iter_request_lines_matches_validator_line_numbers(write):
    path = write(jsonl(chat("a")) + b"\n\n" + jsonl(chat("b"), chat("a")))
    report = validate_file(path, spec=OPENAI)
    numbers = {obj["custom_id"] + str(n): n for n, obj in iter_request_lines(path)}
    assert report.problems[0].line == 5 and "a5" in numbers


def test_a_binary_file_is_one_problem_not_a_line_each(write):
    import gzip

    report = run(write, gzip.compress(jsonl(chat("a"), chat("b"))))
    assert codes(report) == [(None, "binary_file")] and report.requests == 0
    assert "not UTF-8 JSONL text" in report.problems[0].message and "compressed, or UTF-16?" in report.problems[0].message
    utf16 = run(write, jsonl(chat("a")).decode().encode("utf-16-le"))  # no byte order mark: the same one problem
    assert codes(utf16) == [(None, "binary_file")]

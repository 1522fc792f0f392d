"""A corpus of malformed batch inputs: each one gives `batchctl validate` an exact message and exit 1.

The inputs are generated here (some are megabytes of brackets, or not UTF-8), so the corpus is this
module; every case is checked through the CLI with --json, and the human report names the same line.
"""

from __future__ import annotations

import json
import os
import stat
import tracemalloc
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.errors import BatchctlError
from batchctl.providers import get_provider
from batchctl.validation import LINE_TOO_LARGE, check_input_file, check_model_name, validate_file

def L(**kw):
    base = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
    for k, v in kw.items():
        if v is ...: base.pop(k)
        else: base[k] = v
    return json.dumps(base)
def B(**kw):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for k, v in kw.items():
        if v is ...: body.pop(k)
        else: body[k] = v
    return L(body=body)
OK = L()
CASES = {
 "empty": b"",
 "only_blank": b"\n\n  \n",
 "not_json": b"hello\n",
 "truncated_object": b'{"custom_id": "a"\n',
 "truncated_last_line": (OK + "\n" + OK[:-5]).encode(),
 "array_line": b"[1, 2]\n",
 "string_line": b'"text"\n',
 "number_line": b"42\n",
 "null_line": b"null\n",
 "nan": OK.replace('"hi"', "NaN").encode() + b"\n",
 "infinity": OK.replace('"hi"', "Infinity").encode() + b"\n",
 "deep_nesting": b"[" * 100000 + b"]" * 100000 + b"\n",
 "deep_nesting_in_body": (L(body={"model": "m", "messages": [{"role": "user", "content": "x"}]})[:-1] + ', "x": ' + "[" * 50000 + "]" * 50000 + "}").encode() + b"\n",
 "cr_only": (OK + "\r" + L(custom_id="b") + "\r").encode(),
 "invalid_utf8": OK.encode().replace(b"hi", b"h\xffi") + b"\n",
 "utf16": (OK + "\n").encode("utf-16"),
 "latin1": OK.replace("hi", "caf\u00e9").encode("latin-1") + b"\n",
 "two_objects_one_line": (OK + OK + "\n").encode(),
 "trailing_comma": OK[:-1].encode() + b",}\n",
 "single_quotes": OK.replace('"', "'").encode() + b"\n",
 "missing_custom_id": L(custom_id=...).encode() + b"\n",
 "custom_id_number": L(custom_id=5).encode() + b"\n",
 "custom_id_empty": L(custom_id="").encode() + b"\n",
 "duplicate_custom_id": (OK + "\n" + OK + "\n").encode(),
 "missing_method": L(method=...).encode() + b"\n",
 "method_get": L(method="GET").encode() + b"\n",
 "missing_url": L(url=...).encode() + b"\n",
 "bad_url": L(url="/v1/nope").encode() + b"\n",
 "url_number": L(url=7).encode() + b"\n",
 "mixed_endpoints": (OK + "\n" + L(custom_id="b", url="/v1/embeddings", body={"model": "m", "input": "x"}) + "\n").encode(),
 "missing_body": L(body=...).encode() + b"\n",
 "body_string": L(body="x").encode() + b"\n",
 "missing_model": B(model=...).encode() + b"\n",
 "empty_model": B(model="").encode() + b"\n",
 "blank_model": B(model="   ").encode() + b"\n",
 "model_number": B(model=4).encode() + b"\n",
 "mixed_models": (OK + "\n" + L(custom_id="b", body={"model": "n", "messages": [{"role": "user", "content": "x"}]}) + "\n").encode(),
 "missing_messages": B(messages=...).encode() + b"\n",
 "messages_empty": B(messages=[]).encode() + b"\n",
 "messages_object": B(messages={}).encode() + b"\n",
 "message_string": B(messages=["hi"]).encode() + b"\n",
 "message_no_role": B(messages=[{"content": "hi"}]).encode() + b"\n",
 "message_no_content": B(messages=[{"role": "user"}]).encode() + b"\n",
 "embeddings_no_input": L(url="/v1/embeddings", body={"model": "m"}).encode() + b"\n",
 "nul_bytes": b"\x00\x00\x00\n",
 "bom_then_garbage": b"\xef\xbb\xbfnope\n",
}

EXPECTED = {
    "empty": "the file has no requests: it is empty",
    "only_blank": "the file has no requests: it has only blank lines",
    "not_json": "line 1: not valid JSON: Expecting value (column 1)",
    "truncated_object": "line 1: not valid JSON: Expecting ',' delimiter (column 1)",
    "truncated_last_line": "line 2: not valid JSON: Unterminated string starting at (column 133); the last line has no"
    " newline, so the file may be truncated",
    "array_line": "line 1: expected a JSON object, got an array",
    "string_line": "line 1: expected a JSON object, got a string",
    "number_line": "line 1: expected a JSON object, got a number",
    "null_line": "line 1: expected a JSON object, got null",
    "nan": "line 1: not valid JSON: NaN is not a JSON value",
    "infinity": "line 1: not valid JSON: Infinity is not a JSON value",
    "deep_nesting": "line 1: not valid JSON: nested too deeply (arrays or objects inside each other)",
    "deep_nesting_in_body": "line 1: not valid JSON: nested too deeply (arrays or objects inside each other)",
    "cr_only": "line 1: lines end with a carriage return (CR) only, as in old Mac files; save the file with LF line endings",
    "invalid_utf8": "line 1: not valid UTF-8 (byte 0xff at byte 135 of the line); save the file as UTF-8",
    "utf16": "line 1: not valid UTF-8 (byte 0xff at byte 1 of the line); the file looks like UTF-16: save it as UTF-8",
    "latin1": "line 1: not valid UTF-8 (byte 0xe9 at byte 137 of the line); save the file as UTF-8",
    "two_objects_one_line": "line 1: not valid JSON: Extra data (column 141)",
    "trailing_comma": "line 1: not valid JSON: Expecting property name enclosed in double quotes (column 141)",
    "single_quotes": "line 1: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
    "missing_custom_id": "line 1: custom_id is missing",
    "custom_id_number": "line 1: custom_id must be a string, not a number",
    "custom_id_empty": "line 1: custom_id is empty",
    "duplicate_custom_id": 'line 2: custom_id "a" already used on line 1',
    "missing_method": 'line 1: method is missing (it must be "POST")',
    "method_get": 'line 1: method must be "POST", not "GET"',
    "missing_url": "line 1: url is missing",
    "bad_url": 'line 1: url "/v1/nope" is not an endpoint local supports (/v1/chat/completions, /v1/embeddings,'
    " /v1/completions, /v1/responses, /v1/moderations)",
    "url_number": "line 1: url 7 is not an endpoint local supports (/v1/chat/completions, /v1/embeddings,"
    " /v1/completions, /v1/responses, /v1/moderations)",
    "mixed_endpoints": 'line 2: url "/v1/embeddings" differs from "/v1/chat/completions" used on line 1; all requests'
    " of a batch go to one endpoint",
    "missing_body": "line 1: body is missing",
    "body_string": "line 1: body must be an object, not a string",
    "missing_model": "line 1: body.model is missing",
    "empty_model": "line 1: body.model is empty",
    "blank_model": "line 1: body.model is empty",
    "model_number": "line 1: body.model must be a string, not a number",
    "mixed_models": 'line 2: body.model "n" differs from "m" used on line 1; a batch file must use one model',
    "missing_messages": "line 1: body.messages is missing",
    "messages_empty": "line 1: body.messages must be a non-empty array, not empty",
    "messages_object": "line 1: body.messages must be a non-empty array, not an object",
    "message_string": "line 1: body.messages[0] must be an object, not a string",
    "message_no_role": "line 1: body.messages[0].role is missing",
    "message_no_content": "line 1: body.messages[0].content is missing",
    "embeddings_no_input": "line 1: body.input is missing (required by /v1/embeddings)",
    "nul_bytes": "the file is not UTF-8 JSONL text (a NUL byte at byte 1): compressed, or UTF-16? unpack it, or save it as UTF-8",
    "bom_then_garbage": "line 1: not valid JSON: Expecting value (column 1)",
}


def test_the_corpus_is_large_and_each_case_has_its_message():
    assert len(CASES) >= 40 and set(CASES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(CASES))
def test_validate_names_the_problem_exactly(name, tmp_path):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(CASES[name])
    result = CliRunner().invoke(app, ["validate", "--json", str(path)])
    assert result.exit_code == 1, result.output
    problems = json.loads(result.stdout)["problems"]
    assert problems[0]["message"] == EXPECTED[name]
    assert result.stderr.startswith(f"Error: {path} is not a valid batch input: ")
    assert "Traceback" not in result.output and "unexpected" not in result.output


def _fifo(tmp_path):
    path = tmp_path / "pipe.jsonl"
    os.mkfifo(path)
    return str(path), f"Error: {path} is a named pipe (FIFO), not a regular file"


def _loop(tmp_path):
    path = tmp_path / "loop.jsonl"
    os.symlink(path, path)
    return str(path), f"Error: {path} is a symbolic link loop"


def _broken(tmp_path):
    path = tmp_path / "broken.jsonl"
    os.symlink(tmp_path / "gone", path)
    return str(path), f"Error: {path} is a broken symbolic link"


def _directory(tmp_path):
    return str(tmp_path), f"Error: {tmp_path} is a directory, not a regular file"


def _device(tmp_path):
    return "/dev/zero", "Error: /dev/zero is a character device, not a regular file"


def _missing(tmp_path):
    return str(tmp_path / "nope.jsonl"), f"Error: no such file: {tmp_path / 'nope.jsonl'}"


@pytest.mark.parametrize("make", [_fifo, _loop, _broken, _directory, _device, _missing])
def test_what_is_not_a_regular_file_is_refused_before_reading(make, tmp_path):
    path, error = make(tmp_path)
    result = CliRunner().invoke(app, ["validate", path])  # a FIFO would block here forever before
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == error
    assert len(result.stderr.splitlines()) == 2  # and a next step


def test_check_input_file_returns_the_stat_of_a_regular_file(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text("{}\n")
    assert stat.S_ISREG(check_input_file(path).st_mode)
    with pytest.raises(BatchctlError):
        check_input_file("/dev/null")


def test_a_line_over_the_limit_is_rejected_while_reading_in_bounded_memory(tmp_path):
    spec = replace(get_provider("local"), max_line_bytes=1024 * 1024)
    path = tmp_path / "long.jsonl"
    line = b'{"custom_id": "a", "body": "' + b"x" * (24 * 1024 * 1024) + b'"}\n'
    path.write_bytes(b'{"custom_id": "z"}\n' + line + b'{"custom_id": "b"}\n')
    del line
    tracemalloc.start()
    report = validate_file(path, spec=spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak
    long = [p for p in report.problems if p.code == LINE_TOO_LARGE]
    assert [p.line for p in long] == [2]
    assert long[0].message == "line 2: the line is 24 MB (25,165,854 bytes), over local's limit of 1 MB per line"
    assert report.lines == 3


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("", "--model is empty"),
        ("  ", "--model is empty"),
        ("gpt\udc80x", "--model gpt\\udc80x is not valid text (it holds bytes that are not UTF-8)"),
        ("a\nb", "--model 'a\\nb' holds control characters"),
    ],
)
def test_a_model_option_that_cannot_be_sent_is_refused(model, message):
    with pytest.raises(BatchctlError) as info:
        check_model_name(model)
    assert info.value.message == message and info.value.hint and info.value.exit_code == 1
    assert check_model_name("qwen-max") == "qwen-max"


@pytest.mark.e2e
def test_submit_uploads_nothing_for_any_of_the_corpus(start_server, tmp_path, monkeypatch):
    import httpx

    server = start_server()
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    runner = CliRunner()
    for name in sorted(CASES):
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(CASES[name])
        result = runner.invoke(app, ["submit", str(path)])
        assert result.exit_code == 1, (name, result.output)
        assert "nothing was uploaded" in result.stderr and "Traceback" not in result.output, name
    assert httpx.get(server.base_url + "/files").json()["data"] == []  # not one byte of any of them

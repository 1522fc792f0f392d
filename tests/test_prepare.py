"""prepare's pieces without a server: the row readers, templates, request bodies per endpoint, the
checks that refuse before writing, and the join of result lines back to rows (failed and missing too)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.errors import BatchctlError
from batchctl.merging import MergeReport
from batchctl.prepare import PrepareSpec, Template, open_rows
from batchctl.prepare.join import JoinSettings, added_columns, joined_rows, output_format, write_joined
from batchctl.preparing import PrepareRequest, prepare_requests
from batchctl.providers import get_provider
from batchctl.validation import validate_file

runner = CliRunner()
LOCAL = get_provider("local")
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def spec(template: str = "Q: {text}", **kwargs) -> PrepareSpec:
    return PrepareSpec(template=Template.parse(template), model="echo", **kwargs)


def table(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_csv_rows_quotes_newlines_bom_delimiters_and_blank_lines(tmp_path):
    data = table(tmp_path / "d.csv", '\ufeffid;text\n1;"a; b ""c""\nd"\n\n2;你好\n')
    source = open_rows(data, delimiter=";")
    assert source.columns == ["id", "text"]
    assert list(source.rows()) == [(1, {"id": "1", "text": 'a; b "c"\nd'}), (2, {"id": "2", "text": "你好"})]
    tsv = table(tmp_path / "d.tsv", "a\tb\nx,y\tz\n")
    assert list(open_rows(tsv).rows()) == [(1, {"a": "x,y", "b": "z"})]
    jsonl = table(tmp_path / "d.jsonl", '{"a": 1, "b": {"k": [1]}}\n\n{"a": null, "c": true}\n')
    source = open_rows(jsonl)
    assert source.columns == ["a", "b", "c"] and [n for n, _ in source.rows()] == [1, 2]


@pytest.mark.parametrize(
    ("text", "start", "why"),
    [
        ('id,text\n1,fine\n2,"He said "hi" there\n3,ok\n', 3, "',' expected after '\"', line 3"),
        ('id,text\n1,fine\n4,"start of quote\n5,end\n6,last\n', 3, "unexpected end of data, line 5"),  # never closed
    ],
)
def test_csv_quotes_that_do_not_close_are_an_error_not_rows_merged(tmp_path, text, start, why):
    data = table(tmp_path / "q.csv", text)
    with pytest.raises(BatchctlError) as err:
        list(open_rows(data).rows())
    assert err.value.message == f"q.csv: the row starting on line {start} is not valid CSV ({why})"
    assert "Check its quotes" in err.value.hint
    fine = table(tmp_path / "ok.csv", 'id,text\n1,a "quoted" word\n2,"two\nlines, one cell"\n')  # still rows
    assert [row["text"] for _, row in open_rows(fine).rows()] == ['a "quoted" word', "two\nlines, one cell"]


def test_a_row_with_more_cells_than_columns_is_an_error_unless_they_are_empty(tmp_path, in_tmp):
    data = table(tmp_path / "w.csv", "id,text\n1,fine\n2,hello, world\n")
    with pytest.raises(BatchctlError) as err:
        list(open_rows(data).rows())
    assert err.value.message == "w.csv: row 2 has 3 cells but the header names 2 columns; nothing was written"
    assert "must be quoted" in err.value.hint
    result = runner.invoke(app, ["prepare", str(data), "-t", "{text}", "-m", "echo", "-o", "w.jsonl"])
    assert result.exit_code == 1 and not (in_tmp / "w.jsonl").exists()
    trailing = table(tmp_path / "t.csv", "id,text\n1,fine,\n")  # an empty cell past the header: kept as before
    assert list(open_rows(trailing).rows()) == [(1, {"id": "1", "text": "fine"})]


@pytest.mark.skipif(HAS_PYARROW, reason="pyarrow is installed: the missing-extra message cannot show")
def test_parquet_without_pyarrow_says_which_extra_to_install(tmp_path):
    # pyarrow is an optional extra (batchctl[parquet]), not in dev: where it is absent, the message is tested.
    with pytest.raises(BatchctlError) as err:
        open_rows(table(tmp_path / "d.parquet", "not really parquet"))
    assert "needs pyarrow" in err.value.message and "batchctl[parquet]" in err.value.hint


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow (the parquet extra) is not installed")
def test_parquet_rows_round_trip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a", "b"], "n": [1, 2], "text": ["x", "你好"]}), tmp_path / "d.parquet")
    source = open_rows(tmp_path / "d.parquet")
    assert source.columns == ["id", "n", "text"] and [r["text"] for _, r in source.rows()] == ["x", "你好"]
    (tmp_path / "out.jsonl").write_text(result("row-2", "B") + "\n")
    rows = joined_rows(source, [tmp_path / "out.jsonl"], ["b1"], JoinSettings(), MergeReport())
    write_joined(tmp_path / "j.parquet", "parquet", source.columns, added_columns(source.columns, ""), rows,
                 arrow_schema=source.arrow_schema)  # fmt: skip
    got = pq.read_table(tmp_path / "j.parquet").to_pylist()
    assert [(r["id"], r["n"], r["answer"], r["prompt_tokens"]) for r in got] == [("a", 1, None, None), ("b", 2, "B", 3)]


def test_templates_escape_braces_and_refuse_unknown_columns_and_specs():
    template = Template.parse("{{literal}} {first name}: {text}")
    assert template.columns == ["first name", "text"]
    assert template.render({"first name": "Li", "text": "hi"}, 1) == "{literal} Li: hi"
    with pytest.raises(BatchctlError) as err:
        template.check_columns(["text", "name"], "d.csv")
    assert "'first name', not in d.csv; its columns are: text, name" in err.value.message
    for bad in ("{x:>10}", "{x!r}", "unclosed {", "{}"):
        with pytest.raises(BatchctlError):
            Template.parse(bad)
    with pytest.raises(BatchctlError, match="row 3: column 'text'"):
        template.render({"first name": "Li", "text": ""}, 3)
    assert template.render({"first name": "Li", "text": ""}, 3, allow_empty=True) == "{literal} Li: "


@pytest.mark.parametrize("endpoint", ["/v1/chat/completions", "/v1/responses", "/v1/embeddings"])
def test_bodies_per_endpoint_pass_validate(tmp_path, endpoint):
    data = table(tmp_path / "d.csv", "id,text\nk1,hello\nk2,world\n")
    extra = {} if endpoint == "/v1/embeddings" else {"system": Template.parse("Be {text}."), "max_tokens": 5,
                                                      "temperature": 0.2, "json_schema": {"type": "object"}}  # fmt: skip
    request = PrepareRequest(data, spec(endpoint=endpoint, id_column="id", body_extra={"user": "u"}, **extra),
                             output=tmp_path / "r.jsonl")  # fmt: skip
    openai = get_provider("openai")  # local has no /v1/responses
    outcome = prepare_requests(request, openai)
    report = validate_file(tmp_path / "r.jsonl", spec=openai)
    assert report.ok and report.requests == 2 and outcome.report.est_input_tokens == report.est_input_tokens
    first = lines(tmp_path / "r.jsonl")[0]
    assert first["custom_id"] == "k1" and first["url"] == endpoint and first["body"]["user"] == "u"
    body = first["body"]
    if endpoint == "/v1/chat/completions":
        assert body["messages"] == [{"role": "system", "content": "Be hello."}, {"role": "user", "content": "Q: hello"}]
        assert body["response_format"] == {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True}}  # fmt: skip
        assert body["max_tokens"] == 5 and body["temperature"] == 0.2
    elif endpoint == "/v1/responses":
        assert body["input"] == "Q: hello" and body["instructions"] == "Be hello." and body["max_output_tokens"] == 5
        assert body["text"]["format"]["type"] == "json_schema"
    else:
        assert body == {"model": "echo", "input": "Q: hello", "user": "u"}


def test_refusals_write_nothing(tmp_path):
    data = table(tmp_path / "d.csv", "id,text\na,x\nb,\na,z\n")
    out = tmp_path / "r.jsonl"
    cases = [
        (spec("{nope}"), "names column 'nope'"),
        (spec(id_column="missing"), "--id-column 'missing' is not a column"),
        (spec(), "row 2: column 'text'"),
        (spec(id_column="id", allow_empty=True), "rows 1 and 3 have the same id 'a'"),
        (spec(endpoint="/v1/embeddings", max_tokens=3), "cannot be used with embeddings"),
        (spec(body_extra={"messages": []}), "--body-extra may not set messages"),
    ]
    for case, message in cases:
        with pytest.raises(BatchctlError) as err:
            prepare_requests(PrepareRequest(data, case, output=out), LOCAL)
        assert message in err.value.message
        assert not out.exists() and not list(tmp_path.glob("*.part"))
    prepare_requests(PrepareRequest(data, spec(allow_empty=True), output=out), LOCAL)
    assert [r["custom_id"] for r in lines(out)] == ["row-1", "row-2", "row-3"]


def result(cid: str, answer: str | None = None, *, status: int = 200, error: dict | None = None) -> str:
    if error is not None:
        return json.dumps({"custom_id": cid, "response": None, "error": error})
    body = ({"choices": [{"message": {"content": answer}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
            if status == 200 else {"error": {"code": "bad_request", "message": "too long"}})  # fmt: skip
    return json.dumps({"custom_id": cid, "response": {"status_code": status, "body": body}})


def test_join_keeps_every_row_in_order_with_failures_and_missing(tmp_path):
    data = table(tmp_path / "d.csv", "text,n\n\"a,1\",1\nb\n\"c\nd\",3\ne,4\n")
    outs = tmp_path / "out.jsonl"
    outs.write_text("\n".join([result("row-3", '{"k": 1}'), result("row-1", "A")]) + "\n")
    errs = tmp_path / "err.jsonl"
    errs.write_text(result("row-2", status=400) + "\n" + result("row-9", error={"code": "x", "message": "y"}) + "\n")
    source = open_rows(data)
    report = MergeReport()
    rows = joined_rows(source, [outs, errs], ["batch_1", "batch_2"], JoinSettings(parse_json=True), report)
    count = write_joined(tmp_path / "j.jsonl", "jsonl", source.columns, added_columns(source.columns, ""), rows)
    got = lines(tmp_path / "j.jsonl")
    assert count == 4 and [r["text"] for r in got] == ["a,1", "b", "c\nd", "e"] and got[1]["n"] == ""
    # JSON was asked for and "A" is not JSON: kept as text, with the reason as the row's error (it counts as failed).
    assert got[0] | {} == {"text": "a,1", "n": "1", "answer": "A", "finish_reason": "stop", "prompt_tokens": 3,
                           "completion_tokens": 2, "error": "invalid_json: the answer is not valid JSON (Expecting value "
                           "at character 0)", "batch_id": "batch_1"}  # fmt: skip
    assert got[1]["answer"] is None and got[1]["error"] == "bad_request: too long" and got[1]["batch_id"] == "batch_2"
    assert got[2]["answer"] == {"k": 1} and got[2]["error"] is None  # parsed JSON (a --json-schema job)
    assert got[3]["error"].startswith("missing_result:") and got[3]["batch_id"] is None
    assert (report.requests, report.succeeded, report.failed, report.missing, report.unexpected) == (4, 1, ["row-1", "row-2"], ["row-4"], 1)
    assert report.invalid_json == 1

    report = MergeReport()
    rows = joined_rows(open_rows(data), [outs, errs], ["b1", "b2"], JoinSettings(), report)
    write_joined(tmp_path / "j.csv", "csv", source.columns, added_columns(source.columns, ""), rows)
    with open(tmp_path / "j.csv", encoding="utf-8-sig", newline="") as handle:
        got = list(csv.DictReader(handle))
    assert got[2]["text"] == "c\nd" and got[2]["answer"] == '{"k": 1}' and got[1]["answer"] == ""
    assert got[0]["answer"] == "A" and got[0]["error"] == "" and report.invalid_json == 0  # no JSON asked for: text


def test_join_takes_each_rows_newest_success_across_retry_parts(tmp_path):
    data = table(tmp_path / "d.csv", "text\na\nb\n")
    first = tmp_path / "err-0.jsonl"
    first.write_text(result("row-1", status=400) + "\n" + result("row-2", "old") + "\n")
    retry = tmp_path / "out-1.jsonl"  # part 1 retried row-1 (now a success) and row-2 (now a failure)
    retry.write_text(result("row-1", "new") + "\n" + result("row-2", status=400) + "\n")
    report = MergeReport()
    rows = list(joined_rows(open_rows(data), [first, retry], ["b0", "b1"], JoinSettings(), report, ranks=[0, 1]))
    assert [(values[0], values[5]) for _, values in rows] == [("new", "b1"), ("old", "b0")]
    assert report.succeeded == 2 and report.superseded == 2 and not report.failed


def test_join_output_names_and_formats():
    with pytest.raises(BatchctlError, match="already has column 'answer'"):
        added_columns(["id", "answer"], "")
    assert added_columns(["answer"], "llm_")[0] == "llm_answer"
    assert output_format(Path("a.CSV"), None) == "csv" and output_format(Path("a.txt"), "parquet") == "parquet"
    with pytest.raises(BatchctlError, match="cannot tell the format"):
        output_format(Path("a.xlsx"), None)


def test_prepare_command_json_and_refusal(in_tmp):
    table(in_tmp / "d.csv", "text\nhi\n")
    ok = runner.invoke(app, ["--json", "prepare", "d.csv", "-t", "{text}", "-m", "echo"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["output"] == "d.requests.jsonl" and data["requests"] == 1 and data["ok"] is True
    from test_json_shapes import has

    has(data, "Prepare report")  # the keys docs/json.md lists
    shown = runner.invoke(app, ["prepare", "d.csv", "-t", "{text}", "-m", "echo", "-o", "v.jsonl"])
    assert shown.exit_code == 0 and shown.stdout == runner.invoke(app, ["validate", "v.jsonl"]).stdout  # validate's summary
    assert "Wrote v.jsonl (1 request); submit it: batchctl submit v.jsonl" in shown.stderr
    (in_tmp / "p.txt").write_text("Say {text}", encoding="utf-8")
    again = runner.invoke(app, ["prepare", "d.csv", "-t", "@p.txt", "-m", "echo"])
    assert again.exit_code == 1 and "already exists" in again.stderr
    refused = runner.invoke(app, ["prepare", "d.csv", "-t", "{txt}", "-m", "echo", "-o", "x.jsonl"])
    assert refused.exit_code == 1 and "its columns are: text" in refused.stderr and not (in_tmp / "x.jsonl").exists()
    assert runner.invoke(app, ["prepare", "d.csv", "-t", "{text}"]).exit_code == 2  # --model is required
    stray = runner.invoke(app, ["submit", "d.csv", "--system", "Be brief."])
    assert stray.exit_code == 2 and "--system builds requests from a table: it needs --template" in stray.output
    assert runner.invoke(app, ["download", "batch_x", "--prefix", "p_"]).exit_code == 2  # --join options need --join


# -- encodings, -o -, header spaces, the small refusals (the new user's trial, findings 2 and 9) ----------

GBK_ROWS = "id,text\n1,质量很好\n2,一般\n"


def prepare(*args: str):
    return runner.invoke(app, ["prepare", *args, "--model", "echo"])


def contents(path: Path) -> list[str]:
    return [line["body"]["messages"][0]["content"] for line in lines(path)]


def test_a_table_that_is_not_utf8_is_one_clear_line_naming_the_line_and_the_fix(in_tmp):
    (in_tmp / "gbk.csv").write_bytes(GBK_ROWS.encode("gbk"))  # Excel "CSV" on a Chinese Windows
    result = prepare("gbk.csv", "-t", "{text}", "-o", "out.jsonl")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == (
        "Error: gbk.csv is not UTF-8 text (line 2 holds the byte 0xd6, at offset 10); nothing was written")
    assert "Excel: Save As → CSV UTF-8" in result.stderr and "iconv -f gbk -t utf-8 gbk.csv" in result.stderr
    assert "--encoding gbk" in result.stderr and "UnicodeDecodeError" not in result.output
    assert list(in_tmp.iterdir()) == [in_tmp / "gbk.csv"]  # no out.jsonl, no .part
    named = prepare("gbk.csv", "-t", "{text}", "-o", "out.jsonl", "--encoding", "gbk")
    assert named.exit_code == 0, named.output
    assert contents(in_tmp / "out.jsonl") == ["质量很好", "一般"]
    unknown = prepare("gbk.csv", "-t", "{text}", "--encoding", "klingon")
    assert unknown.exit_code == 2 and "unknown encoding 'klingon'" in unknown.stderr


def test_a_gbk_row_far_down_a_utf8_file_names_its_line_and_writes_nothing(in_tmp):
    head = "id,text\n" + "".join(f"{i},好 {i}\n" for i in range(1, 20001))  # well past the first read
    (in_tmp / "far.csv").write_bytes(head.encode() + "20001,质量很好\n".encode("gbk"))
    result = prepare("far.csv", "-t", "{text}", "-o", "out.jsonl")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: far.csv is not UTF-8 text (line 20002 holds the byte 0xd6, at offset {len(head.encode()) + 6:,})")
    assert not (in_tmp / "out.jsonl").exists() and not (in_tmp / "out.jsonl.part").exists()
    jsonl = table(in_tmp / "g.jsonl", '{"text": "ok"}\n')
    jsonl.write_bytes(jsonl.read_bytes() + '{"text": "质量"}\n'.encode("gbk"))
    result = prepare("g.jsonl", "-t", "{text}", "-o", "out.jsonl")
    assert result.exit_code == 1 and result.stderr.startswith("Error: g.jsonl is not UTF-8 text (line 2 holds the byte")
    (in_tmp / "cut.csv").write_bytes(b"id,text\n1,x\xd6")  # the file ends inside a character
    result = prepare("cut.csv", "-t", "{text}")
    assert result.exit_code == 1 and result.stderr.startswith("Error: cut.csv is not UTF-8 text (line 2 holds the byte 0xd6, at offset 11)")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_with_a_bom_reads_as_it_is_and_excels_unicode_text_is_tab_separated(in_tmp, codec):
    text = 'id\ttext\n1\t"说\t""好"""\n2\t质量\n'  # Excel "Unicode text": UTF-16LE with a BOM, tabs, a .txt
    bom = "\ufeff".encode(codec) if codec == "utf-16-be" else b""  # Python's utf-16 writes its own BOM
    (in_tmp / "excel.txt").write_bytes(bom + text.encode(codec))
    result = prepare("excel.txt", "-t", "{text}", "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    assert contents(in_tmp / "out.jsonl") == ['说\t"好"', "质量"]
    (in_tmp / "u16.csv").write_bytes("a,b\n1,x\n".encode("utf-16"))
    assert prepare("u16.csv", "-t", "{a}{b}", "-o", "c.jsonl").exit_code == 0 and contents(in_tmp / "c.jsonl") == ["1x"]


def test_utf16_without_a_bom_and_binary_files_are_refused_clearly(in_tmp):
    (in_tmp / "nobom.csv").write_bytes("a,b\n1,x\n".encode("utf-16-le"))
    result = prepare("nobom.csv", "-t", "{a}")
    assert result.exit_code == 1 and "looks like UTF-16 without a byte-order mark" in result.stderr
    assert "--encoding utf-16-le" in result.stderr
    named = prepare("nobom.csv", "-t", "{a}{b}", "-o", "n.jsonl", "--encoding", "utf-16-le")
    assert named.exit_code == 0, named.output
    assert contents(in_tmp / "n.jsonl") == ["1x"]
    (in_tmp / "book.xlsx").write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xd6\xff\x00\x00")
    result = prepare("book.xlsx", "-t", "{a}")
    assert result.exit_code == 1 and result.stderr.startswith("Error: book.xlsx is not a text file (an Excel workbook?)")
    (in_tmp / "bin.csv").write_bytes(bytes(range(256)) * 4)
    result = prepare("bin.csv", "-t", "{a}")
    assert result.exit_code == 1 and result.stderr.startswith("Error: bin.csv is not a text file")
    assert "Traceback" not in result.output and "unexpected" not in result.output


@pytest.mark.parametrize("option", ["--template", "--system", "--json-schema"])
def test_an_at_file_that_is_not_utf8_names_the_option_and_the_file(in_tmp, option):
    table(in_tmp / "d.csv", "text\nhi\n")
    text = '{"type": "string", "description": "质量"}' if option == "--json-schema" else "质量 {text}"
    (in_tmp / "p.txt").write_bytes(text.encode("gbk"))
    args = ["-t", "{text}", option, "@p.txt"] if option != "--template" else [option, "@p.txt"]
    result = prepare("d.csv", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {option} @p.txt: p.txt is not UTF-8 text (line 1 holds the byte 0xd6")
    assert "iconv -f gbk -t utf-8 p.txt" in result.stderr and not (in_tmp / "d.requests.jsonl").exists()
    (in_tmp / "p.txt").write_bytes(text.encode("utf-16"))  # UTF-16 with a BOM: read as it is
    ok = prepare("d.csv", *args)
    assert ok.exit_code == 0, ok.output
    assert "质量" in (in_tmp / "d.requests.jsonl").read_text(encoding="utf-8")


def test_prepare_to_stdout_writes_the_requests_there_and_talk_to_stderr(in_tmp):
    table(in_tmp / "sp.csv", "a\nx\ny\n")
    result = prepare("sp.csv", "-t", "{a}", "-o", "-")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["body"]["messages"][0]["content"] for line in result.stdout.splitlines()] == ["x", "y"]
    assert "Wrote 2 requests to stdout" in result.stderr and "Requests" in result.stderr
    assert sorted(p.name for p in in_tmp.iterdir()) == ["sp.csv"]  # no file named "-"
    refused = prepare("sp.csv", "-t", "{b}", "-o", "-")
    assert refused.exit_code == 1 and refused.stdout == "" and "its columns are: a" in refused.stderr
    both = runner.invoke(app, ["--json", "prepare", "sp.csv", "-t", "{a}", "-m", "echo", "-o", "-"])
    assert both.exit_code == 2 and "-o - and --json both want stdout" in both.output


def test_header_names_lose_the_spaces_around_them_as_the_hint_says(in_tmp):
    table(in_tmp / "sp.csv", " my col ,b\n1,2\n")
    assert prepare("sp.csv", "-t", "{my col}", "-o", "ok.jsonl").exit_code == 0
    result = prepare("sp.csv", "-t", "{ my col }")
    assert result.exit_code == 1 and "its columns are: my col, b" in result.stderr
    assert "spaces around a CSV header name are dropped" in result.stderr and "spaces included" not in result.stderr


def test_an_existing_output_and_an_empty_jsonl_get_prepares_own_words(in_tmp):
    table(in_tmp / "d.csv", "text\nhi\n")
    table(in_tmp / "d.requests.jsonl", "")
    exists = prepare("d.csv", "-t", "{text}")
    assert exists.exit_code == 1 and "choose another name with --output." in exists.stderr
    assert "--errors-output" not in exists.stderr
    table(in_tmp / "empty.jsonl", "")
    empty = prepare("empty.jsonl", "-t", "{x}")
    assert empty.exit_code == 1 and empty.stderr.startswith("Error: empty.jsonl is empty") and "(none)" not in empty.stderr


def test_a_fifo_or_a_device_is_refused_as_data_or_after_an_at_sign_and_a_huge_at_file_too(tmp_path):
    """`-t @/dev/zero` read until the machine ran out of memory, a FIFO hung for ever; DATA too."""
    import os

    from typer.testing import CliRunner

    from batchctl.cli.app import app

    data = tmp_path / "ok.csv"
    data.write_text("a,b\n1,x\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (17 * 2**20))
    runner = CliRunner()
    cases = {
        ("-t", "@/dev/zero"): "Error: --template @/dev/zero: /dev/zero is a character device, not a regular file",
        ("-t", f"@{fifo}"): f"Error: --template @{fifo}: {fifo} is a named pipe (FIFO), not a regular file",
        ("-t", "{a}", "--system", f"@{big}"): f"Error: --system @{big}: {big} is 17 MiB; a text repeated in every request is at most 16 MiB",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["prepare", str(data), *args, "--model", "echo", "-o", str(tmp_path / "p.jsonl")])
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
    for table in ("/dev/zero", str(fifo)):
        result = runner.invoke(app, ["prepare", table, "-t", "{a}", "--model", "echo", "-o", str(tmp_path / "p.jsonl")])
        assert result.exit_code == 1 and "not a regular file" in result.stderr, (table, result.stderr)
    assert not (tmp_path / "p.jsonl").exists()


def test_data_format_tsv_reads_tabs_whatever_the_extension_and_an_unknown_format_lists_tsv(tmp_path):
    from typer.testing import CliRunner

    from batchctl.cli.app import app

    data = tmp_path / "rows.txt"
    data.write_text("id\ttext\n1\thello, world\n")
    out = tmp_path / "p.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", str(data), "--data-format", "tsv", "-t", "{text}", "--model", "echo", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text().splitlines()[0])["body"]["messages"][-1]["content"] == "hello, world"
    unknown = runner.invoke(app, ["prepare", str(data), "--data-format", "xml", "-t", "{text}", "--model", "echo"])
    assert unknown.exit_code == 1 and "Use one of: csv, tsv, jsonl, parquet." in unknown.stderr


def test_a_json_option_given_a_files_name_without_its_at_sign_says_to_add_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from batchctl.cli.app import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("id,text\n1,hello\n")
    (tmp_path / "schema.json").write_text('{"type": "object"}')
    result = CliRunner().invoke(app, ["prepare", "rows.csv", "-t", "{text}", "--model", "echo", "--json-schema", "schema.json"])
    assert result.exit_code == 1
    assert "Error: --json-schema schema.json: not JSON, but a file of that name exists" in result.stderr
    assert "Write --json-schema @schema.json to read the file." in result.stderr


def test_a_template_without_a_placeholder_warns_that_every_row_gets_the_same_request(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from batchctl.cli.app import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("id,text\n1,hello\n2,world\n")
    (tmp_path / "prompt.txt").write_text("Summarise: {text}")
    same = CliRunner().invoke(app, ["prepare", "rows.csv", "-t", "prompt.txt", "--model", "echo", "-o", "a.jsonl"])
    assert same.exit_code == 0, same.output
    assert "Warning: the template names no column ({column}): every row gets the same request ('prompt.txt')" in same.stderr
    assert "write --template @FILE" in same.stderr
    varied = CliRunner().invoke(app, ["prepare", "rows.csv", "-t", "@prompt.txt", "--model", "echo", "-o", "b.jsonl"])
    assert varied.exit_code == 0 and "names no column" not in varied.stderr

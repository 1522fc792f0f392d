"""prepare -> submit -> download --join end to end against a real local server (the echo model answers
`echo: <user text>`): a 1,000-row CSV with quotes, commas, newlines and Chinese text comes back as the
same rows in the same order with answers; the same in one step (`submit DATA --template`) and from JSONL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app
from batchctl.cost.estimate import estimate_for_profile, estimate_line
from batchctl.jobs.store import Journal
from batchctl.validation import validate_file
from batchctl.providers import get_provider

pytestmark = pytest.mark.e2e
runner = CliRunner()
TEMPLATE = "Summarise {{in one line}}: {text}"


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def small(start_server):
    """A server and an active profile `small` on it with a 400-request limit (1,000 rows: a job of 3 batches)."""
    handle = start_server(latency=0.0)
    result = invoke("profile", "add", "small", "--preset", "local", "--base-url", handle.base_url,
                    "--max-requests", "400", "--poll-interval", "0.1")  # fmt: skip
    assert result.exit_code == 0, result.output
    return handle


def tricky_rows(n: int) -> list[dict[str, str]]:
    texts = ['He said "yes", then left', "第一行\n第二行，逗号", "plain, with comma", "  spaced  ", "中文 🙂 \"quoted\""]
    return [{"sku": f"S{i:04d}", "text": f"{texts[i % len(texts)]} #{i}", "note": "x,y\nz" if i % 7 == 0 else ""}
            for i in range(1, n + 1)]  # fmt: skip


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:  # with a BOM, as Excel saves it
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def server_batches(server) -> list[dict]:
    return httpx.get(server.base_url + "/batches", params={"limit": 100}).json()["data"]


def test_csv_prepare_submit_join_gives_the_rows_back_in_order_with_answers(small, in_tmp):
    rows = tricky_rows(1000)
    data = write_csv(in_tmp / "products.csv", rows)
    prepared = invoke("prepare", str(data), "--template", TEMPLATE, "--model", "echo", "--id-column", "sku",
                      "-o", "requests.jsonl")  # fmt: skip
    assert prepared.exit_code == 0, prepared.output
    report = validate_file(in_tmp / "requests.jsonl", spec=get_provider("local"))
    assert report.ok and report.requests == 1000
    # The estimate validate shows (validate itself refuses the file here: over the profile's 400 a batch).
    estimate = estimate_for_profile(in_tmp / "requests.jsonl", profile="small")
    assert f"Estimate: {estimate_line(estimate)}" in prepared.stdout and "Estimate: 1,000 requests, ~" in prepared.stdout

    submitted = invoke("submit", "requests.jsonl", "--wait", "--interval", "0.1", "-o", "raw.jsonl")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.splitlines()[0].strip()
    assert job_id.startswith("job_") and len(server_batches(small)) == 3

    joined = invoke("download", job_id, "--join", str(data), "--id-column", "sku", "-o", "answers.csv")
    assert joined.exit_code == 0, joined.output
    assert "Rows with answers: answers.csv (1,000 rows)" in joined.stderr
    out = read_csv(in_tmp / "answers.csv")
    assert (in_tmp / "answers.csv").read_bytes().startswith("\ufeff".encode())
    assert [{k: r[k] for k in ("sku", "text", "note")} for r in out] == rows  # same rows, same order
    assert list(out[0]) == ["sku", "text", "note", "answer", "finish_reason", "prompt_tokens",
                            "completion_tokens", "error", "batch_id"]  # fmt: skip
    for row in out:
        assert row["answer"] == "echo: " + TEMPLATE.replace("{{in one line}}", "{in one line}").replace("{text}", row["text"])
        assert row["finish_reason"] == "stop" and row["error"] == "" and row["batch_id"].startswith("batch_")
        assert int(row["prompt_tokens"]) > 0
    assert len({r["batch_id"] for r in out}) == 3

    # JSONL out, and a clash with an existing column needs --prefix.
    again = invoke("download", job_id, "--join", "answers.csv", "--id-column", "sku", "-o", "again.jsonl")
    assert again.exit_code == 1 and "already has columns 'answer'" in again.stderr and "--prefix" in again.stderr
    prefixed = invoke("download", job_id, "--join", "answers.csv", "--id-column", "sku", "--prefix", "llm_",
                      "-o", "again.jsonl")  # fmt: skip
    assert prefixed.exit_code == 0, prefixed.output
    first = json.loads((in_tmp / "again.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["sku"] == "S0001" and first["llm_answer"] == first["answer"]


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_submit_data_with_a_template_in_one_step_and_join_without_arguments(small, in_tmp, kind):
    rows = [{"q": f"问题 {i}, \"quoted\"\nline two"} for i in range(1, 31)]
    data = in_tmp / f"questions.{kind}"
    if kind == "csv":
        write_csv(data, rows)
    else:
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    schema = in_tmp / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    submitted = invoke("submit", str(data), "--template", "{q}", "--model", "echo", "--system", "Be brief.",
                       "--json-schema", f"@{schema}", "--wait", "--interval", "0.1", "-o", "raw.jsonl")  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    batch_id = submitted.stdout.splitlines()[0].strip()
    assert "Prepared 30 requests from" in submitted.stderr
    joined = invoke("download", batch_id, "--join", "-o", "answers.jsonl")  # the recorded data file
    assert joined.exit_code == 0, joined.output
    out = [json.loads(line) for line in (in_tmp / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["q"] for r in out] == [r["q"] for r in rows]
    assert all(r["answer"] == "echo: " + r["q"] and r["batch_id"] == batch_id for r in out)
    assert not list((Path.cwd() / ".batchctl-join").parent.glob(".batchctl-join-*"))  # scratch files gone
    # The same command again attaches to the job: nothing is uploaded twice.
    again = invoke("submit", str(data), "--template", "{q}", "--model", "echo", "--system", "Be brief.",
                   "--json-schema", f"@{schema}")  # fmt: skip
    assert again.exit_code == 0 and "attaching" in again.stderr and len(server_batches(small)) == 1
    # The prepared requests went once --wait saw every request succeed; without --wait they stay (for retry).
    from batchctl.config import data_dir

    kept = list((data_dir() / "prepared").glob("*/*.requests.jsonl"))
    assert [p.name for p in kept] == [f"questions.requests.jsonl"]
    with Journal.open() as journal:
        assert journal.jobs()[0].input_path == str(kept[0].resolve())


def test_a_missing_column_fails_before_anything_is_uploaded(small, in_tmp):
    data = write_csv(in_tmp / "d.csv", tricky_rows(5))
    result = invoke("submit", str(data), "--template", "About {title}: {text}", "--model", "echo")
    assert result.exit_code == 1
    assert "--template names column 'title', not in d.csv; its columns are: sku, text, note" in result.stderr
    assert httpx.get(small.base_url + "/files").json()["data"] == [] and server_batches(small) == []


def test_a_gbk_table_submits_and_joins_with_encoding_and_is_refused_clearly_without(small, in_tmp):
    (in_tmp / "gbk.csv").write_bytes("id,text\n1,质量很好\n2,一般\n".encode("gbk"))  # Excel "CSV", Chinese Windows
    refused = invoke("submit", "gbk.csv", "--template", "{text}", "--model", "echo")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: gbk.csv is not UTF-8 text (line 2 holds the byte 0xd6") and "--encoding gbk" in refused.stderr
    assert httpx.get(small.base_url + "/files").json()["data"] == [] and server_batches(small) == []

    submitted = invoke("submit", "gbk.csv", "--template", "{text}", "--model", "echo", "--encoding", "gbk",
                       "--wait", "--interval", "0.1", "-o", "raw.jsonl")  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    joined = invoke("download", "last", "--join", "-o", "answers.csv")  # the encoding is the job's
    assert joined.exit_code == 0, joined.output
    assert [(r["text"], r["answer"]) for r in read_csv(in_tmp / "answers.csv")] == [("质量很好", "echo: 质量很好"), ("一般", "echo: 一般")]

    batch_id = server_batches(small)[0]["id"]
    (in_tmp / "copy.csv").write_bytes((in_tmp / "gbk.csv").read_bytes())  # another file: the job's encoding is not its
    plain = invoke("download", batch_id, "--join", "copy.csv", "-o", "again.csv")
    assert plain.exit_code == 1 and plain.stderr.startswith("Error: copy.csv is not UTF-8 text") and not (in_tmp / "again.csv").exists()
    named = invoke("download", batch_id, "--join", "copy.csv", "--encoding", "gbk", "-o", "again.csv")
    assert named.exit_code == 0, named.output
    assert read_csv(in_tmp / "again.csv") == read_csv(in_tmp / "answers.csv")
    assert invoke("download", batch_id, "--encoding", "gbk").exit_code == 2  # --join's option only


def test_encoding_utf16_without_a_bom_and_a_codec_that_is_no_text_encoding_are_said_in_words(in_tmp):
    """`--encoding utf-16` on a file without the byte-order mark raised `unexpected UnicodeError: UTF-16
    stream does not start with BOM`; `--encoding rot13` (or hex, base64) `unexpected LookupError`."""
    (in_tmp / "plain.csv").write_text("text\nhello\n", encoding="utf-8")
    (in_tmp / "plain.jsonl").write_text('{"text": "hello"}\n', encoding="utf-8")
    for data in ("plain.csv", "plain.jsonl"):
        for encoding in ("utf-16", "utf-32"):
            result = invoke("prepare", data, "--template", "{text}", "--model", "m", "--encoding", encoding, "-o", "out.jsonl")
            assert result.exit_code == 1, (data, encoding, result.stderr)
            assert "unexpected" not in result.stderr and "does not start with the byte-order mark" in result.stderr, result.stderr
            assert f"--encoding {encoding}-le" in result.stderr
            assert not (in_tmp / "out.jsonl").exists()
    for codec in ("rot13", "hex", "base64"):
        result = invoke("prepare", "plain.csv", "--template", "{text}", "--model", "m", "--encoding", codec, "-o", "out.jsonl")
        assert result.exit_code == 2 and f"{codec!r} is not a text encoding" in result.stderr, result.stderr
    (in_tmp / "le.csv").write_bytes("text\nhello\n".encode("utf-16-le"))  # no BOM: the byte order named
    assert invoke("prepare", "le.csv", "--template", "{text}", "--model", "m", "--encoding", "utf-16-le", "-o", "le.jsonl").exit_code == 0

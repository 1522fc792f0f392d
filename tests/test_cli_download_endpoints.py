"""`download --content` on every endpoint the echo model serves: moderations, responses, embeddings —
the answer each row gets and the success count the summary prints; `-o -` writes to stdout."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchctl.api import BatchClient
from batchctl.cli.app import app

pytestmark = pytest.mark.e2e
runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()


def run_batch(base_url: str, tmp_path: Path, endpoint: str, rows: list[dict]) -> str:
    path = tmp_path / f"in-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_text("".join(json.dumps({"method": "POST", "url": endpoint, **r}) + "\n" for r in rows), encoding="utf-8")
    with BatchClient(base_url) as client:
        file = client.files.create(path=path)
        batch_id = client.batches.create(input_file_id=file.id, endpoint=endpoint, completion_window="24h").id
        for _ in range(300):
            if client.batches.retrieve(batch_id).is_terminal:
                return batch_id
            time.sleep(0.05)
    raise AssertionError("the batch did not finish")


MODERATIONS = [
    {"custom_id": "one", "body": {"model": "omni-moderation-latest", "input": "a sentence"}},
    {"custom_id": "three", "body": {"model": "omni-moderation-latest", "input": ["a", "b", "c"]}},
    {"custom_id": "parts", "body": {"model": "omni-moderation-latest", "input": [{"type": "text", "text": "look"}]}},
]
RESPONSES = [
    {"custom_id": "plain", "body": {"model": "m", "input": "What is a batch?"}},
    {"custom_id": "items", "body": {"model": "m", "input": [{"role": "user", "content": "second"}]}},
]


@pytest.fixture
def served(server, in_tmp):
    return server


def test_content_of_a_moderations_batch(served, tmp_path):
    batch_id = run_batch(served.base_url, tmp_path, "/v1/moderations", MODERATIONS)
    result = runner.invoke(app, ["download", batch_id, "--content", "-o", "m.jsonl"])
    assert result.exit_code == 0, result.output
    rows = {r["custom_id"]: r for r in map(json.loads, Path("m.jsonl").read_text().splitlines())}
    assert set(rows) == {"one", "three", "parts"}
    for row in rows.values():
        assert row["error"] is None
        assert set(row) == {"custom_id", "results", "error"}
        assert isinstance(row["results"], list) and all("flagged" in x and "categories" in x for x in row["results"])
    assert [len(rows[c]["results"]) for c in ("one", "three", "parts")] == [1, 3, 1]
    assert "3 succeeded" in result.output and "0 succeeded" not in result.output

    as_csv = runner.invoke(app, ["download", batch_id, "--content", "--format", "csv", "-o", "m.csv", "--json"])
    assert as_csv.exit_code == 0, as_csv.output
    with open("m.csv", encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["custom_id"] for r in table] == ["one", "three", "parts"]
    assert all(r["results"] and json.loads(r["results"])[0]["flagged"] is False for r in table)
    bill = json.loads(as_csv.stdout)["bill"]
    assert bill["usage"]["succeeded"] == 3 and bill["usage"]["failed"] == 0, bill


def test_content_of_a_responses_batch(served, tmp_path):
    batch_id = run_batch(served.base_url, tmp_path, "/v1/responses", RESPONSES)
    result = runner.invoke(app, ["download", batch_id, "--content", "-o", "r.jsonl"])
    assert result.exit_code == 0, result.output
    rows = {r["custom_id"]: r for r in map(json.loads, Path("r.jsonl").read_text().splitlines())}
    assert rows["plain"]["content"] == "echo: What is a batch?"
    assert rows["items"]["content"] == "echo: second"
    assert "2 succeeded" in result.output and "0 succeeded" not in result.output


def test_dash_output_writes_the_answers_to_stdout(served, tmp_path):
    batch_id = run_batch(served.base_url, tmp_path, "/v1/moderations", MODERATIONS)
    result = runner.invoke(app, ["download", batch_id, "--content", "-o", "-"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # only the answers on stdout
    assert [r["custom_id"] for r in rows] == ["one", "three", "parts"]
    assert "Answers (jsonl): - (3 rows)" in result.stderr and "3 succeeded" in result.stderr
    assert not Path("-").exists() and list(Path().iterdir()) == []

    as_csv = runner.invoke(app, ["download", batch_id, "--content", "--format", "csv", "-o", "-"])
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout.lstrip("\ufeff"))))
    assert [r["custom_id"] for r in table] == ["one", "three", "parts"]

    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps({"method": "POST", "url": "/v1/moderations", **r}) + "\n" for r in MODERATIONS))
    merged = runner.invoke(app, ["download", batch_id, "--merge", str(source), "-o", "-"])
    assert merged.exit_code == 0, merged.output
    assert [json.loads(line)["custom_id"] for line in merged.stdout.splitlines()] == ["one", "three", "parts"]
    assert not Path("-").exists()


def test_dash_output_is_refused_where_it_makes_no_sense(served, tmp_path):
    batch_id = run_batch(served.base_url, tmp_path, "/v1/moderations", MODERATIONS[:1])
    plain = runner.invoke(app, ["download", batch_id, "-o", "-"])
    assert plain.exit_code == 2 and "needs --content, --merge or --join" in plain.output
    with_json = runner.invoke(app, ["download", batch_id, "--content", "-o", "-", "--json"])
    assert with_json.exit_code == 2 and "--json" in with_json.output
    assert not Path("-").exists()

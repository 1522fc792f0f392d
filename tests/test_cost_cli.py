"""`batchctl usage`, price overrides from the config, and how cost reads to people."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batch_factory import create_batch
from batchctl.api import BatchClient
from batchctl.cli.app import app
from batchctl.cost.estimate import estimate_line
from batchctl.cost.estimate import estimate_file
from batchctl.cost.prices import BUILTIN_PRICES, PriceTable, format_money, price_table
from batchctl.errors import ConfigError
from batchctl.server.echo import echo_should_fail

runner = CliRunner()
REQUIRED_MODELS = ["qwen-turbo", "qwen-plus", "qwen-max", "qwen-flash", "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini",
                   "text-embedding-3-small", "text-embedding-3-large"]  # fmt: skip


def write_results(path: Path) -> Path:
    ok = {"custom_id": "a", "response": {"status_code": 200, "body": {"model": "qwen-plus", "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}}}
    bad = {"custom_id": "b", "response": {"status_code": 400, "body": {"error": {"code": "invalid_value", "message": "max_tokens too big"}}}}
    path.write_text(json.dumps(ok) + "\n" + json.dumps(bad) + "\n")
    return path


def test_price_table_covers_the_common_models():
    for model in REQUIRED_MODELS:
        price = BUILTIN_PRICES[model]
        assert price.currency == ("CNY" if model.startswith("qwen") else "USD")
        assert price.batch_discount == 0.5 and price.as_of and price.source.startswith("https://")
    table = PriceTable(BUILTIN_PRICES)
    assert table.lookup("gpt-4o-2024-08-06") is BUILTIN_PRICES["gpt-4o"]
    assert table.lookup("qwen-max-latest") is BUILTIN_PRICES["qwen-max"]
    assert table.lookup("openai/gpt-4.1-mini") is BUILTIN_PRICES["gpt-4.1-mini"]
    assert table.lookup("nobody-knows") is None


def test_profile_prices_override_and_extend(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.work]\nbase_url = "https://api.example.com/v1"\n'
        '[profiles.work.prices]\nconfirm_above = 25\n'
        '"gpt-4o" = { input = 2.0 }\n'
        '"my-model" = { input = 1.0, output = 3.0, currency = "EUR", batch_discount = 0.4 }\n'
    )
    table = price_table("work", config_file=config)
    assert table.confirm_above == 25.0 and table.overridden_by == "work"
    assert table.lookup("gpt-4o").input == 2.0 and table.lookup("gpt-4o").output == 10.0  # the rest kept
    mine = table.lookup("my-model")
    assert (mine.currency, mine.batch_discount, mine.as_of) == ("EUR", 0.4, "profile work")
    assert mine.cost(1_000_000, 1_000_000) == pytest.approx(4.0 * 0.6)
    assert price_table("other", config_file=config).lookup("gpt-4o").input == 2.5
    assert price_table(None).prices is BUILTIN_PRICES


@pytest.mark.parametrize(
    "entry", ['"x" = 3', '"x" = { input = 1 }', '"x" = { input = -1, output = 1 }', '"x" = { input = 1, output = 1, foo = 2 }',
              'confirm_above = "lots"', '"x" = { input = 1, output = 1, batch_discount = 2 }'],
)  # fmt: skip
def test_bad_price_entries_are_config_errors(tmp_path, entry):
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.work]\nbase_url = "https://api.example.com/v1"\n[profiles.work.prices]\n{entry}\n')
    with pytest.raises(ConfigError) as excinfo:
        price_table("work", config_file=config)
    assert "[profiles.work.prices]" in excinfo.value.message


def test_format_money():
    assert format_money(1.5, "USD") == "$1.50"
    assert format_money(0.0123, "CNY") == "¥0.0123"
    assert format_money(0.7, "USD") == "$0.70"
    assert format_money(0.000456, "USD") == "$0.000456"
    assert format_money(0.00001, "USD") == "< $0.0001"
    assert format_money(3, "EUR") == "3.00 EUR"
    assert format_money(None, "USD") == "unknown"


def test_estimate_line(tmp_path):
    path = tmp_path / "in.jsonl"
    rows = [{"custom_id": str(i), "url": "/v1/chat/completions", "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": "你好"}], "max_tokens": 100}} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = estimate_line(estimate_file(path, prices=PriceTable(BUILTIN_PRICES)))
    assert line.startswith("3 requests, ~") and "output up to 300 tokens; batch ≤ ¥" in line
    assert f"prices of {BUILTIN_PRICES['qwen-plus'].as_of}" in line
    path.write_text(json.dumps({"custom_id": "1", "body": {"model": "nope", "messages": []}}) + "\n")
    line = estimate_line(estimate_file(path, prices=PriceTable(BUILTIN_PRICES)))
    assert "output unbounded (1 request sets no max_tokens)" in line and "no price for nope: tokens only" in line


def test_usage_of_local_files_json_and_human(tmp_path):
    path = write_results(tmp_path / "r.jsonl")
    result = runner.invoke(app, ["usage", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["usage"]["total_tokens"] == 1500 and data["usage"]["currency"] == "CNY"
    assert data["usage"]["cost"] == pytest.approx((1000 * 0.8 + 500 * 2.0) / 1e6 / 2)
    assert data["failures"]["by_code"] == [{"code": "invalid_value", "status": 400, "count": 1, "retryable": False}]

    result = runner.invoke(app, ["usage", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 succeeded, 1 failed" in result.stdout and "1,000" in result.stdout
    assert "Cost (batch)" in result.stdout and "saved ¥" in result.stdout
    assert "1 × invalid_value (HTTP 400)" in result.stdout and "e.g. b" in result.stdout
    assert "Next: Fix the failed requests" in result.stderr


def test_usage_shows_zero_successes_as_a_problem(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "expired"}}) + "\n")
    result = runner.invoke(app, ["usage", str(path)])
    assert result.exit_code == 0, result.output
    assert "Problem: none of 1 requests succeeded." in result.stdout
    assert "batchctl retry" in result.stderr
    data = json.loads(runner.invoke(app, ["usage", str(path), "--json"]).stdout)
    assert data["problem"] == "no request succeeded" and data["failures"]["no_success"] is True


FAILING = sorted(f"req-{i}" for i in range(1, 21) if echo_should_fail(f"req-{i}", 0.3))


@pytest.fixture
def finished_batch(start_server, tmp_path):
    """(server, batch): 20 requests on a server that fails some of them (by custom_id), finished."""
    server = start_server(latency=0.0, failure_rate=0.3)
    batch_id = create_batch(server.base_url, tmp_path, 20)
    with BatchClient(server.base_url) as client:
        for _ in range(200):
            batch = client.batches.retrieve(batch_id)
            if batch.is_terminal:
                return server, batch
            time.sleep(0.05)
    raise AssertionError("the batch did not finish")


@pytest.mark.e2e
def test_usage_of_a_batch_id_streams_its_files(finished_batch, monkeypatch, in_tmp):
    server, batch = finished_batch
    monkeypatch.setenv("BATCHCTL_BASE_URL", server.base_url)
    result = runner.invoke(app, ["usage", batch.id, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["batches"][0]["id"] == batch.id
    assert data["failures"]["failed"] == len(FAILING)
    assert data["usage"]["source"] == "batch object"  # the local server reports usage, as OpenAI does
    assert data["usage"]["input_tokens"] == batch.usage.input_tokens > 0
    assert data["usage"]["unknown_models"] == ["echo"] and data["usage"]["cost"] is None
    assert not list(in_tmp.iterdir())  # nothing saved


@pytest.mark.e2e
def test_status_and_download_wiring_against_a_server(finished_batch, tmp_path):
    """The calls the lead wires into `status` (failures_for_batch) and `download` (bill_for_download)."""
    from batchctl.cost.bill import bill_for_download, failures_for_batch
    from batchctl.results import save_results

    server, batch = finished_batch
    with BatchClient(server.base_url) as client:
        summary = failures_for_batch(client, batch)
        assert summary is not None and summary.failed == len(FAILING) and summary.succeeded == 20 - len(FAILING)
        assert summary.batch_ids == [batch.id]
        saved = save_results(client, batch, output=tmp_path / "r.jsonl", errors_output=tmp_path / "r.errors.jsonl")
    bill = bill_for_download(saved, batch)
    assert bill.failures.failed == len(FAILING) and bill.usage.total("total_tokens") > 0
    assert bill.to_dict()["failures"]["top_messages"][0]["example_custom_id"] in FAILING


def test_an_amount_too_small_to_show_reads_as_under_it_not_as_two_signs():
    from batchctl.cost.estimate import _at_least, _at_most

    assert _at_most("< $0.0001") == "< $0.0001" and _at_most("$0.02") == "≤ $0.02"
    assert _at_least("< ¥0.0001") == "from < ¥0.0001" and _at_least("¥1.50") == "≥ ¥1.50"


def test_usage_refuses_a_missing_file_and_an_input_file(tmp_path):
    """A path that is no file is not looked up as a batch id, and requests are no results (their bill
    would be all failures)."""
    missing = runner.invoke(app, ["usage", str(tmp_path / "nosuch.jsonl")])
    assert missing.exit_code == 1 and f"Error: no such file: {tmp_path / 'nosuch.jsonl'}" in missing.stderr
    from batchctl.cli.commands.usage import _check_file_target

    _check_file_target("batches/abc123")  # gemini's batch ids hold a `/`: an id, asked of the server
    requests = tmp_path / "in.jsonl"
    requests.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                                    "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}) + "\n")  # fmt: skip
    refused = runner.invoke(app, ["usage", str(requests)])
    assert refused.exit_code == 1
    assert f"Error: {requests} is a batch input file (requests), not results" in refused.stderr
    (tmp_path / "adir").mkdir()
    directory = runner.invoke(app, ["usage", str(tmp_path / "adir")])  # not an id the server is asked about
    assert directory.exit_code == 1 and f"Error: {tmp_path / 'adir'} is a directory" in directory.stderr
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\n" * 3)
    unreadable = runner.invoke(app, ["usage", str(binary)])  # exited 0 with "1 x unreadable_line"
    assert unreadable.exit_code == 1 and f"Error: {binary} is not a result file: its first line is not JSON" in unreadable.stderr
    assert f"batchctl validate {requests} estimates its cost" in refused.stderr


def test_usage_of_an_empty_result_file_is_an_empty_bill_not_a_refusal(tmp_path):
    """`download` saves an empty output file as it is (a batch whose output file has no lines): `usage` of it
    said "is not a result file: its first line is not JSON"."""
    empty = tmp_path / "out.jsonl"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["usage", "--json", str(empty)])
    assert result.exit_code == 0, result.stderr
    assert "not a result file" not in result.stderr


def test_usage_of_a_named_pipe_says_what_it_is_not_no_such_file(tmp_path):
    import os

    fifo = tmp_path / "results.jsonl"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["usage", str(fifo)])
    assert result.exit_code == 1 and f"Error: {fifo} is not a regular file" in result.stderr, result.stderr

"""`batchctl profile price set/list/remove`: a profile's prices in the config, and the estimate using them."""

from __future__ import annotations

import json
import stat
import tomllib

import pytest
from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app
from batchctl.config import config_path
from batchctl.cost.prices import BUILTIN_PRICES

runner = CliRunner()


def invoke(*args: str, ok: bool = True):
    result = runner.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def work():
    invoke("profile", "add", "work", "--base-url", "https://api.example.com/v1", "--api-key", "sk-test")
    invoke("profile", "add", "other", "--base-url", "https://api.example.com/v1", "--api-key", "sk-test", "--no-use")


def prices_in_config(profile: str) -> dict:
    return tomllib.loads(config_path().read_text())["profiles"][profile].get("prices", {})


def test_set_list_remove_round_trip(work):
    shown = invoke("profile", "price", "set", "qwen-plus", "--input", "0.4", "--output", "1.2", "--currency", "usd",
                   "--as-of", "2025-09-01")  # fmt: skip
    assert "qwen-plus: input $0.40, output $1.20" in shown.stdout and "Saved" in shown.stderr
    assert prices_in_config("work") == {"qwen-plus": {"input": 0.4, "output": 1.2, "currency": "USD", "as_of": "2025-09-01"}}
    assert stat.S_IMODE(config_path().stat().st_mode) == 0o600
    # a second set changes one field and keeps the others; another profile is untouched (-p after the command)
    invoke("profile", "price", "set", "qwen-plus", "--output", "1.5", "--batch-discount", "0.4")
    assert prices_in_config("work")["qwen-plus"]["input"] == 0.4 and prices_in_config("work")["qwen-plus"]["output"] == 1.5
    invoke("profile", "price", "set", "my-ft", "--input", "3", "--output", "12", "-p", "other")
    assert set(prices_in_config("other")) == {"my-ft"} and "my-ft" not in prices_in_config("work")

    listed = json.loads(invoke("profile", "price", "list", "--json").stdout)
    assert listed["profile"] == "work" and listed["confirm_above"] is None
    by_model = {e["model"]: e for e in listed["prices"]}
    assert set(BUILTIN_PRICES) <= set(by_model)
    assert by_model["qwen-plus"]["overridden"] and by_model["qwen-plus"]["currency"] == "USD"
    assert by_model["qwen-plus"]["batch_discount"] == 0.4 and by_model["qwen-plus"]["as_of"] == datetime_today()
    assert "[profiles.work.prices]" in by_model["qwen-plus"]["source"]
    assert not by_model["gpt-4o"]["overridden"] and by_model["gpt-4o"]["source"].startswith("https://")
    human = invoke("profile", "price", "list").stdout
    assert "qwen-plus" in human and "$1.50" in human and "2025-08-01" in human

    removed = invoke("profile", "price", "remove", "qwen-plus")
    assert "built in: qwen-plus: input ¥0.80" in removed.stderr
    assert prices_in_config("work") == {}
    again = invoke("profile", "price", "remove", "qwen-plus", ok=False)
    assert again.exit_code == 1 and "sets no price for 'qwen-plus'" in again.output


def datetime_today() -> str:
    import datetime

    return datetime.date.today().isoformat()


def test_bad_prices_are_refused(work):
    missing = invoke("profile", "price", "set", "my-ft", "--input", "3", ok=False)
    assert missing.exit_code == 1 and "give --output" in missing.output
    assert invoke("profile", "price", "set", "x", "--input", "1", "--output", "1", "--currency", "dollars", ok=False).exit_code == 1
    assert invoke("profile", "price", "set", "x", "--input", "-1", "--output", "1", ok=False).exit_code == 2
    assert invoke("profile", "price", "set", "x", "--input", "1", "--output", "1", "--batch-discount", "2", ok=False).exit_code == 2
    builtin = invoke("-p", "local", "profile", "price", "set", "x", "--input", "1", "--output", "1", ok=False)
    assert builtin.exit_code == 1 and "built in" in builtin.output
    assert prices_in_config("work") == {}


def test_the_estimate_uses_the_profile_price(work, tmp_path):
    source = write_requests(tmp_path / "in.jsonl", 4, model="my-ft")
    before = json.loads(invoke("validate", str(source), "--json").stdout)["estimate"]
    assert before["unknown_models"] == ["my-ft"] and before["cost"]["batch_input"] is None
    invoke("profile", "price", "set", "my-ft", "--input", "2", "--output", "8", "--currency", "CNY", "--batch-discount", "0.4")
    after = json.loads(invoke("validate", str(source), "--json").stdout)["estimate"]
    assert after["unknown_models"] == [] and after["currency"] == "CNY"
    assert after["cost"]["batch_input"] == pytest.approx(after["input_tokens"] * 2 / 1e6 * 0.6)
    assert after["prices"]["my-ft"]["as_of"] == datetime_today()
    other = json.loads(invoke("-p", "other", "validate", str(source), "--json").stdout)["estimate"]
    assert other["unknown_models"] == ["my-ft"]


def test_a_new_currency_needs_both_prices_not_a_relabelled_kept_one(work):
    """`--input 1 --currency USD` on qwen-plus (built in, in CNY) kept the built-in output ¥2.00 and showed
    it as $2.00, about 7x the price, in estimates, --max-cost and bills."""
    assert BUILTIN_PRICES["qwen-plus"].currency == "CNY"
    refused = invoke("profile", "price", "set", "qwen-plus", "--input", "1", "--currency", "USD", ok=False)
    assert refused.exit_code == 1
    assert "Error: qwen-plus's output price is in CNY: --currency USD needs --output too" in refused.stderr
    assert prices_in_config("work") == {}  # nothing saved
    invoke("profile", "price", "set", "qwen-plus", "--input", "1", "--output", "3", "--currency", "USD")
    invoke("profile", "price", "set", "qwen-plus", "--output", "4")  # the same currency: one price may change
    assert prices_in_config("work")["qwen-plus"]["output"] == 4 and prices_in_config("work")["qwen-plus"]["currency"] == "USD"


def test_max_cost_without_a_price_names_the_command_that_adds_one(work, tmp_path):
    source = write_requests(tmp_path / "chat.jsonl", 3)  # model echo: no built-in price
    result = invoke("submit", str(source), "--max-cost", "1", ok=False)
    assert result.exit_code == 1, result.output
    assert "cannot check --max-cost: no price for model echo" in result.stderr
    assert "batchctl profile price set echo --input N --output N" in result.stderr

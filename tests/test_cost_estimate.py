"""The estimate before a batch: tokens on known inputs, the output bound, prices, --max-cost, confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchctl.cost import tokens
from batchctl.cost.estimate import DEFAULT_CONFIRM_ABOVE, check_max_cost, confirmation_question, estimate_file
from batchctl.cost.prices import BUILTIN_PRICES, PriceTable
from batchctl.cost.tokens import message_overhead
from batchctl.errors import BatchctlError

FIXTURES = Path(__file__).parent / "fixtures" / "cost"
SAMPLE = [json.loads(line) for line in (FIXTURES / "token_sample.jsonl").read_text(encoding="utf-8").splitlines()]
EXACT = json.loads((FIXTURES / "token_counts.json").read_text())["counts"]["fitted"]
PRICES = PriceTable(BUILTIN_PRICES)
FILE_ERROR = 0.10  # docs/cost.md: the heuristic's error on a whole file's input tokens


def chat_file(path: Path, texts: list[str], model: str, max_tokens: int | None = None) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            body: dict = {"model": model, "messages": [{"role": "user", "content": text}]}
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
            f.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def heuristic_only(monkeypatch):
    """As on a machine without `batchctl[tokens]`."""
    monkeypatch.setattr(tokens, "_exact_counter", lambda family: None)


@pytest.mark.parametrize("lang", ["en", "zh", "mixed"])
@pytest.mark.parametrize(("model", "family"), [("gpt-4o-mini", "o200k_base"), ("qwen-plus", "qwen")])
def test_heuristic_estimate_within_documented_error(heuristic_only, tmp_path, lang, model, family):
    picked = [i for i, row in enumerate(SAMPLE) if row["lang"] == lang]
    path = chat_file(tmp_path / "in.jsonl", [SAMPLE[i]["text"] for i in picked], model)
    estimate = estimate_file(path, prices=PRICES)
    exact = sum(EXACT[family][i] for i in picked) + len(picked) * message_overhead(model, 1)
    assert estimate.method == "heuristic"
    assert estimate.requests == len(picked)
    assert abs(estimate.input_tokens - exact) / exact <= FILE_ERROR, (estimate.input_tokens, exact)
    assert estimate.output_bound is None and estimate.unbounded_requests == len(picked)


def test_exact_estimate_when_installed(tmp_path):
    path = chat_file(tmp_path / "in.jsonl", [row["text"] for row in SAMPLE], "gpt-4o", max_tokens=100)
    estimate = estimate_file(path, prices=PRICES)
    if not tokens.exact_available("gpt-4o"):
        assert estimate.method == "heuristic"
        return
    assert estimate.method == "exact (o200k_base, quicktok)"
    assert estimate.input_tokens == sum(EXACT["o200k_base"]) + len(SAMPLE) * message_overhead("gpt-4o", 1)


def test_output_bound_and_costs(heuristic_only, tmp_path):
    path = chat_file(tmp_path / "in.jsonl", ["hello world"] * 4, "gpt-4o-mini", max_tokens=1000)
    estimate = estimate_file(path, prices=PRICES)
    assert estimate.output_bound == 4000
    price = BUILTIN_PRICES["gpt-4o-mini"]
    expected_max = (estimate.input_tokens * price.input + 4000 * price.output) / 1e6
    assert estimate.cost("realtime_max") == pytest.approx(expected_max)
    assert estimate.cost("batch_max") == pytest.approx(expected_max / 2)
    data = estimate.to_dict()
    assert data["currency"] == "USD" and data["output_tokens_max"] == 4000
    assert data["prices_as_of"] == [price.as_of]
    assert data["prices"]["gpt-4o-mini"]["source"].startswith("https://")


def test_other_endpoints_and_limits(heuristic_only, tmp_path):
    lines = [
        {"custom_id": "a", "url": "/v1/responses", "body": {"model": "gpt-4.1", "input": "hi there", "max_output_tokens": 50}},
        {"custom_id": "b", "url": "/v1/chat/completions", "body": {"model": "gpt-4.1", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "max_completion_tokens": 20, "n": 2}},
    ]  # fmt: skip
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    estimate = estimate_file(path, prices=PRICES)
    assert estimate.requests == 2 and estimate.output_bound == 50 + 40
    emb = tmp_path / "emb.jsonl"
    emb.write_text(json.dumps({"custom_id": "e", "url": "/v1/embeddings", "body": {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4, 5]]}}) + "\n")
    estimate = estimate_file(emb, prices=PRICES)
    assert (estimate.input_tokens, estimate.output_bound, estimate.method) == (5, 0, "exact (token ids)")


def test_model_override_and_unknown_model(heuristic_only, tmp_path):
    path = chat_file(tmp_path / "in.jsonl", ["你好，世界"], "my-finetune")
    estimate = estimate_file(path, prices=PRICES)
    assert estimate.unknown_models == ["my-finetune"] and estimate.currency is None
    assert estimate.to_dict()["cost"]["batch_max"] is None
    estimate = estimate_file(path, model_override="qwen-plus", prices=PRICES)
    assert estimate.currency == "CNY" and estimate.unknown_models == []


def test_check_max_cost(heuristic_only, tmp_path):
    bounded = estimate_file(chat_file(tmp_path / "a.jsonl", ["hi"] * 10, "gpt-4o", max_tokens=1000), prices=PRICES)
    most = bounded.cost("batch_max")
    assert check_max_cost(bounded, None) is None
    assert check_max_cost(bounded, most * 2) is None
    error = check_max_cost(bounded, most / 2)
    assert isinstance(error, BatchctlError) and "nothing was uploaded" in error.message and error.hint

    unbounded = estimate_file(chat_file(tmp_path / "b.jsonl", ["hi"], "gpt-4o"), prices=PRICES)
    error = check_max_cost(unbounded, 100.0)
    assert error is not None and "no upper bound" in error.message

    unknown = estimate_file(chat_file(tmp_path / "c.jsonl", ["hi"], "mystery", max_tokens=5), prices=PRICES)
    error = check_max_cost(unknown, 100.0)
    assert error is not None and "no price for model mystery" in error.message


def test_confirmation_question(heuristic_only, tmp_path):
    big = estimate_file(chat_file(tmp_path / "a.jsonl", ["hi"] * 100, "gpt-4o", max_tokens=100_000), prices=PRICES)
    assert big.cost("batch_max") > DEFAULT_CONFIRM_ABOVE
    assert "Submit it?" in confirmation_question(big)
    assert confirmation_question(big, None) is None
    assert confirmation_question(big, 1e9) is None
    small = estimate_file(chat_file(tmp_path / "b.jsonl", ["hi"], "gpt-4o"), prices=PRICES)
    assert confirmation_question(small) is None  # input alone is cheap; unbounded output does not ask
    assert "output unbounded" in confirmation_question(small, 0.0)


def test_check_before_submit_refuses_and_asks(heuristic_only, tmp_path, monkeypatch):
    from batchctl.cost.estimate import check_before_submit

    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "config.toml").write_text(
        '[profiles.work]\nbase_url = "https://api.example.com/v1"\n[profiles.work.prices]\nconfirm_above = 0.001\n'
    )
    monkeypatch.setenv("BATCHCTL_CONFIG_DIR", str(config))
    path = chat_file(tmp_path / "in.jsonl", ["hi"] * 10, "gpt-4o", max_tokens=1000)
    asked: list[str] = []

    def no(question: str) -> bool:
        asked.append(question)
        return False

    with pytest.raises(BatchctlError, match="nothing was uploaded"):
        check_before_submit(path, profile="work", max_cost=0.001)
    with pytest.raises(BatchctlError, match="not confirmed"):
        check_before_submit(path, profile="work", confirm=no)
    assert asked and "Submit it?" in asked[0]
    estimate = check_before_submit(path, profile="work", confirm=lambda q: True, max_cost=100)
    assert estimate.confirm_above == 0.001 and estimate.requests == 10
    assert check_before_submit(path, profile="work", confirm=None).requests == 10  # --yes / no terminal
    assert check_before_submit(path).confirm_above == DEFAULT_CONFIRM_ABOVE  # no profile: built-in prices

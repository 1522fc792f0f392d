"""`validate` counts the estimate in its own pass (each line parsed once) and shows what `estimate_file`,
the estimate's standalone pass, gives for the same file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import batchctl.jsonfast
from batchctl.cli.app import app
from batchctl.cost.estimate import EstimateTally, estimate_file
from batchctl.cost.prices import price_table
from batchctl.providers import get_provider
from batchctl.validation import fastlane, validate_file

runner = CliRunner()


def request(i: int, url: str, body: dict) -> str:
    return json.dumps({"custom_id": f"r{i}", "method": "POST", "url": url, "body": body}, ensure_ascii=False)


def mixed_file(path: Path) -> Path:
    """Chat (text, parts, names, CJK, long words), responses, embeddings as text and as token ids."""
    lines = [
        request(0, "/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 50, "messages": [
            {"role": "system", "content": "Be brief.\n\nAnswer in 数据 style."},
            {"role": "user", "name": "ana", "content": [{"type": "text", "text": "Résumé of internationalization: 12345!!"}]}]}),
        request(1, "/v1/chat/completions", {"model": "qwen-plus", "n": 2, "max_completion_tokens": 7,
                                            "messages": [{"role": "user", "content": "今天天气很好 — naïve 3.14159"}]}),
        request(2, "/v1/chat/completions", {"model": "my-own-model", "messages": [{"role": "user", "content": "hi"}]}),
        request(3, "/v1/responses", {"model": "gpt-4.1", "input": "Summarise ___ this", "instructions": "Короче."}),
        request(4, "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["one", "two 二"]}),
        request(5, "/v1/embeddings", {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4]]}),
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_validation_pass_tallies_what_estimate_file_counts(tmp_path):
    path = mixed_file(tmp_path / "mixed.jsonl")
    prices = price_table(None)
    standalone = estimate_file(path, prices=prices)
    tally = EstimateTally(path)
    validate_file(path, spec=get_provider("openai"), per_request=tally.add)  # mixed endpoints: not valid, still tallied
    in_pass = tally.priced(prices)
    assert in_pass.to_dict() == standalone.to_dict()
    assert in_pass.requests == 6 and in_pass.unbounded_requests == 2 and in_pass.output_tokens_max == 64
    assert in_pass.by_model["text-embedding-3-small"].input_tokens > 4  # token ids counted as given (4) plus text


def test_validate_parses_each_line_once_and_shows_the_estimate(tmp_path, monkeypatch):
    path = tmp_path / "chat.jsonl"
    rows = [request(i, "/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 10,
                                                 "messages": [{"role": "user", "content": f"Question {i}: 数据 naïve?"}]})
            for i in range(40)]  # fmt: skip
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    expected = estimate_file(path, prices=price_table(None)).to_dict()

    parsed, typed = [], []
    real_parse, real_typed = batchctl.jsonfast.parse, fastlane.decode_chat_line
    monkeypatch.setattr(batchctl.jsonfast, "parse", lambda raw: parsed.append(raw) or real_parse(raw))
    monkeypatch.setattr(fastlane, "decode_chat_line", lambda raw: typed.append(raw) or real_typed(raw))
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert len(typed) == 40 and parsed == []  # one parse a line (the fast lane's): the estimate rode along
    data = json.loads(result.stdout)
    assert data["estimate"] == expected
    assert data["estimate"]["requests"] == 40 and data["estimate"]["output_tokens_max"] == 400


def test_an_invalid_file_shows_no_estimate(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(request(0, "/v1/chat/completions", {"model": "gpt-4o", "messages": []}) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["estimate"] is None


def test_submit_shows_the_estimate_of_its_validation_pass(server, in_tmp):
    """`submit --model` over real HTTP: the estimate counted while validating the rewritten copy is the
    standalone estimate of the user's file with that model."""
    from batchctl.cost.estimate import estimate_for_profile, estimate_line

    source = in_tmp / "requests.jsonl"
    rows = [request(i, "/v1/chat/completions", {"model": "gpt-4o-mini", "max_tokens": 20 + i,
                                                 "messages": [{"role": "user", "content": f"Résumé {i}, 数据\n\nok"}]})
            for i in range(12)]  # fmt: skip
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    expected = estimate_line(estimate_for_profile(source, model_override="qwen-plus"))
    result = runner.invoke(app, ["submit", str(source), "--model", "qwen-plus", "--yes"])
    assert result.exit_code == 0, result.output
    assert f"Estimate: {expected}" in result.stderr
    assert "12 requests" in expected and estimate_line(estimate_for_profile(source)) != expected  # the model counts

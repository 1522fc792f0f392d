"""Token counting: the heuristic against exact counts (a committed fixture), exact counts offline."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from batchctl.cost import tokens
from batchctl.cost.tokens import count_tokens, family_of, heuristic_tokens, message_overhead

FIXTURES = Path(__file__).parent / "fixtures" / "cost"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]


SAMPLES = {"fitted": load("token_sample.jsonl"), "held-out": load("token_holdout.jsonl")}
SAMPLE = SAMPLES["fitted"]
ALL_EXACT = json.loads((FIXTURES / "token_counts.json").read_text())["counts"]  # benchmarks/token_estimate.py
EXACT = ALL_EXACT["fitted"]

# The documented error of the heuristic (docs/cost.md): per text, and over a whole file's texts.
MAX_TEXT_ERROR = 0.45
MAX_TOTAL_ERROR = {"en": 0.05, "zh": 0.10, "mixed": 0.10, "all": 0.10}


def test_fixture_matches_samples():
    for name, sample in SAMPLES.items():
        assert set(ALL_EXACT[name]) == {"o200k_base", "cl100k_base", "qwen"}
        assert all(len(counts) == len(sample) for counts in ALL_EXACT[name].values())
        assert {row["lang"] for row in sample} == {"en", "zh", "mixed"}


@pytest.mark.parametrize("sample", ["fitted", "held-out"])
@pytest.mark.parametrize("family", ["o200k_base", "cl100k_base", "qwen"])
@pytest.mark.parametrize("lang", ["en", "zh", "mixed", "all"])
def test_heuristic_within_documented_error(sample, family, lang):
    texts, exact_counts = SAMPLES[sample], ALL_EXACT[sample][family]
    picked = [i for i, row in enumerate(texts) if lang in ("all", row["lang"])]
    guesses = {i: heuristic_tokens(texts[i]["text"], family) for i in picked}
    for i in picked:
        exact = exact_counts[i]
        assert abs(guesses[i] - exact) / exact <= MAX_TEXT_ERROR, (texts[i]["text"], guesses[i], exact)
    total_exact = sum(exact_counts[i] for i in picked)
    total_guess = sum(guesses.values())
    assert abs(total_guess - total_exact) / total_exact <= MAX_TOTAL_ERROR[lang], (total_guess, total_exact)


def test_heuristic_counts_cjk_apart():
    english, chinese = "the cat sat on the mat", "今天天气很好我们去公园"
    assert heuristic_tokens(english) == 6
    # cl100k spends about a token per character on Chinese, o200k and Qwen fewer
    assert heuristic_tokens(chinese, "cl100k_base") > heuristic_tokens(chinese, "o200k_base")
    assert heuristic_tokens(chinese, "o200k_base") == round(len(chinese) * 0.74)
    assert heuristic_tokens("") == 0
    assert heuristic_tokens("12345678", "qwen") == 8  # Qwen splits numbers digit by digit
    assert heuristic_tokens("12345678", "o200k_base") == 3


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-mini", "o200k_base"), ("gpt-4.1-2025-04-14", "o200k_base"), ("o4-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"), ("text-embedding-3-small", "cl100k_base"),
        ("qwen-plus", "qwen"), ("Qwen/Qwen2.5-7B-Instruct", "qwen"), ("llama-3", None), (None, None),
    ],
)  # fmt: skip
def test_family_of(model, family):
    assert family_of(model) == family


def test_unknown_model_uses_the_heuristic():
    assert count_tokens("hello world", "my-own-model") == (heuristic_tokens("hello world"), "heuristic")
    assert count_tokens("hello world", "gpt-4o", exact=False)[1] == "heuristic"


def test_exact_counts_when_a_tokenizer_is_installed_else_heuristic():
    """With `batchctl[tokens]` the counts are the fixture's exactly; without it, the method says heuristic."""
    for family, model in (("o200k_base", "gpt-4o"), ("cl100k_base", "gpt-4"), ("qwen", "qwen-plus")):
        for i, row in enumerate(SAMPLE[:5] + SAMPLE[15:20]):
            n, method = count_tokens(row["text"], model)
            index = SAMPLE.index(row)
            if tokens.exact_available(model):
                assert method.startswith("exact"), method
                assert n == EXACT[family][index]
            else:
                assert method == "heuristic"
                assert n == heuristic_tokens(row["text"], family)


def test_nothing_is_downloaded(monkeypatch):
    """Counting never opens a connection: with sockets refused, loading every tokenizer afresh works."""

    def refuse(*args, **kwargs):
        raise AssertionError("token counting tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    tokens._exact_counter.cache_clear()
    try:
        for model in ("gpt-4o", "gpt-4", "qwen-max", "text-embedding-3-large", "unknown"):
            n, _ = count_tokens("Batch 批处理 costs half.", model)
            assert n > 0
    finally:
        tokens._exact_counter.cache_clear()


def test_message_overhead():
    assert message_overhead("gpt-4o", 0) == 0
    assert message_overhead("gpt-4o", 2) == 2 * 4 + 3
    assert message_overhead("qwen-plus", 2) == 2 * 5 + 3


def test_an_exact_tokenizer_counts_a_lone_surrogate(monkeypatch):
    """A request text may hold a lone surrogate (the JSON escape \\ud800); quicktok's encode refuses such a
    str with TypeError, which ended validate, estimate and submit. It counts as U+FFFD."""
    import sys
    import types

    class Encoding:
        def encode_ordinary(self, text):
            text.encode()  # a compiled binding's str -> UTF-8 conversion
            return list(text)

    fake = types.ModuleType("quicktok")
    fake.get_encoding = lambda name: Encoding()
    monkeypatch.setitem(sys.modules, "quicktok", fake)
    tokens._exact_counter.cache_clear()
    try:
        assert count_tokens("a \ud800 b", "gpt-4o") == (5, "exact (o200k_base, quicktok)")
        assert count_tokens("a \ud83d\ude00", "gpt-4o")[0] == 4  # a surrogate pair too (not joined)
    finally:
        tokens._exact_counter.cache_clear()

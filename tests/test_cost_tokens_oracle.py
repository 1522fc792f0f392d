"""`heuristic_tokens` (counted with byte-level work) gives exactly what the piece-by-piece float loop it
replaced gives: that loop is kept here, verbatim, as the oracle."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from batchctl.cost import tokens
from batchctl.cost.tokens import _CJK_PER_CHAR, _CJK_PER_RUN, _CJK_RUN, _DIGITS_PER_TOKEN, _LETTERS_PER_TOKEN, _PIECE

FIXTURES = Path(__file__).parent / "fixtures" / "cost"
FAMILIES = ("o200k_base", "cl100k_base", "qwen", None)


def oracle(text: str, family: str | None = None) -> int:
    """The implementation before byte-level counting (a Python loop over every piece)."""
    family = family if family in _CJK_PER_CHAR else "o200k_base"
    tokens = 0.0
    if not text.isascii():
        runs = _CJK_RUN.findall(text)
        if runs:
            tokens += sum(map(len, runs)) * _CJK_PER_CHAR[family] + len(runs) * _CJK_PER_RUN[family]
            text = _CJK_RUN.sub(" ", text)
    digits = _DIGITS_PER_TOKEN[family]
    for piece in _PIECE.findall(text):
        core = piece.strip()
        if not core:
            tokens += 0.5 if "\n" in piece else 0.0  # newlines mostly merge; spaces join the next word
        elif core[0].isdigit():
            tokens += -(-len(core) // digits)
        elif core[0].isalpha():
            tokens += 1 + (len(core) - 1) // _LETTERS_PER_TOKEN if core.isascii() else len(core) / 2.5
        else:
            tokens += 1 + (len(core) - 1) // 3
    return round(tokens)


def fixture_texts() -> list[str]:
    texts = []
    for name in ("token_sample.jsonl", "token_holdout.jsonl"):
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["text"])
    return texts


ALPHABET = (
    ["the", "a", "batch", "internationalization", "x" * 23, "Z" * 11, "résumé", "naïve", "Ünïcödé", "привет",
     "Москва", "数据", "模型。", "カタカナ", "한국어", "１２３", "٣٤٥", "²", "½", "Ⅻ", "_", "__init__", "a_b",
     "12", "1234", "1234567", "3.14", "!", "...", "?!?!", "—", "“quoted”", "«»", "\u00a0", "\u2003", "\t",
     "\n", "\n\n", " \n ", "\r\n", "\x0b", "\x1c", "\x00", "\x01", "e\u0301", "ß", "ﬁ", "🙂", "👍🏽", "ǅ"]
    + [" "] * 12
)  # fmt: skip


def generated(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(count)]


@pytest.mark.parametrize("family", FAMILIES)
def test_fixtures_identical(family):
    for text in fixture_texts():
        assert tokens.heuristic_tokens(text, family) == oracle(text, family), text


@pytest.mark.parametrize("family", FAMILIES)
def test_generated_identical(family):
    for text in generated(3000, seed=FAMILIES.index(family)):
        assert tokens.heuristic_tokens(text, family) == oracle(text, family), repr(text)


def test_halves_and_float_rounding_identical():
    """Texts whose exact sum ends on a half: round() must land where the float loop lands."""
    cases = ["a\n", "a b\n", "\n", "\n x \n", "résumé\n", "ab résumé naïve\n", "数据\n", "数据 x\n\n y", "é" * 5 + "\n"]
    rng = random.Random(5)
    cases += ["".join(rng.choice(["é", "éa", "数", "a", " ", "\n", "1"]) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    for family in FAMILIES:
        for text in cases:
            assert tokens.heuristic_tokens(text, family) == oracle(text, family), (family, repr(text))


def test_long_text_identical():
    text = " ".join(generated(400, seed=9))
    for family in FAMILIES:
        assert tokens.heuristic_tokens(text, family) == oracle(text, family)


def test_fiftieths_equal_the_rates():
    for name, rate in _CJK_PER_CHAR.items():
        assert tokens._CJK_PER_CHAR_50[name] / 50 == rate
        assert tokens._CJK_PER_RUN_50[name] / 50 == _CJK_PER_RUN[name]

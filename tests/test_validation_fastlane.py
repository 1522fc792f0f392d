"""validate's fast lane (validation/fastlane.py) decides exactly what the general road would.

Files mixing common lines with every kind of departure from the common shape are validated twice:
with the estimate's tally (the fast lane on) and with a plain `per_request` hook (the fast lane off,
every line parsed into dicts). Reports and estimates must be equal, and the fast lane must really
have taken the common lines (else the comparison proves nothing).
"""

from __future__ import annotations

import json
import random

import pytest

from batchctl.cost import estimate as estimate_module
from batchctl.cost.estimate import EstimateTally
from batchctl.cost.prices import price_table
from batchctl.providers import get_provider
from batchctl.validation import checks, validate_file


def line(i: int, **changes: object) -> bytes:
    """A common chat line (`r{i}`), with `changes` applied: key=None removes a top-level key,
    body_<key>=... sets (or with None removes) a body key, messages=... replaces them."""
    body: dict = {"model": "gpt-4o-mini", "max_tokens": 20 + i % 7,
                  "messages": [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": f"Question {i}: 数据 naïve résumé? {'word ' * (i % 5)}"}]}  # fmt: skip
    obj: dict = {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
    for key, value in changes.items():
        if key.startswith("body_"):
            name = key[5:]
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        elif key == "messages":
            body["messages"] = value
        elif value is None:
            obj.pop(key)
        else:
            obj[key] = value
    return json.dumps(obj, ensure_ascii=False).encode()


# Lines that are not of the common shape, or not without problems: each must get the general verdict.
ODD_LINES = [
    lambda i: line(i, custom_id=""),
    lambda i: line(i, custom_id=7),
    lambda i: line(i, custom_id=None),
    lambda i: line(i, custom_id="r0"),  # a duplicate of line 1's id
    lambda i: line(i, method="GET"),
    lambda i: line(i, url="/v1/embeddings"),
    lambda i: line(i, url="/v1/nope"),
    lambda i: line(i, url="/v4/chat/completions"),
    lambda i: line(i, body_model="gpt-4o"),
    lambda i: line(i, body_model="  "),
    lambda i: line(i, body_model=None),
    lambda i: line(i, messages=[]),
    lambda i: line(i, messages=[{"role": "user", "content": [{"type": "text", "text": "parts 数据"}]}]),
    lambda i: line(i, messages=[{"role": "user", "content": None}]),
    lambda i: line(i, messages=[{"role": "assistant", "content": None, "tool_calls": []}, {"role": "user", "content": "x"}]),
    lambda i: line(i, messages=[{"role": "user", "name": "ana", "content": "named"}]),
    lambda i: line(i, messages=[{"content": "no role"}]),
    lambda i: line(i, messages=[{"role": 1, "content": "role not a string"}]),
    lambda i: line(i, messages=[{"role": "user", "content": "line one\nline \"two\" \\ \t tab"}]),
    lambda i: line(i, messages=[{"role": "user", "content": "emoji \U0001f600 and \u00e9"}]),
    lambda i: line(i, body_max_tokens=True),
    lambda i: line(i, body_max_tokens=-1),
    lambda i: line(i, body_max_tokens=2.0),
    lambda i: line(i, body_max_tokens=10**30),
    lambda i: line(i, body_max_tokens=None, body_max_completion_tokens=9, body_n=3),
    lambda i: line(i, body_max_tokens=None),
    lambda i: line(i, body_n=True),
    lambda i: line(i, body_temperature=0.5, body_metadata={"a": [1, {"b": None}]}),
    lambda i: line(i, body_tools=[{"type": "function"}]),  # a field the fast lane does not know
    lambda i: line(i, extra="top-level field"),
    lambda i: line(i, body=[1, 2]),
    lambda i: line(i, body=None),
    lambda i: b"[1, 2, 3]",
    lambda i: b"",
    lambda i: b"   ",
    lambda i: b'{"custom_id": "bad json",',
    lambda i: line(i).replace("数据".encode(), b"\xff\xfe"),  # invalid UTF-8 inside a message text
    lambda i: line(i).replace("naïve".encode(), b"\\ud800"),  # a lone surrogate, escaped
    lambda i: line(i).replace("naïve".encode(), b"\\u00e9\\u6570"),  # escapes of non-ASCII letters
    lambda i: line(i).replace("naïve".encode(), b"\\ud83d\\ude00"),  # an escaped surrogate pair
    lambda i: line(i).replace(b"Be brief.", b"Be\tbrief."),  # a raw tab in a string: not JSON
    lambda i: line(i).replace(b'"max_tokens": ', b'"max_tokens": NaN, "x": '),
    lambda i: line(i).replace(b'"custom_id": "r', b'"custom_id": "dup", "custom_id": "r'),  # a key twice
    lambda i: line(i).replace(b"Be brief.", "Ünïcödé ÀÉÎ".encode()),
]


def write_file(path, seed: int, lines: int, crlf: bool = False) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(lines):
        odd = rng.random() < 0.3
        rows.append(rng.choice(ODD_LINES)(i) if odd and i else line(i))
    path.write_bytes((b"\r\n" if crlf else b"\n").join(rows) + b"\n")


def both_roads(path, spec_name: str = "openai", endpoint: str | None = None, max_problems: int = 1000):
    spec = get_provider(spec_name)
    fast_tally, slow_tally = EstimateTally(path), EstimateTally(path)
    fast = validate_file(path, spec=spec, endpoint=endpoint, max_problems=max_problems, tally=fast_tally)
    slow = validate_file(path, spec=spec, endpoint=endpoint, max_problems=max_problems, per_request=slow_tally.add)
    prices = price_table(None)
    return (fast.to_dict(), fast_tally.priced(prices).to_dict()), (slow.to_dict(), slow_tally.priced(prices).to_dict())


@pytest.fixture
def taken(monkeypatch):
    """How many lines the fast lane judged (decoded and accepted)."""
    count = [0]
    real = checks._FileValidator.check_common

    def counting(self, n, raw, line):
        accepted = real(self, n, raw, line)
        count[0] += accepted
        return accepted

    monkeypatch.setattr(checks._FileValidator, "check_common", counting)
    return count


@pytest.mark.parametrize("seed", range(12))
def test_both_roads_give_the_same_report_and_estimate(tmp_path, seed, taken):
    path = tmp_path / "mixed.jsonl"
    write_file(path, seed, 120, crlf=seed % 4 == 3)
    fast, slow = both_roads(path, max_problems=1000 if seed % 3 else 5)
    assert fast == slow
    assert taken[0] >= 60  # the common lines (70 % of them) went the fast way


def test_every_odd_line_alone_gets_the_general_verdict(tmp_path):
    for k, make in enumerate(ODD_LINES):
        path = tmp_path / f"odd{k}.jsonl"
        path.write_bytes(line(0) + b"\n" + make(1) + b"\n" + line(2) + b"\n")
        fast, slow = both_roads(path)
        assert fast == slow, (k, make(1))


def test_the_fast_lane_judges_common_lines(tmp_path, taken):
    path = tmp_path / "common.jsonl"
    path.write_bytes(b"\n".join(line(i) for i in range(50)) + b"\n")
    fast, slow = both_roads(path)
    assert fast == slow and fast[0]["ok"] and fast[1]["requests"] == 50
    assert taken[0] == 50


def test_an_invalid_utf8_text_is_named_as_such(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(line(0) + b"\n" + line(1).replace("数据".encode(), b"\xff") + b"\n")
    report = validate_file(path, spec=get_provider("openai"), tally=EstimateTally(path))
    assert [p.code for p in report.problems] == ["invalid_utf8"] and report.problems[0].line == 2


@pytest.mark.parametrize("spec_name", ["openai", "dashscope", "moonshot", "zhipu", "local"])
def test_each_provider_gets_the_same_verdict_both_ways(tmp_path, spec_name):
    path = tmp_path / "mixed.jsonl"
    write_file(path, 99, 80)
    fast, slow = both_roads(path, spec_name)
    assert fast == slow


def test_a_given_endpoint_gets_the_same_verdict_both_ways(tmp_path):
    path = tmp_path / "mixed.jsonl"
    write_file(path, 5, 60)
    for endpoint in ("/v1/chat/completions", "/v1/embeddings", "/v1/nope"):
        fast, slow = both_roads(path, endpoint=endpoint)
        assert fast == slow, endpoint


def sampled_and_whole(path, monkeypatch) -> tuple:
    """(the estimate as `validate` makes it, the estimate counting every request)."""
    sampled = EstimateTally(path)
    assert validate_file(path, spec=get_provider("openai"), tally=sampled).ok
    with monkeypatch.context() as patch:
        patch.setattr(estimate_module, "COUNT_FIRST", 10**9)  # count every request
        whole = EstimateTally(path)
        validate_file(path, spec=get_provider("openai"), tally=whole)
    return sampled.priced(price_table(None)), whole.priced(price_table(None))


def test_big_files_count_a_sample_and_scale_the_rest(tmp_path, monkeypatch):
    """Past COUNT_FIRST requests a sample is counted; the total stays close to counting all."""
    rng = random.Random(3)
    english = "the model answers each request of the batch in order and keeps the window".split()
    chinese = list("数据模型批处理请求今天天气很好我们去公园")
    rows = []
    for i in range(1500):
        block = (i // 150) % 3  # blocks of English, Chinese and mixed text
        words = [rng.choice(english if block == 0 else chinese if block == 1 else english + chinese)
                 for _ in range(rng.randint(5, 120))]  # fmt: skip
        rows.append(line(i, messages=[{"role": "user", "content": (" " if block != 1 else "").join(words)}]))
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")

    sampled, whole = sampled_and_whole(path, monkeypatch)
    first, size = estimate_module.COUNT_FIRST, estimate_module.SAMPLE_SIZE
    assert first + 0.8 * size < sampled.counted_requests < first + 1.2 * size  # the rest scaled
    assert "requests counted, the rest scaled by size" in estimate_module.estimate_line(sampled)
    assert whole.counted_requests == 1500 and "scaled" not in estimate_module.estimate_line(whole)
    error = abs(sampled.input_tokens - whole.input_tokens) / whole.input_tokens
    assert error < 0.03, (sampled.input_tokens, whole.input_tokens)
    assert sampled.output_tokens_max == whole.output_tokens_max
    assert sampled.to_dict() == both_roads(path)[1][1]  # the same sample on the general road


@pytest.mark.parametrize("period", [2, 5, 10])
def test_lines_repeating_in_a_pattern_are_sampled_fairly(tmp_path, monkeypatch, period):
    """A/B variants or prompt pairs: a fixed step would count one kind of line only."""
    prose = "The model answers each request of the batch in order and keeps the window. " * 6
    data = json.dumps({"id": 1, "rows": [[1, 2, 3], [4, 5, 6]], "k": "v"}) * 10
    rows = [line(i, messages=[{"role": "user", "content": data if i % period == 0 else prose}]) for i in range(5000)]
    path = tmp_path / "pattern.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    sampled, whole = sampled_and_whole(path, monkeypatch)
    assert sampled.counted_requests < 1000
    assert abs(sampled.input_tokens - whole.input_tokens) / whole.input_tokens < 0.05, (sampled.input_tokens, whole.input_tokens)


def test_requests_without_text_take_no_place_in_the_sample(tmp_path, monkeypatch):
    prose = "The model answers each request of the batch in order and keeps the window. " * 6
    rows = [line(i, messages=[{"role": "user", "content": "" if i % 10 == 0 else prose + str(i % 7) * (i % 50)}])
            for i in range(5000)]  # fmt: skip
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    sampled, whole = sampled_and_whole(path, monkeypatch)
    assert abs(sampled.input_tokens - whole.input_tokens) / whole.input_tokens < 0.03


def test_small_files_are_counted_whole(tmp_path):
    path = tmp_path / "small.jsonl"
    path.write_bytes(b"\n".join(line(i) for i in range(estimate_module.COUNT_FIRST)) + b"\n")
    tally = EstimateTally(path)
    validate_file(path, spec=get_provider("openai"), tally=tally)
    estimate = tally.priced(price_table(None))
    assert estimate.counted_requests == estimate.requests == estimate_module.COUNT_FIRST

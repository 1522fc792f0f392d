"""validate's second core (validation/second_core.py): a forked child checks the file's UTF-8 and counts
the estimate's sample, and the report and the estimate are the ones the pass makes alone.

Files are small here, so the second core is asked for (`second_core=True`); `pays` decides by size
in real use, and one test runs the CLI on a file big enough for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from batchctl.cost import estimate as estimate_module
from batchctl.cost.estimate import EstimateTally, count_texts
from batchctl.cost.prices import price_table
from batchctl.providers import get_provider
from batchctl.validation import checks, second_core, validate_file
from batchctl.forked import MIN_SIZE, pays
from batchctl.validation.second_core import SecondCore
from test_validation_fastlane import line, write_file


def validated(path, second: bool, spec_name: str = "openai", model: str | None = None) -> tuple[dict, dict]:
    tally = EstimateTally(path, model_override=model)
    report = validate_file(path, spec=get_provider(spec_name), tally=tally, second_core=second)
    return report.to_dict(), tally.priced(price_table(None)).to_dict()


def common_file(path, lines: int) -> None:
    """Common chat lines, with non-ASCII texts (the UTF-8 the child checks) and escapes, past COUNT_FIRST
    (so a sample is drawn and counted)."""
    rows = [line(i) for i in range(lines)]
    rows[7] = line(7).replace("naïve".encode(), b"\\u00e9\\ud83d\\ude00 \\\"q\\\"")
    path.write_bytes(b"\n".join(rows) + b"\n")


@pytest.fixture
def forks(monkeypatch):
    """The second cores started, to see that one really ran."""
    started: list[SecondCore] = []
    real = SecondCore.__init__

    def init(self, path):
        real(self, path)
        started.append(self)

    monkeypatch.setattr(SecondCore, "__init__", init)
    return started


def test_a_big_common_file_gets_the_same_report_and_estimate(tmp_path, forks):
    path = tmp_path / "common.jsonl"
    common_file(path, 3000)
    alone = validated(path, False)
    assert validated(path, True) == alone
    assert len(forks) == 1
    assert alone[0]["ok"] and alone[1]["counted_requests"] > 900  # COUNT_FIRST and a sample were counted


@pytest.mark.parametrize("seed", range(4))
def test_mixed_files_get_the_same_report_and_estimate(tmp_path, seed):
    """Every odd line of the fast lane's tests, among common ones: the general road's lines, invalid
    UTF-8 among them (which sends the pass round again), must come out as the pass alone says."""
    path = tmp_path / "mixed.jsonl"
    write_file(path, seed, 400, crlf=seed == 3)
    assert validated(path, True) == validated(path, False)


def test_invalid_utf8_in_a_common_line_is_named_after_a_second_pass(tmp_path, forks, monkeypatch):
    rows = [line(i) for i in range(500)]
    rows[321] = line(321).replace("数据".encode(), b"\xe6\x95")  # a character cut short, in a message text
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    passes = []
    real = checks._validate
    monkeypatch.setattr(checks, "_validate", lambda *a, **k: passes.append(k) or real(*a, **k))
    report, estimate = validated(path, True)
    assert [(p["line"], p["code"]) for p in report["problems"]] == [(322, "invalid_utf8")]
    assert passes == [{"utf8_elsewhere": True}, {}]  # the fast pass, then the usual one that names the line
    assert (report, estimate) == validated(path, False)
    assert estimate["requests"] == 499  # the broken line is not counted twice, or at all


@pytest.mark.parametrize("when", ["at once", "at the end"])
def test_a_child_that_fails_leaves_the_pass_to_this_process(tmp_path, monkeypatch, when):
    """Gone before the first frame is sent (the sends meet a closed pipe), or failing as it answers."""
    path = tmp_path / "common.jsonl"
    common_file(path, 3000)
    alone = validated(path, False)
    real = second_core._child
    monkeypatch.setattr(second_core, "_FLUSH", 4096)  # ~70 KB of texts counted: frames sent during the pass

    def crash(path, inbox, outbox):
        if when == "at the end":
            real(path, inbox, -1)  # answering into a closed descriptor fails
        raise RuntimeError("the child breaks")

    monkeypatch.setattr(second_core, "_child", crash)
    assert validated(path, True) == alone


def test_a_model_override_is_counted_under_its_name(tmp_path):
    path = tmp_path / "common.jsonl"
    common_file(path, 400)
    assert validated(path, True, model="qwen-plus") == validated(path, False, model="qwen-plus")


def test_the_child_counts_texts_as_this_process_does(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_bytes(b"{}\n" * 1000)
    requests = [("gpt-4o", ['"Hello there, 数据模型"'.encode(), b'"caf\\u00e9 \\"x\\""'], False),
                ("qwen-plus", [f'"{"今天天气很好" * 50}"'.encode()], True), (None, [b'"no model"', b'"\\u4e24"'], True)] * 200  # fmt: skip
    with SecondCore(path) as core:
        assert all([core.count(model, texts, sampled) for model, texts, sampled in requests])
        assert not core.count("gpt-4o", ["a string: the general road's, counted by the caller"], False)
        found = core.finish(need_utf8=True)
    expected: dict = {}
    methods = set()
    for model, texts, sampled in requests:
        pair = expected.setdefault(model, [0, 0])
        counted, method = count_texts(model, texts)
        pair[sampled] += counted
        methods.add(method)
    assert found is not None and found.utf8_valid is True
    assert found.tokens == {model: tuple(pair) for model, pair in expected.items()}
    assert found.methods == methods  # "heuristic", or exact ones with [tokens] installed


def test_the_utf8_check_reads_across_block_edges_and_to_the_end(tmp_path):
    block = second_core._BLOCK
    straddle = tmp_path / "straddle.txt"  # a 3-byte character across the first read's edge: valid
    straddle.write_bytes(b"a" * (block - 1) + "数".encode() + b"\n")
    cut = tmp_path / "cut.txt"  # the file ends inside a character: not valid
    cut.write_bytes(b"a" * (block + 10) + "数".encode()[:2])
    late = tmp_path / "late.txt"  # a bad byte far past the first read
    late.write_bytes(b"a" * (3 * block) + b"\xff\n")
    verdicts = {}
    for path in (straddle, cut, late):
        with SecondCore(path) as core:
            found = core.finish(need_utf8=True)
        verdicts[path.name] = found.utf8_valid if found else "failed"
    assert verdicts == {"straddle.txt": True, "cut.txt": False, "late.txt": False}


def test_leaving_without_finish_stops_and_reaps_the_child(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * (8 * second_core._BLOCK))
    with pytest.raises(KeyError), SecondCore(path) as core:
        core.count("m", ["text"], False)
        raise KeyError("the pass broke")
    with pytest.raises(ChildProcessError):
        os.waitpid(core._forked._pid, os.WNOHANG)  # reaped: no zombie left


def test_finish_reaps_the_child(tmp_path):
    path = tmp_path / "small.txt"
    path.write_bytes(b"x\n")
    with SecondCore(path) as core:
        assert core.finish(need_utf8=False) is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(core._forked._pid, os.WNOHANG)


def test_pays_only_for_big_files_in_a_single_threaded_process(monkeypatch):
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert pays(MIN_SIZE) and not pays(MIN_SIZE - 1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert not pays(MIN_SIZE)  # one core: nothing to gain
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    assert not pays(MIN_SIZE)  # forking a threaded process is unsafe


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the second core forks on Linux only")
def test_the_cli_validates_a_big_file_with_the_second_core(tmp_path):
    """`batchctl validate` of a file over MIN_SIZE, in a process of its own (where `pays` says yes):
    the same report and estimate as the pass alone, a broken line still named."""
    path = tmp_path / "big.jsonl"
    row = line(0).replace(b"Be brief.", ("Be brief, 数据. " * 60).encode())
    count = MIN_SIZE // len(row) + 50
    rows = [row.replace(b'"r0"', f'"r{i}"'.encode()) for i in range(count)]
    path.write_bytes(b"\n".join(rows) + b"\n")
    assert path.stat().st_size >= MIN_SIZE

    def cli(file) -> dict:
        out = subprocess.run([sys.executable, "-m", "batchctl", "validate", str(file), "--json"],
                             capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, timeout=60)  # fmt: skip
        return json.loads(out.stdout)

    got = cli(path)
    report, estimate = validated(path, False, spec_name="local")
    assert got["requests"] == count and got["ok"]
    assert got["estimate"]["input_tokens"] == estimate["input_tokens"] and got["est_input_tokens"] == report["est_input_tokens"]
    rows[count // 2] = rows[count // 2].replace("数据".encode(), b"\xff")
    path.write_bytes(b"\n".join(rows) + b"\n")
    broken = cli(path)
    assert [(p["line"], p["code"]) for p in broken["problems"]] == [(count // 2 + 1, "invalid_utf8")]


@pytest.mark.parametrize("failing", ["fork", "second pipe"])
def test_a_second_core_that_cannot_start_leaves_the_pass_to_this_process(tmp_path, monkeypatch, failing):
    """No fork (EAGAIN: the process limit; ENOMEM) or no pipe (EMFILE): the pass alone, no descriptor
    left open, not an OSError out of validate."""
    path = tmp_path / "common.jsonl"
    common_file(path, 400)
    alone = validated(path, False)
    real_pipe, pipes = os.pipe, []

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    def pipe():
        if pipes:
            raise OSError(24, "Too many open files")
        pipes.append(real_pipe())
        return pipes[-1]

    monkeypatch.setattr(os, *(("fork", no_fork) if failing == "fork" else ("pipe", pipe)))
    before = set(os.listdir("/proc/self/fd"))
    assert validated(path, True) == alone
    assert set(os.listdir("/proc/self/fd")) <= before


def test_the_inbox_reads_a_descriptor_above_select_s_limit():
    """A process with a thousand files open gets pipes numbered 1024 and up, which select() refuses
    (ValueError): the child failed at its first look and every big file was read twice."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard if hard != resource.RLIM_INFINITY else 4096) < 2048:
        pytest.skip("no room for a descriptor above 1024")
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    read, write = os.pipe()
    high = os.dup2(read, 1500)
    try:
        inbox = second_core.Inbox(high)
        assert inbox.frames(0) == []
        os.write(write, (3).to_bytes(8, "little") + b"abc")
        assert inbox.frames(1) == [b"abc"]
        os.close(write)
        assert inbox.frames(1) == [] and inbox.closed
    finally:
        os.close(read), os.close(high)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_failure_the_usual_pass_would_not_meet_is_left_to_the_usual_pass(tmp_path, monkeypatch):
    """With broken UTF-8 early in the file, the fast lane (UTF-8 left to the child) takes the broken
    line, which the usual pass refuses: every later request is one place further on in the sample, so
    the first pass counts lines the usual one does not. A count that raises on one of those (here: the
    exact tokenizer's TypeError on a lone surrogate, as quicktok's) must not end `validate` when the
    pass alone succeeds: the usual pass decides, as it does for the broken UTF-8."""
    real = estimate_module.count_tokens

    def picky(text, model, **kwargs):
        if "\ud800" in text:  # quicktok's answer to a lone surrogate
            raise TypeError("encode_ordinary(): incompatible function arguments")
        return real(text, model, **kwargs)

    monkeypatch.setattr(estimate_module, "count_tokens", picky)
    rows = [line(i) for i in range(6000)]
    rows[5] = line(5).replace("数据".encode(), b"\xff")
    rows[318] = line(318).replace("naïve".encode(), b"\\ud800")  # sampled one place on, not in place
    path = tmp_path / "shifted.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    alone = validated(path, False)
    assert [(p["line"], p["code"]) for p in alone[0]["problems"]][:1] == [(6, "invalid_utf8")]
    assert validated(path, True) == alone


def test_a_model_override_that_is_not_utf8_leaves_the_count_to_this_process(tmp_path):
    """`EstimateTally(model_override=...)` from an API caller with a lone surrogate in the name (the CLI's
    check_model_name refuses one): the frames cannot be encoded; the pass alone counts, no
    UnicodeEncodeError out of validate."""
    path = tmp_path / "common.jsonl"
    common_file(path, 400)
    assert validated(path, True, model="gpt-\udcff") == validated(path, False, model="gpt-\udcff")

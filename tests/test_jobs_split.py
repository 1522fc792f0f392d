"""Splitting an input file into parts within a provider's limits: whole lines, in order, one pass."""

from __future__ import annotations

import hashlib
import json
import stat
import tracemalloc

import pytest

from batchctl.jobs.split import Planner, SplitError, describe_split, is_blank, plan_parts, write_part


def request(n: int, pad: int = 0) -> bytes:
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * pad or f"hello {n}"}]}
    return json.dumps({"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions", "body": body}).encode()


def write_input(path, lines: list[bytes], *, ending: bytes = b"\n", final_newline: bool = True, bom: bool = False):
    data = (b"\xef\xbb\xbf" if bom else b"") + ending.join(lines) + (ending if final_newline else b"")
    path.write_bytes(data)
    return data


def written_parts(tmp_path, source, result) -> list[bytes]:
    out = []
    for plan in result.parts:
        target = write_part(source, plan, tmp_path / f"part-{plan.index}.jsonl")
        out.append(target.read_bytes())
    return out


def assert_contiguous(result, start: int = 0) -> None:
    assert result.parts[0].byte_start == start
    assert result.parts[0].first_line == 1
    for before, after in zip(result.parts, result.parts[1:]):
        assert after.byte_start == before.byte_end
        assert after.first_line == before.last_line + 1
    assert [p.index for p in result.parts] == list(range(len(result.parts)))


def test_230_requests_at_50_make_five_parts_that_rebuild_the_input(tmp_path):
    source = tmp_path / "in.jsonl"
    data = write_input(source, [request(n) for n in range(230)])
    result = plan_parts(source, max_requests=50, max_file_bytes=200 * 1024 * 1024)
    assert [p.request_count for p in result.parts] == [50, 50, 50, 50, 30]
    assert [(p.first_line, p.last_line) for p in result.parts] == [(1, 50), (51, 100), (101, 150), (151, 200), (201, 230)]
    assert_contiguous(result)
    assert result.parts[-1].byte_end == len(data) == result.size
    assert (result.total_requests, result.lines) == (230, 230)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(written_parts(tmp_path, source, result)) == data
    assert sum(p.bytes for p in result.parts) == len(data)


def test_the_byte_limit_cuts_before_the_line_that_would_not_fit(tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [request(n, pad=100) for n in range(10)]
    size = len(lines[0]) + 1
    assert all(len(line) + 1 == size for line in lines)
    data = write_input(source, lines)
    result = plan_parts(source, max_requests=1000, max_file_bytes=3 * size + size // 2)
    assert [p.request_count for p in result.parts] == [3, 3, 3, 1]
    assert all(p.bytes <= 3 * size + size // 2 for p in result.parts)
    assert_contiguous(result)
    exact = plan_parts(source, max_requests=1000, max_file_bytes=5 * size)
    assert [p.request_count for p in exact.parts] == [5, 5]
    assert b"".join(written_parts(tmp_path, source, result)) == data


def test_both_limits_at_once(tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [request(n, pad=10) for n in range(6)] + [request(n, pad=500) for n in range(6, 9)]
    write_input(source, lines)
    limit = 2 * (len(lines[-1]) + 1)
    result = plan_parts(source, max_requests=4, max_file_bytes=limit)
    assert [p.request_count for p in result.parts] == [4, 3, 2]  # 2 short + 1 long fit; 2 long fill one
    assert all(p.bytes <= limit for p in result.parts)


def test_a_line_over_the_line_limit_is_named(tmp_path):
    source = tmp_path / "in.jsonl"
    write_input(source, [request(1), request(2, pad=3000), request(3)])
    with pytest.raises(SplitError) as caught:
        plan_parts(source, max_requests=10, max_file_bytes=10**6, max_line_bytes=2000)
    assert caught.value.line == 2
    message = str(caught.value)
    assert message.startswith("line 2 is ") and "over the limit of" in message and "2,000 bytes" in message


def test_a_line_bigger_than_a_whole_file_is_named(tmp_path):
    source = tmp_path / "in.jsonl"
    big = request(5, pad=5000)
    write_input(source, [request(1), request(2), big])
    with pytest.raises(SplitError) as caught:
        plan_parts(source, max_requests=10, max_file_bytes=4096)
    assert caught.value.line == 3
    assert "line 3 is" in str(caught.value) and f"{len(big) + 1:,} bytes" in str(caught.value)
    assert "4 KB" in str(caught.value)


def test_the_line_limit_ignores_the_line_ending(tmp_path):
    source = tmp_path / "in.jsonl"
    line = request(1)
    write_input(source, [line, line], ending=b"\r\n")
    result = plan_parts(source, max_requests=10, max_file_bytes=10**6, max_line_bytes=len(line))
    assert result.total_requests == 2


def test_crlf_lines_and_a_last_line_without_newline(tmp_path):
    source = tmp_path / "in.jsonl"
    data = write_input(source, [request(n) for n in range(7)], ending=b"\r\n", final_newline=False)
    result = plan_parts(source, max_requests=3, max_file_bytes=10**6)
    assert [p.request_count for p in result.parts] == [3, 3, 1]
    assert result.parts[-1].last_line == 7 and result.parts[-1].byte_end == len(data)
    parts = written_parts(tmp_path, source, result)
    assert all(p.endswith(b"\r\n") for p in parts[:-1]) and not parts[-1].endswith(b"\n")
    assert b"".join(parts) == data


def test_a_bom_is_kept_out_of_every_part_but_hashed(tmp_path):
    source = tmp_path / "in.jsonl"
    data = write_input(source, [request(n) for n in range(5)], bom=True)
    result = plan_parts(source, max_requests=2, max_file_bytes=10**6)
    assert_contiguous(result, start=3)
    assert [p.request_count for p in result.parts] == [2, 2, 1]
    assert b"".join(written_parts(tmp_path, source, result)) == data[3:]
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)


def test_blank_lines_are_carried_but_not_counted(tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [b"", request(1), b"  ", request(2), request(3), b"\t", request(4), b""]
    data = write_input(source, lines)
    result = plan_parts(source, max_requests=2, max_file_bytes=10**6)
    assert result.total_requests == 4 and result.lines == 8
    assert [(p.first_line, p.last_line, p.request_count) for p in result.parts] == [(1, 4, 2), (5, 8, 2)]
    assert b"".join(written_parts(tmp_path, source, result)) == data


def test_a_file_of_blank_lines_has_no_parts(tmp_path):
    source = tmp_path / "in.jsonl"
    write_input(source, [b"", b"   ", b""])
    with pytest.raises(SplitError, match="no requests"):
        plan_parts(source, max_requests=2, max_file_bytes=100)
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(SplitError, match="no requests"):
        plan_parts(tmp_path / "empty.jsonl", max_requests=2, max_file_bytes=100)


def test_blank_lines_that_fit_nowhere_are_left_out():
    planner = Planner(max_requests=10, max_file_bytes=8)
    offset = 0
    for n, raw in enumerate([b"{aaaaa}\n", b"    \n", b"{b}\n", b"\n"], 1):
        planner.line(n, offset, raw)
        offset += len(raw)
    # line 2 does not fit after line 1, nor in front of line 3; line 4 goes with line 3
    assert [(p.first_line, p.last_line, p.byte_start, p.byte_end) for p in planner.finish()] == [
        (1, 1, 0, 8),
        (3, 4, 13, 18),
    ]


def test_a_tail_of_blank_lines_past_a_full_part_is_not_a_part():
    planner = Planner(max_requests=10, max_file_bytes=4)
    planner.line(1, 0, b"{a}\n")
    planner.line(2, 4, b"\n")
    assert [(p.first_line, p.last_line) for p in planner.finish()] == [(1, 1)]


def test_blank_means_what_the_validator_means():
    assert is_blank(b"\n") and is_blank(b" \t\r\n") and is_blank("\u3000\n".encode())
    assert not is_blank(b'{"a": 1}\n') and not is_blank(b"x\n") and not is_blank(b"\xff\n")


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_requests"):
        Planner(max_requests=0, max_file_bytes=10)


def test_write_part_is_atomic_and_private(tmp_path):
    source = tmp_path / "in.jsonl"
    write_input(source, [request(n) for n in range(4)])
    result = plan_parts(source, max_requests=2, max_file_bytes=10**6)
    target = write_part(source, result.parts[1], tmp_path / "p1.jsonl")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "p1.jsonl.part").exists()
    source.write_bytes(source.read_bytes()[: result.parts[1].byte_start + 5])  # the input shrank meanwhile
    with pytest.raises(SplitError, match="changed"):
        write_part(source, result.parts[1], tmp_path / "p2.jsonl")
    assert not (tmp_path / "p2.jsonl").exists() and not (tmp_path / "p2.jsonl.part").exists()


def test_describe_split(tmp_path):
    source = tmp_path / "in.jsonl"
    write_input(source, [request(n, pad=100) for n in range(12)])
    many = plan_parts(source, max_requests=5, max_file_bytes=10**6)
    assert describe_split(many, 5) == "input has 12 requests: 3 batches of ≤ 5"
    one = plan_parts(source, max_requests=50_000, max_file_bytes=10**6)
    assert describe_split(one, 50_000) == "input has 12 requests: 1 batch"
    by_size = plan_parts(source, max_requests=50_000, max_file_bytes=1024)
    assert describe_split(by_size, 50_000, 1024).endswith(f"{len(by_size.parts)} batches of ≤ 50,000 requests and ≤ 1 KB")


def test_describe_split_uses_thousands_separators():
    from batchctl.jobs.split import PartPlan, SplitResult

    parts = [PartPlan(i, 1, 1, 0, 1, n) for i, n in enumerate((50_000, 50_000, 20_000))]
    result = SplitResult("in.jsonl", parts, "0" * 64, 120_000, 1, 120_000)
    assert describe_split(result, 50_000) == "input has 120,000 requests: 3 batches of ≤ 50,000"


def test_planning_memory_stays_flat(tmp_path):
    source = tmp_path / "big.jsonl"
    line = request(0, pad=400) + b"\n"
    with source.open("wb") as out:
        for _ in range(16 * 1024 * 1024 // len(line)):
            out.write(line)
    tracemalloc.start()
    try:
        result = plan_parts(source, max_requests=5000, max_file_bytes=10**6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == source.stat().st_size
    assert peak < 4 * 1024 * 1024  # the read buffer (1 MiB), one line and the plans, not the file

"""Off a terminal `Output` writes lines, messages and key/value grids without Rich: the same characters
Rich writes (compared here with the Rich road it takes on a terminal or for text Rich would change)."""

from __future__ import annotations

import io
import sys

import pytest

from batchctl.cli.output import Output, rich_sees_terminal

TEXTS = [
    "plain", "", "  lead and trail  ", "[bold]not markup[/bold]", r"\[x] and \\[y]", ":x: stays text",
    "数据 résumé ✓ ❌", "e\u0301 combining", "two\nlines", "ends\n", "a\tb", "bell\x07", "cr\rlf", "zwj\u200dx",
    "esc \x1b[31mred", "x" * 300,
]  # fmt: skip
GRIDS = [
    [("File", "small.jsonl"), ("Lines", "1"), ("Est. input tokens", "~8 (heuristic)")],
    [("A", "x" * 200), ("Longer label", "")],
    [("A", ""), ("B", "")],
    [("Model", "m[1]"), ("Cost", "[bold]$1[/bold]")],
    [("File", "数据.jsonl"), ("Lines", "1")],
    [("File", "tab\there"), ("Two", "li\nnes")],
    [("  indented", "value  "), ("x", "y")],
]


def outputs(monkeypatch, columns: str | None = None) -> tuple[Output, Output, dict[str, io.StringIO]]:
    """(an Output that may write plainly, one that always goes through Rich, their streams)."""
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    streams = {name: io.StringIO() for name in ("plain_out", "plain_err", "rich_out", "rich_err")}
    made = []
    for kind in ("plain", "rich"):
        monkeypatch.setattr(sys, "stdout", streams[f"{kind}_out"])
        monkeypatch.setattr(sys, "stderr", streams[f"{kind}_err"])
        made.append(Output())
    made[1]._plain = {"out": None, "err": None}  # as on a terminal: every write through Rich
    return made[0], made[1], streams


def same(streams: dict[str, io.StringIO]) -> None:
    assert streams["plain_out"].getvalue() == streams["rich_out"].getvalue()
    assert streams["plain_err"].getvalue() == streams["rich_err"].getvalue()


@pytest.mark.parametrize("text", TEXTS)
def test_lines_and_messages_read_as_rich_writes_them(monkeypatch, text):
    plain, rich, streams = outputs(monkeypatch)
    for out in (plain, rich):
        out.line(text)
        out.info(text)
        out.success(text)
        out.warn(text)
        out.error(text, text)
    same(streams)
    assert streams["rich_out"].getvalue()  # something was written


@pytest.mark.parametrize("columns", [None, "20", "300"])
@pytest.mark.parametrize("rows", GRIDS)
@pytest.mark.parametrize("markup", [False, True])
def test_key_value_grids_read_as_rich_draws_them(monkeypatch, rows, markup, columns):
    plain, rich, streams = outputs(monkeypatch, columns)
    for out in (plain, rich):
        out.key_values(rows, markup=markup)
    same(streams)


def test_a_piped_validate_never_imports_rich(tmp_path):
    import subprocess

    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
                      '"body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}\n')
    code = (
        "import sys\n"
        f"sys.argv = ['batchctl', 'validate', {str(source)!r}]\n"
        "from batchctl.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('RICH=' + str(sorted(m for m in sys.modules if m.split('.')[0] == 'rich')), file=sys.stderr)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "Requests" in result.stdout and "is valid" in result.stderr
    assert "RICH=[]" in result.stderr


@pytest.mark.parametrize(
    "env",
    [{}, {"FORCE_COLOR": "1"}, {"FORCE_COLOR": ""}, {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"},
     {"TTY_COMPATIBLE": "x"}],
)  # fmt: skip
@pytest.mark.parametrize("tty", [False, True])
def test_the_terminal_test_is_riches(monkeypatch, env, tty):
    from rich.console import Console

    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    stream = Stream()
    assert rich_sees_terminal(stream) == Console(file=stream).is_terminal


def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(tmp_path):
    """`batchctl validate big.jsonl | head -1`: once `head` has gone, exit 1 without a word, as Rich did
    (not "Error: Broken pipe")."""
    import json

    problems = tmp_path / "many_problems.jsonl"  # a long report: more than a pipe holds
    problems.write_text("".join(json.dumps({"custom_id": f"r{i}", "method": "GET"}) + "\n" for i in range(4000)))
    code, stderr = first_line_then_gone(["validate", str(problems), "--max-problems", "4000"])
    assert code == 1
    assert "Broken pipe" not in stderr and "Traceback" not in stderr, stderr


def first_line_then_gone(args: list[str], **popen: object) -> tuple[int, str]:
    """`batchctl ARGS | head -1`: read the first line of stdout, close the pipe; (exit code, stderr)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "batchctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **popen)  # type: ignore[call-overload]  # fmt: skip
    assert proc.stdout.readline()  # the first line, then the reader goes away
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    return proc.wait(timeout=60), stderr

"""Values converted without pydantic (`batchctl.cli.coercion`) come out as Typer's own conversion gives them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchctl.cli.app import app, build_app
from batchctl.cli.coercion import QuickRuntimeParam, quicken


def every_param():
    """(command path, command, param) of every parameter of every batchctl command, the root's included."""
    import typer.main

    root = typer.main.get_command(build_app())
    ctx = root.make_context("batchctl", ["--help"], resilient_parsing=True)
    quicken(root, ctx)
    found = []

    def walk(command, path):
        for param in command.get_params(ctx):
            found.append((path, command, param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(root, "batchctl")
    return ctx, found


CTX, PARAMS = every_param()


def outcome(convert, value, param, ctx):
    try:
        return "value", convert(value, param=param, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - the kind and words of a refusal must match too
        return type(exc).__name__, str(exc)


def test_every_parameter_gets_the_quick_conversion():
    quick = [p for _, _, p in PARAMS if isinstance(p._runtime_param, QuickRuntimeParam)]
    assert len(quick) > 100  # every command's options and arguments, and each one's --help
    assert all(isinstance(p._runtime_param, QuickRuntimeParam) for _, _, p in PARAMS if p.type_descriptor.file_annotation is None)


@pytest.mark.parametrize("value", [None, "", "x", "-", " two words ", "7", "1.5", "true", "{path}", "{dir}", "{missing}"])
def test_each_value_converts_as_typer_converts_it(tmp_path, value):
    from typer._coercion import build_runtime_param

    (tmp_path / "file.jsonl").write_text("{}\n")
    if value is not None:
        value = value.format(path=tmp_path / "file.jsonl", dir=tmp_path, missing=tmp_path / "nope" / "x.jsonl")
    for path, _, param in PARAMS:
        if not isinstance(param._runtime_param, QuickRuntimeParam):
            continue
        typer_own = build_runtime_param(param.type_descriptor)
        assert outcome(param._runtime_param.coerce, value, param, CTX) == outcome(typer_own.coerce, value, param, CTX), (path, param.name)


def test_offline_commands_run_without_pydantic(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", '
                      '"body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}\n')
    for args in (["validate", str(source)], ["jobs"], ["profile", "list"], ["validate", "--help"]):
        code = (
            "import sys\n"
            f"sys.argv = ['batchctl', *{args!r}]\n"
            "from batchctl.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('PYDANTIC=' + str(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic')), file=sys.stderr)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "PYDANTIC=[]" in result.stderr, (args, result.stderr[-2000:])


def test_a_bad_value_is_still_refused_in_typers_words():
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["list", "--limit", "many"])
    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.output and "valid integer" in result.output

"""Values converted without pydantic (`batchctl.cli.coercion`) come out as Typer's own conversion gives them."""

from __future__ import annotations

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


def test_only_a_tested_typer_gets_the_quick_conversion(monkeypatch):
    import typer

    from batchctl.cli import coercion

    assert coercion._tested_typer()  # the Typer this suite runs with: else widen TESTED_TYPER after checking it
    for version, tested in (("0.25.9", False), ("0.26.0", True), ("0.29.2", True), ("0.30.0", False), ("x", False)):
        monkeypatch.setattr(typer, "__version__", version)
        assert coercion._tested_typer() is tested, version


def test_every_parameter_gets_the_quick_conversion():
    quick = [p for _, _, p in PARAMS if isinstance(p._runtime_param, QuickRuntimeParam)]
    assert len(quick) > 100  # every command's options and arguments, and each one's --help
    assert all(isinstance(p._runtime_param, QuickRuntimeParam) for _, _, p in PARAMS if p.type_descriptor.file_annotation is None)


@pytest.mark.parametrize("value", [None, "", "x", "-", " two words ", "7", "1.5", "true", "{path}", "{dir}", "{missing}",
                                   ("batch_1",), ("a", "b c"), (), ("x", 7)])  # fmt: skip
def test_each_value_converts_as_typer_converts_it(tmp_path, value):
    from typer._coercion import build_runtime_param

    (tmp_path / "file.jsonl").write_text("{}\n")
    if isinstance(value, str):
        value = value.format(path=tmp_path / "file.jsonl", dir=tmp_path, missing=tmp_path / "nope" / "x.jsonl")
    for path, _, param in PARAMS:
        if not isinstance(param._runtime_param, QuickRuntimeParam):
            continue
        typer_own = build_runtime_param(param.type_descriptor)
        assert outcome(param._runtime_param.coerce, value, param, CTX) == outcome(typer_own.coerce, value, param, CTX), (path, param.name)


def test_a_bad_value_is_still_refused_in_typers_words():
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["list", "--limit", "many"])
    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.output and "valid integer" in result.output

"""Under --json a usage error (a mistyped command, option or value) is on stdout as every other error is."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from batchctl.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args, message, command, usage",
    [
        (["--json", "list", "--limit", "many"], "Invalid value for '--limit'", "batchctl list", True),
        (["list", "--limit", "many", "--json"], "Invalid value for '--limit'", "batchctl list", True),
        (["--json", "nosuchcmd"], "No such command 'nosuchcmd'", "batchctl", True),
        (["--json", "--bogus", "list"], "No such option: --bogus", "batchctl", True),
        # an option left without its value: click's parser names no command; the hint and the usage are the
        # command's whose option it is
        (["status", "--json", "--interval"], "requires an argument", "batchctl status", True),
        (["--json", "validate", "f.jsonl", "--max-problems"], "Option '--max-problems' requires", "batchctl validate", True),
        (["profile", "add", "gw", "--json", "--base-url"], "Option '--base-url' requires", "batchctl profile add", True),
        (["list", "--json", "--profile"], "Option '--profile' requires", "batchctl list", True),  # a global one after it
        (["--json", "--profile"], "Option '--profile' requires", "batchctl", True),
    ],
)
def test_usage_errors_are_json_on_stdout_and_usage_on_stderr(args, message, command, usage):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert message in error["message"]
    assert error["exit_code"] == 2 and error["hint"] == f"Run '{command} -h' for usage."
    assert message in result.stderr and ("Usage:" in result.stderr) is usage  # what a person reads, as without --json


def test_a_global_option_between_a_group_and_its_sub_command_is_the_global_one():
    # `--json` is no option of `profile`: it is the global flag there too, so the error is about `bogus`
    result = runner.invoke(app, ["profile", "--json", "bogus"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["message"] == "No such command 'bogus'." and error["hint"] == "Run 'batchctl profile -h' for usage."
    listed = runner.invoke(app, ["profile", "--json", "list"])
    assert listed.exit_code == 0, listed.output
    assert [p["name"] for p in json.loads(listed.stdout)] == ["local"]


def test_without_json_an_option_without_its_value_names_the_command_to_ask():
    result = runner.invoke(app, ["validate", "f.jsonl", "--max-problems"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "Usage: batchctl validate [OPTIONS] FILE",
        "Try 'batchctl validate -h' for help.",
        "",
        "Error: Option '--max-problems' requires an argument.",
    ]


def test_without_json_a_usage_error_prints_nothing_on_stdout():
    result = runner.invoke(app, ["list", "--limit", "many"])
    assert result.exit_code == 2
    assert result.stdout == "" and "Invalid value for '--limit'" in result.stderr


def test_json_after_the_double_dash_is_an_argument_not_the_flag():
    result = runner.invoke(app, ["validate", "--", "--json"])
    assert result.stdout == ""


def test_json_after_the_double_dash_at_the_root_is_no_flag_either():
    result = runner.invoke(app, ["--", "--json"])
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize("group, first", [("profile", "add"), ("files", "list"), ("profile price", None), ("", None)])
def test_a_group_without_a_command_is_a_one_line_json_error_naming_its_commands(group, first):
    """Click's "no command" error is the group's whole help; under --json the message names the commands
    instead, and the help is still there for a person, on stderr."""
    result = runner.invoke(app, [*group.split(), "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    command = f"batchctl {group}".strip()
    assert error["message"].startswith(f"{command} needs a command: one of ")
    assert "\n" not in error["message"] and "Usage:" not in error["message"]
    if first:
        assert error["message"].split("one of ")[1].split(", ")[0] == first
    assert error["hint"] == f"Run '{command} -h' for usage."
    assert "Usage:" in result.stderr

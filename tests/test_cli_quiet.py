"""`-q`: ids only on stdout, for `$(...)` and `xargs`."""

from __future__ import annotations

from typer.testing import CliRunner

from batchctl.cli.app import app
from test_cli_download import finished_batch, flaky  # noqa: F401 - flaky is a fixture (a failing server)

runner = CliRunner()


def test_download_quiet_prints_the_saved_files_paths_and_nothing_else(flaky, tmp_path, in_tmp):
    """Before, -q still printed the bill (requests, tokens, cost) on stdout."""
    batch_id = finished_batch(flaky, tmp_path)
    result = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["res.jsonl", "res.errors.jsonl"]
    assert (in_tmp / "res.jsonl").stat().st_size > 0


def test_download_quiet_to_stdout_leaves_stdout_to_the_data(flaky, tmp_path, in_tmp):
    batch_id = finished_batch(flaky, tmp_path)
    result = runner.invoke(app, ["download", batch_id, "--content", "-o", "-", "-q"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("{") for line in lines), lines[:3]


def test_prepare_quiet_prints_the_file_it_wrote_and_nothing_else(tmp_path, in_tmp):
    """Before, -q printed the summary table on stdout."""
    (in_tmp / "rows.csv").write_text("id,text\n1,hello\n2,world\n")
    result = runner.invoke(app, ["prepare", "rows.csv", "-t", "{text}", "--model", "echo", "-o", "req.jsonl", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["req.jsonl"]
    assert len((in_tmp / "req.jsonl").read_text().splitlines()) == 2

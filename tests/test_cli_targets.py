"""Where results are written: a file renamed into place, never a device or a pipe replaced by it."""

from __future__ import annotations

import os
import stat

from typer.testing import CliRunner

from batchctl.cli.app import app
from test_cli_download import finished_batch, flaky  # noqa: F401 - flaky is a fixture (a failing server)

runner = CliRunner()


def test_force_does_not_replace_a_named_pipe_with_the_results(flaky, tmp_path, in_tmp):
    """`download -o /dev/full --force` (as root) replaced the device with a 16 MB file: the result is
    written to `<name>.part` and renamed over whatever has the name."""
    batch_id = finished_batch(flaky, tmp_path)
    os.mkfifo(in_tmp / "pipe.jsonl")
    result = runner.invoke(app, ["download", batch_id, "-o", "pipe.jsonl", "--force"])
    assert result.exit_code == 1, result.output
    assert "Error: pipe.jsonl is a named pipe, not a file: it would be replaced, not written to" in result.stderr
    assert stat.S_ISFIFO(os.stat(in_tmp / "pipe.jsonl").st_mode)
    errors_to_pipe = runner.invoke(app, ["download", batch_id, "-o", "res.jsonl", "--errors-output", "pipe.jsonl", "--force"])
    assert errors_to_pipe.exit_code == 1 and "Error: pipe.jsonl is a named pipe" in errors_to_pipe.stderr
    assert not (in_tmp / "res.jsonl").exists()  # refused before anything was downloaded

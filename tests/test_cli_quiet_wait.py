"""`submit --wait -q`: only the ids (stdout) and errors; no status panel, no summary, no bill on stderr."""

from __future__ import annotations

from typer.testing import CliRunner

from batch_factory import write_requests
from batchctl.cli.app import app

runner = CliRunner()


def test_submit_wait_quiet_prints_no_panel(server, in_tmp):
    source = write_requests(in_tmp / "chat.jsonl", 3)
    result = runner.invoke(app, ["-q", "submit", str(source), "--wait", "--interval", "0.1", "-o", "r.jsonl"])
    assert result.exit_code == 0, result.output
    assert (in_tmp / "r.jsonl").exists()
    for word in ("Requests", "completed", "╭", "│", "Batch", "Watching"):
        assert word not in result.stderr, result.stderr
    assert all(line.startswith(("batch_", "job_")) for line in result.stdout.splitlines()), result.stdout

"""`files delete` of an id the server does not know: an Error line and a hint, exit 1."""

from __future__ import annotations

from typer.testing import CliRunner

from batchctl.cli.app import app

runner = CliRunner()


def test_deleting_a_file_that_does_not_exist_is_an_error(server):
    r = runner.invoke(app, ["files", "delete", "file_nope", "--yes"])
    assert r.exit_code == 1, r.output
    lines = r.stderr.splitlines()
    assert lines[0] == f"Error: no file file_nope on {server.base_url}: nothing to delete"
    assert "batchctl files list" in lines[1] and "Warning" not in r.stderr and "Traceback" not in r.output

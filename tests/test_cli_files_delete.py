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


def test_files_list_quiet_prints_the_ids_for_xargs(server, tmp_path):
    import httpx

    uploaded = []
    for name in ("a.jsonl", "b.jsonl"):
        response = httpx.post(f"{server.base_url}/files", files={"file": (name, b"{}\n")}, data={"purpose": "batch"})
        uploaded.append(response.json()["id"])
    r = runner.invoke(app, ["-q", "files", "list"])
    assert r.exit_code == 0, r.output
    assert sorted(r.stdout.split()) == sorted(uploaded)  # the ids, one a line, nothing else


def test_the_not_found_line_masks_a_password_in_the_base_url(server):
    url = server.base_url.replace("http://", "http://bob:hunter2pass@")
    r = runner.invoke(app, ["--base-url", url, "files", "delete", "file_nope", "--yes"])
    assert r.exit_code == 1, r.output
    masked = server.base_url.replace("http://", "http://bob:****@")
    assert r.stderr.splitlines()[0] == f"Error: no file file_nope on {masked}: nothing to delete"
    assert "hunter2pass" not in r.output

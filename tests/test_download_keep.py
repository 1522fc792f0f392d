"""A download run again keeps a file only if it is the file an earlier download of it saved, unchanged:
another batch's results of the same size, or a same-length edit, are refused like any existing file.
End to end against a real local server."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchctl.api import BatchClient
from batchctl.cli.app import app
from test_cli_download import wait_finished

pytestmark = pytest.mark.e2e
runner = CliRunner()
FORCE_HINT = "Use --force to overwrite, or choose another name with --output / --errors-output."


@pytest.fixture
def local(start_server, in_tmp):
    """A server with the echo model and an active profile pointing at it."""
    handle = start_server(failure_rate=0.0)
    result = runner.invoke(app, ["profile", "add", "here", "--preset", "local", "--base-url", handle.base_url,
                                 "--poll-interval", "0.1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return handle


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_request(path: Path, word: str) -> Path:
    body = {"model": "echo", "messages": [{"role": "user", "content": word}]}
    path.write_text(json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n")
    return path


def finished(server, word: str, in_tmp: Path) -> str:
    """A batch of one request asking `word`, submitted and finished."""
    result = invoke("submit", str(one_request(in_tmp / f"{word}.jsonl", word)), "-q")
    assert result.exit_code == 0, result.output
    return wait_finished(server.base_url, result.stdout.strip())


@pytest.fixture
def fetches(monkeypatch):
    """The file ids whose content was fetched (the real download, counted)."""
    from batchctl.api.resources.files import Files

    seen: list[str] = []
    real = Files.download_to

    def counted(self, file_id, *args, **kwargs):
        seen.append(file_id)
        return real(self, file_id, *args, **kwargs)

    monkeypatch.setattr(Files, "download_to", counted)
    return seen


def test_another_batchs_results_of_the_same_size_are_refused_not_kept(local, in_tmp):
    """The new user's trial: `submit A --wait -o ans.jsonl`, then `download B -o ans.jsonl` whose output has
    the same size kept A's answers and said "complete from an earlier run: kept" (exit 0)."""
    first = invoke("submit", str(one_request(in_tmp / "A.jsonl", "cat")), "--wait", "-q", "-o", "ans.jsonl")
    assert first.exit_code == 0, first.output
    saved = Path("ans.jsonl").read_bytes()
    batch_b = finished(local, "dog", in_tmp)
    with BatchClient(local.base_url) as client:  # the case: B's output has ans.jsonl's size exactly
        assert client.files.retrieve(client.batches.retrieve(batch_b).output_file_id).bytes == len(saved)

    result = invoke("download", batch_b, "-o", "ans.jsonl")
    assert result.exit_code == 1, result.output
    error, hint = result.stderr.splitlines()
    assert error.startswith("Error: ans.jsonl already exists (saved from file-") and " of batch_" in error
    assert batch_b not in error and hint == FORCE_HINT
    assert Path("ans.jsonl").read_bytes() == saved  # untouched: still A's answer

    forced = invoke("download", batch_b, "-o", "ans.jsonl", "--force")
    assert forced.exit_code == 0, forced.output
    assert "echo: dog" in Path("ans.jsonl").read_text() and "kept" not in forced.stderr


def test_the_same_download_run_again_keeps_its_file_and_a_same_length_edit_is_refused(local, in_tmp, fetches):
    batch_id = finished(local, "dog", in_tmp)
    first = invoke("download", batch_id, "-o", "ans.jsonl")
    assert first.exit_code == 0, first.output
    path = Path("ans.jsonl")
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    assert len(fetches) == 1

    again = invoke("--json", "download", batch_id, "-o", "ans.jsonl")
    assert again.exit_code == 0, again.output
    assert [(f["path"], f["kept"]) for f in json.loads(again.stdout)["files"]] == [("ans.jsonl", True)]
    assert len(fetches) == 1  # not fetched again
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp

    path.write_bytes(before.replace(b"echo: dog", b"echo: cow"))  # a hand edit of the same length
    assert path.stat().st_size == len(before)
    edited = invoke("download", batch_id, "-o", "ans.jsonl")
    assert edited.exit_code == 1, edited.output
    assert edited.stderr.splitlines() == ["Error: ans.jsonl already exists (changed since it was downloaded)", FORCE_HINT]
    assert b"echo: cow" in path.read_bytes() and len(fetches) == 1


def test_an_edit_that_puts_the_modification_time_back_is_not_kept(local, in_tmp):
    batch_id = finished(local, "dog", in_tmp)
    assert invoke("download", batch_id, "-o", "ans.jsonl").exit_code == 0
    path = Path("ans.jsonl")
    st = path.stat()
    time.sleep(0.02)
    path.write_bytes(path.read_bytes().replace(b"echo: dog", b"echo: cow"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r` back: same size, same mtime
    result = invoke("download", batch_id, "-o", "ans.jsonl")
    assert result.exit_code == 1, result.output
    assert "(changed since it was downloaded)" in result.stderr
    assert b"echo: cow" in path.read_bytes()


def test_a_file_no_download_recorded_saving_is_not_kept(local, in_tmp):
    """This batch's very results, but not saved there by a download (a release before the journal recorded
    saved files, or a copy with its times kept): refused, and the message says why; --force saves it
    again, after which a re-run keeps it."""
    batch_id = finished(local, "dog", in_tmp)
    assert invoke("download", batch_id, "-o", "ans.jsonl").exit_code == 0
    shutil.copy2("ans.jsonl", "old.jsonl")
    result = invoke("download", batch_id, "-o", "old.jsonl")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == ["Error: old.jsonl already exists (not saved by this download)", FORCE_HINT]

    assert invoke("download", batch_id, "-o", "old.jsonl", "--force").exit_code == 0
    kept = invoke("download", batch_id, "-o", "old.jsonl")
    assert kept.exit_code == 0 and "complete from an earlier run: kept" in kept.stderr


def test_a_job_submitted_again_keeps_its_saved_results_only_while_unchanged(local, in_tmp, fetches, monkeypatch):
    """`submit FILE --wait` run again (a one-part job): its saved output is kept, not fetched again; once that
    file is edited (same length) it is no longer this job's results, and they are saved afresh."""
    source = one_request(in_tmp / "chat.jsonl", "dog")
    names = iter(["first.jsonl", "another-name.jsonl", "afresh.jsonl"])  # a default name per run, not per second
    monkeypatch.setattr("batchctl.results.default_output_name", lambda *a, **k: next(names))
    first = invoke("--json", "submit", str(source), "--wait")
    assert first.exit_code == 0, first.output
    (saved,) = [Path(f["path"]) for f in json.loads(first.stdout)["download"]["files"] if f["kind"] == "output"]
    whole, stamp = saved.read_bytes(), saved.stat().st_mtime_ns
    assert len(fetches) == 1

    again = invoke("--json", "submit", str(source), "--wait")
    assert again.exit_code == 0, again.output
    files = json.loads(again.stdout)["download"]["files"]
    assert [(f["path"], f["kept"]) for f in files] == [("first.jsonl", True)]
    assert len(fetches) == 1 and saved.stat().st_mtime_ns == stamp and not Path("another-name.jsonl").exists()

    saved.write_bytes(whole.replace(b"echo: dog", b"echo: cow"))
    edited = invoke("--json", "submit", str(source), "--wait")
    assert edited.exit_code == 0, edited.output
    files = json.loads(edited.stdout)["download"]["files"]
    assert [(f["path"], f["kept"]) for f in files] == [("afresh.jsonl", False)]
    assert Path("afresh.jsonl").read_bytes() == whole and len(fetches) == 2
    assert b"echo: cow" in saved.read_bytes()  # the edited file is left alone



def test_the_refusal_gives_one_reason_for_all_files_or_each_files_own():
    from batchctl.downloading import reasons_said

    out, err = Path("r.jsonl"), Path("r.errors.jsonl")
    same = {out: "not saved by this download", err: "not saved by this download"}
    assert reasons_said([out, err], same) == " (not saved by this download)"
    assert reasons_said([out, err], {out: "changed since it was downloaded"}) == " (r.jsonl: changed since it was downloaded)"
    assert reasons_said([out], {}) == ""

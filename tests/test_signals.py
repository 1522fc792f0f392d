"""SIGTERM and SIGHUP clean up as Ctrl+C does: no `.part` file, no temporary upload copy (real processes,
real signals); leftovers of a killed run (`kill -9`) are swept by a later one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from batch_factory import write_requests
from batchctl.scratch import sweep
from server_fixture import sigint_by_default

pytestmark = pytest.mark.e2e


def _server_with(start_server, tmp_path, rules: list[dict]):
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"rules": rules}))
    return start_server(extra_args=["--faults", str(path)])


def _run_until_fault(server, argv: list[str], cwd: Path) -> subprocess.Popen:
    """Start `batchctl argv` and return once the server has applied its (slow) fault: the command is mid-request."""
    env = dict(os.environ, BATCHCTL_BASE_URL=server.base_url, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "batchctl", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_by_default)  # fmt: skip
    deadline = time.monotonic() + 20
    while "fault {" not in server.log():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


def _finished_batch(server, tmp_path) -> str:
    with httpx.Client() as http:
        content = write_requests(tmp_path / "in.jsonl", 5).read_bytes()
        file_id = http.post(f"{server.base_url}/files", files={"file": ("a.jsonl", content)},
                            data={"purpose": "batch"}).json()["id"]  # fmt: skip
        batch_id = http.post(f"{server.base_url}/batches", json={"input_file_id": file_id, "endpoint":
                             "/v1/chat/completions", "completion_window": "24h"}).json()["id"]  # fmt: skip
        deadline = time.monotonic() + 10
        while http.get(f"{server.base_url}/batches/{batch_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return batch_id


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_during_a_download_leaves_no_part_file(start_server, tmp_path, signum, code):
    server = _server_with(start_server, tmp_path, [{"method": "GET", "path": "/v1/files/*/content", "delay": 30}])
    batch_id = _finished_batch(server, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = _run_until_fault(server, ["download", batch_id, "-o", "out.jsonl"], work)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == code, stderr
    assert f"Terminated by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    assert list(work.iterdir()) == []


def test_sigterm_during_a_model_rewrite_upload_leaves_no_copy(start_server, tmp_path):
    server = _server_with(start_server, tmp_path, [{"method": "POST", "path": "/v1/files", "delay": 30}])
    source = write_requests(tmp_path / "in.jsonl", 5)
    proc = _run_until_fault(server, ["submit", str(source), "--model", "other-model"], tmp_path)
    scratch = Path(os.environ["BATCHCTL_DATA_DIR"]) / "tmp"
    assert [p.name.startswith("batchctl-upload-") for p in scratch.iterdir()] == [True]  # the copy, mid-upload
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert list(scratch.iterdir()) == []


def test_copies_of_dead_runs_are_swept_and_others_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - 3600
    names = {
        "dead_old": f"batchctl-upload-{dead.pid}-abc",
        "dead_new": f"batchctl-upload-{dead.pid}-def",
        "alive_old": f"batchctl-upload-{os.getppid()}-ghi",
    }
    for key, name in names.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "in.jsonl").write_text("{}\n")
        if key.endswith("old"):
            os.utime(tmp_path / name, (old, old))
    removed = sweep(tmp_path)
    assert removed == [tmp_path / names["dead_old"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["dead_new"], names["alive_old"]])


def test_a_download_sweeps_the_scratch_folders_killed_runs_left_beside_its_output(start_server, tmp_path):
    """`kill -9` during `download JOB` (or a merge, a join, a retry) left `.batchctl-download-…` folders
    of results beside the output for good; the next download in that folder sweeps those of dead runs."""
    server = start_server()
    batch_id = _finished_batch(server, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - 3600
    leftover, unrelated = out / f".batchctl-download-{dead.pid}-abc", out / f".batchctl-join-{dead.pid}-abc"
    for folder in (leftover, unrelated):
        folder.mkdir()
        (folder / "output-0.jsonl").write_text("{}\n")
        os.utime(folder, (old, old))
    env = dict(os.environ, BATCHCTL_BASE_URL=server.base_url)
    done = subprocess.run([sys.executable, "-m", "batchctl", "download", batch_id, "--merge", str(tmp_path / "in.jsonl"),
                           "-o", str(out / "res.jsonl")], env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(["res.jsonl", unrelated.name])  # a join sweeps its own

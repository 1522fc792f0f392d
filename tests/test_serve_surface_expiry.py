"""Files that expire: `serve` in this process (uvicorn in a thread, real HTTP on 127.0.0.1) with the files'
clock injected, so an hour passes without waiting for it; and a server.db of an older release."""

from __future__ import annotations

import contextlib

import sqlite3
import time
from pathlib import Path

import httpx
import openai
import pytest

from batchctl.server.config import ServerConfig
from batchctl.server.store import Store
from server_fixture import app_in_thread, free_port
from test_server_api import chat_lines, wait_batch, write_jsonl

pytestmark = pytest.mark.e2e

HOUR = {"anchor": "created_at", "seconds": 3600}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def start_clocked(tmp_path, monkeypatch):
    """`start_clocked(sweep_seconds=60)` -> (base_url, clock, data_dir) of a server whose files' clock the
    test moves. With the default sweep period only a request can find a file expired."""

    from batchctl.server import app as server_app

    with contextlib.ExitStack() as servers:

        def start(sweep_seconds: float = 60.0, **config):
            monkeypatch.setattr(server_app, "SWEEP_SECONDS", sweep_seconds)
            clock = Clock()
            port = free_port()
            data_dir = tmp_path / "data"
            app = server_app.create_app(ServerConfig(port=port, data_dir=data_dir, **config), clock=clock)
            root = servers.enter_context(app_in_thread(app, port))
            return f"{root}/v1", clock, data_dir

        yield start


@pytest.fixture
def clocked_server(start_clocked):
    return start_clocked()


def test_an_expired_file_answers_404_and_is_gone(clocked_server, tmp_path):
    base_url, clock, data_dir = clocked_server
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(2))
    with open(path, "rb") as f:
        short = client.files.create(file=f, purpose="batch", expires_after=HOUR)
    with open(path, "rb") as f:
        kept = client.files.create(file=f, purpose="user_data")
    assert short.expires_at == int(clock.now) + 3600 and kept.expires_at is None
    assert client.files.retrieve(short.id).id == short.id

    clock.now += 3599
    assert client.files.content(short.id).content == path.read_bytes()  # not yet
    clock.now += 1
    assert (data_dir / "files" / short.id).exists()  # expired, and deleted when next asked for
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(short.id)
    assert err.value.param == "file_id"
    with pytest.raises(openai.NotFoundError):
        client.files.content(short.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(short.id)
    assert not (data_dir / "files" / short.id).exists()  # content and row both gone
    assert [f.id for f in client.files.list()] == [kept.id]
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id=short.id, endpoint="/v1/chat/completions", completion_window="24h")


def test_the_sweep_deletes_expired_files_nobody_asks_for(start_clocked, tmp_path):
    base_url, clock, data_dir = start_clocked(sweep_seconds=0.05)
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    with open(write_jsonl(tmp_path / "in.jsonl", chat_lines(1)), "rb") as f:
        file = client.files.create(file=f, purpose="batch")  # the 30-day default
    clock.now += 30 * 86400
    deadline = time.monotonic() + 5
    while (data_dir / "files" / file.id).exists():  # no request for it: only the sweep can delete it
        assert time.monotonic() < deadline, "the sweep did not delete the expired file"
        time.sleep(0.02)
    db = sqlite3.connect(data_dir / "server.db")
    assert db.execute("SELECT COUNT(*) FROM files WHERE id = ?", (file.id,)).fetchone()[0] == 0
    db.close()


def test_output_files_expire_as_output_expires_after_asks(clocked_server, tmp_path):
    base_url, clock, _ = clocked_server
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    with open(write_jsonl(tmp_path / "in.jsonl", chat_lines(3)), "rb") as f:
        file = client.files.create(file=f, purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", output_expires_after=HOUR
    )
    with httpx.Client(base_url=base_url) as http:
        done = wait_batch(http, batch.id, ("completed",))
    output = client.files.retrieve(done["output_file_id"])
    assert output.expires_at == output.created_at + 3600
    clock.now += 3600
    with pytest.raises(openai.NotFoundError):
        client.files.content(done["output_file_id"])
    assert client.files.retrieve(file.id).id == file.id  # the input file keeps its own 30 days
    assert client.batches.retrieve(batch.id).output_file_id == done["output_file_id"]  # OpenAI keeps the id too


def test_the_input_file_of_a_running_batch_outlives_its_expiry_until_the_batch_ends(start_clocked, tmp_path):
    base_url, clock, data_dir = start_clocked(sweep_seconds=0.05, latency=0.3, concurrency=1)
    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
    with open(write_jsonl(tmp_path / "in.jsonl", chat_lines(3)), "rb") as f:
        file = client.files.create(file=f, purpose="batch", expires_after=HOUR)
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    clock.now += 7200
    time.sleep(0.2)  # a few sweeps
    assert client.files.retrieve(file.id).expires_at < clock.now  # expired, but the batch still reads it
    with httpx.Client(base_url=base_url) as http:
        done = wait_batch(http, batch.id, ("completed",))
    assert done["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file.id)  # the batch has ended: now it goes
    assert not (data_dir / "files" / file.id).exists()


OLD_SCHEMA = """
CREATE TABLE files (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL, path TEXT NOT NULL);
CREATE TABLE batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, endpoint TEXT NOT NULL,
    model TEXT, input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL, window_seconds REAL NOT NULL,
    created_ts REAL NOT NULL, status TEXT NOT NULL, errors TEXT, output_file_id TEXT, error_file_id TEXT,
    created_at INTEGER NOT NULL, in_progress_at INTEGER, expires_at INTEGER, finalizing_at INTEGER,
    completed_at INTEGER, failed_at INTEGER, expired_at INTEGER, cancelling_at INTEGER, cancelled_at INTEGER,
    total INTEGER NOT NULL DEFAULT 0, completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0, metadata TEXT);
INSERT INTO files (id, bytes, created_at, filename, purpose, path) VALUES ('file-old', 3, 1, 'a.jsonl', 'batch', '/x');
INSERT INTO batches (id, endpoint, input_file_id, completion_window, window_seconds, created_ts, status, created_at)
    VALUES ('batch_old', '/v1/chat/completions', 'file-old', '24h', 86400, 1, 'completed', 1);
"""


def test_a_server_db_of_an_older_release_gains_the_new_columns(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = sqlite3.connect(data_dir / "server.db")
    db.executescript(OLD_SCHEMA)
    db.close()
    store = Store(data_dir)
    try:
        old = store.get_file("file-old")
        assert old is not None and old["expires_at"] is None  # files of before keep until deleted
        batch = store.get_batch("batch_old")
        assert batch is not None and (batch["cached_tokens"], batch["reasoning_tokens"]) == (0, 0)
        assert batch["output_expires_seconds"] is None
    finally:
        store.close()
    Store(data_dir).close()  # opening again changes nothing

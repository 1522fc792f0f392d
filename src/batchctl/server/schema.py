"""The local server's SQLite schema, and how a `server.db` of an older release is brought up to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT UNIQUE NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    filename   TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    path       TEXT NOT NULL,
    expires_at INTEGER
);
-- Where deleted files stood in the list order: a list cursor naming one still pages on.
CREATE TABLE IF NOT EXISTS file_tombstones (
    id  TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT UNIQUE NOT NULL,
    endpoint          TEXT NOT NULL,
    model             TEXT,
    input_file_id     TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    window_seconds    REAL NOT NULL,
    created_ts        REAL NOT NULL,
    status            TEXT NOT NULL,
    errors            TEXT,
    output_file_id    TEXT,
    error_file_id     TEXT,
    created_at        INTEGER NOT NULL,
    in_progress_at    INTEGER,
    expires_at        INTEGER,
    finalizing_at     INTEGER,
    completed_at      INTEGER,
    failed_at         INTEGER,
    expired_at        INTEGER,
    cancelling_at     INTEGER,
    cancelled_at      INTEGER,
    total             INTEGER NOT NULL DEFAULT 0,
    completed         INTEGER NOT NULL DEFAULT 0,
    failed            INTEGER NOT NULL DEFAULT 0,
    input_tokens      INTEGER NOT NULL DEFAULT 0,
    output_tokens     INTEGER NOT NULL DEFAULT 0,
    metadata          TEXT,
    output_expires_seconds INTEGER,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS results (
    batch_id  TEXT NOT NULL,
    line_no   INTEGER NOT NULL,
    custom_id TEXT NOT NULL,
    ok        INTEGER NOT NULL,
    result    TEXT NOT NULL,
    PRIMARY KEY (batch_id, line_no)
);
-- Requests sent to an upstream whose result was not recorded yet, as releases before batches.started_upto marked
-- them one row each: a database such a server left after a crash still counts them (Store.take_interrupted).
CREATE TABLE IF NOT EXISTS inflight (
    batch_id  TEXT NOT NULL,
    line_no   INTEGER NOT NULL,
    started   REAL NOT NULL,
    PRIMARY KEY (batch_id, line_no)
);
"""
# Columns added after the first release: a server.db made before them gains them on open (ALTER TABLE).
ADDED_COLUMNS = (
    ("files", "expires_at", "INTEGER"),
    ("batches", "output_expires_seconds", "INTEGER"),
    ("batches", "cached_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "reasoning_tokens", "INTEGER NOT NULL DEFAULT 0"),
    # `serve --upstream`: every request line up to this one may have been sent (-1: none). Lines are sent in
    # input order, so those of them without a result were in flight (docs/reliability.md).
    ("batches", "started_upto", "INTEGER NOT NULL DEFAULT -1"),
    # Which executor the batch was created for (`executors.executor_identity`: `echo`, or the upstream's URL,
    # its password masked, and channel); only a server with that executor runs it. NULL: an older release's.
    ("batches", "executor", "TEXT"),
)


def create_schema(db: sqlite3.Connection) -> None:
    """Create the tables a new database lacks, and add the columns an older one lacks."""
    db.executescript(SCHEMA)
    for table, column, kind in ADDED_COLUMNS:
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    db.commit()


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash may lose the last commits.
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db

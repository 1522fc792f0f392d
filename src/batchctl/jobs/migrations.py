"""The journal database's schema, as numbered migrations recorded in the database, and the one-time
import of the JSON-lines journal it replaces.

As in simonw/llm: each migration is a function named `mNNN_…`, applied in list order, once; the
`_migrations` table records its name and when it ran. New schema changes are new functions at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from batchctl.jobs.db import write_transaction
from batchctl.jobs.records import BATCH_COLUMNS

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database has had, in the order they ran."""
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations the database lacks, each in its own transaction; returns their names.

    Safe when several processes open a new database at once: each migration is re-checked under the
    write lock, so the one that loses the race skips it.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    already = set(applied_migrations(conn))
    ran: list[str] = []
    for fn in MIGRATIONS:
        name = fn.__name__
        if name in already:
            continue
        with write_transaction(conn):
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue
            fn(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
        ran.append(name)
    return ran


@migration
def m001_batches(conn: sqlite3.Connection) -> None:
    # The routing record of every batch batchctl created, job or not: what journal.jsonl held.
    conn.execute(
        """CREATE TABLE batches (
            batch_id TEXT PRIMARY KEY,
            profile TEXT NOT NULL,
            base_url TEXT NOT NULL,
            provider TEXT NOT NULL,
            channel TEXT,
            input_path TEXT,
            input_file_id TEXT,
            endpoint TEXT,
            model TEXT,
            output_path TEXT,
            recorded_at REAL NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX batches_recorded_at ON batches (recorded_at)")
    conn.execute("CREATE INDEX batches_input_file_id ON batches (input_file_id)")


@migration
def m002_jobs(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            input_path TEXT NOT NULL,
            input_sha256 TEXT NOT NULL,
            input_size INTEGER NOT NULL,
            input_lines INTEGER NOT NULL,
            profile TEXT NOT NULL,
            base_url TEXT NOT NULL,
            provider TEXT NOT NULL,
            channel TEXT,
            endpoint TEXT,
            model TEXT,
            completion_window TEXT,
            options_key TEXT NOT NULL,
            state TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            metadata TEXT NOT NULL DEFAULT '{}'
        )"""
    )
    # At most one live job per submission, even when two processes submit the same file at once.
    conn.execute(
        "CREATE UNIQUE INDEX jobs_live_options_key ON jobs (options_key) "
        "WHERE state IN ('splitting', 'submitting', 'active', 'completed')"
    )
    conn.execute("CREATE INDEX jobs_created_at ON jobs (created_at)")
    conn.execute(
        """CREATE TABLE parts (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            part INTEGER NOT NULL,
            first_line INTEGER NOT NULL,
            last_line INTEGER NOT NULL,
            byte_start INTEGER NOT NULL,
            byte_end INTEGER NOT NULL,
            request_count INTEGER NOT NULL,
            path TEXT,
            token TEXT,
            file_id TEXT,
            batch_id TEXT UNIQUE,
            step TEXT NOT NULL DEFAULT 'planned',
            status TEXT,
            total INTEGER,
            completed INTEGER,
            failed INTEGER,
            output_file_id TEXT,
            error_file_id TEXT,
            retry_of INTEGER,
            updated_at REAL NOT NULL,
            PRIMARY KEY (job_id, part)
        )"""
    )
    # Written before a step runs and closed after: an open row after a crash names the step in flight.
    conn.execute(
        """CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            part INTEGER,
            name TEXT NOT NULL,
            token TEXT,
            started_at REAL NOT NULL,
            finished_at REAL,
            outcome TEXT,
            detail TEXT
        )"""
    )
    conn.execute("CREATE INDEX steps_job ON steps (job_id, part)")
    # Batches learn which job and part they belong to; a forgotten job's batches keep their routing.
    conn.execute("ALTER TABLE batches ADD COLUMN job_id TEXT REFERENCES jobs (id) ON DELETE SET NULL")
    conn.execute("ALTER TABLE batches ADD COLUMN part INTEGER")
    conn.execute("CREATE INDEX batches_job ON batches (job_id)")



@migration
def m003_bills(conn: sqlite3.Connection) -> None:
    # What `download` found a job (or a plain batch) cost: the bill's totals as JSON (Journal.record_bill).
    conn.execute("ALTER TABLE jobs ADD COLUMN bill TEXT")
    conn.execute("ALTER TABLE batches ADD COLUMN bill TEXT")


@migration
def m004_saved_files(conn: sqlite3.Connection) -> None:
    # Each result file a download wrote whole, by its resolved path (the last download there wins): a
    # re-run keeps a file only if it is the one recorded here, unchanged (records.SavedFileRecord).
    conn.execute(
        """CREATE TABLE saved_files (
            path TEXT PRIMARY KEY,
            file_id TEXT NOT NULL,
            batch_id TEXT,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            saved_at REAL NOT NULL
        )"""
    )


# -- the JSON-lines journal (batchctl <= this release) ------------------------------------------------

LEGACY_FILENAME = "journal.jsonl"
IMPORTED_SUFFIX = ".imported"


def latest_records(lines: Iterable[str]) -> dict[str, dict]:
    """Each batch id's last record in the old journal, known fields only; torn lines are skipped."""
    known = set(BATCH_COLUMNS) - {"job_id", "part"}
    found: dict[str, dict] = {}
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("batch_id"), str):
            continue
        record = {k: v for k, v in data.items() if k in known}
        if not all(isinstance(record.get(k), str) for k in ("profile", "base_url", "provider")):
            continue
        if not isinstance(record.get("recorded_at"), (int, float)):
            record["recorded_at"] = 0.0
        found[record["batch_id"]] = record
    return found


def import_legacy_journal(conn: sqlite3.Connection, jsonl: Path) -> int | None:
    """Copy `journal.jsonl` into `batches`, then rename it `journal.jsonl.imported`; None if absent.

    The rename comes after the commit, so a crash in between imports the file again on the next
    open, which is harmless: a row is only replaced by a record at least as recent.
    """
    try:
        handle = jsonl.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    columns = [c for c in BATCH_COLUMNS if c not in ("job_id", "part")]
    sql = (
        f"INSERT INTO batches ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT (batch_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns[1:])} "
        "WHERE excluded.recorded_at >= batches.recorded_at"
    )
    with handle, write_transaction(conn):
        if not jsonl.exists():  # another process imported and renamed it while we waited for the lock
            return None
        records = latest_records(handle)
        conn.executemany(sql, ([r.get(c) for c in columns] for r in records.values()))
    with contextlib.suppress(FileNotFoundError):
        os.replace(jsonl, _free_name(jsonl.with_name(jsonl.name + IMPORTED_SUFFIX)))
    return len(records)


def _free_name(path: Path) -> Path:
    """`path`, or `path.2`, `path.3`... so a second import never overwrites the first one's file."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate

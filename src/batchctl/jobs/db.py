"""How the journal's SQLite file is opened and written: owner-only, WAL, a busy timeout, foreign keys,
and write transactions that take the lock up front. So several batchctl processes can share it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

BUSY_TIMEOUT_S = 60.0  # a writer holds the lock for milliseconds; a minute means something is stuck


def ensure_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite does (its -wal and -shm files copy the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)


def connect(path: Path) -> sqlite3.Connection:
    """A connection with rows by name and no implicit transactions: writes say BEGIN IMMEDIATE themselves."""
    ensure_private_file(path)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = NORMAL")  # in WAL mode a power cut may lose the last commit, never corrupt
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode, which then sticks to it.

    Switching takes an exclusive lock, and when several processes open a new file at once SQLite
    answers "database is locked" at once instead of calling the busy handler: so retry until then.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("could not switch the journal to WAL mode: another process holds it")
        time.sleep(0.02)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: take the write lock up front.

    A deferred transaction that reads first and writes later fails with SQLITE_BUSY (the busy timeout
    cannot help it) when another process wrote in between; taking the lock first makes it wait.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

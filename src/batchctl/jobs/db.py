"""How the journal's SQLite file is opened and written: owner-only, WAL, a busy timeout, foreign keys,
and write transactions that take the lock up front. So several batchctl processes can share it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
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
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # in WAL mode a power cut may lose the last commit, never corrupt
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


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

"""The local journal: what batchctl remembers about each batch and job it created.

A batch on a New-API gateway must be reached through the same channel pin for its whole life, and a
batch may outlive the profile that was active when it was submitted. So `submit` records, per batch
id, the profile, base URL, provider and channel it used (plus the input file and model), and later
commands look the id up here. The records live in SQLite (`batchctl.jobs.store`, `<data dir>/journal.db`);
this module keeps the small per-batch interface the commands use, one short-lived connection per call,
and the record of which result files downloads saved where (so a re-run keeps only those).
"""

from __future__ import annotations

from pathlib import Path

from batchctl.jobs.records import JournalEntry, SavedFileRecord
from batchctl.jobs.store import Journal, journal_path

__all__ = ["JournalEntry", "entries", "forget_saved", "journal_path", "lookup", "record", "remember_saved", "saved_file",
           "update"]


def record(entry: JournalEntry) -> None:
    with Journal.open() as journal:
        journal.record_batch(entry)


def update(batch_id: str, **changes: object) -> JournalEntry | None:
    """Record new values for a known batch; returns the merged entry, or None if the id is unknown."""
    with Journal.open() as journal:
        return journal.update_batch(batch_id, **changes)


def entries() -> dict[str, JournalEntry]:
    """Every batch id's record, oldest first (the order the JSON-lines journal gave)."""
    with Journal.open() as journal:
        return {entry.batch_id: entry for entry in reversed(journal.batches())}


def lookup(batch_id: str) -> JournalEntry | None:
    with Journal.open() as journal:
        return journal.lookup_batch(batch_id)


def remember_saved(path: Path, file_id: str, batch_id: str | None) -> None:
    """Record that a download has just written server file `file_id` whole at `path` (as it is on disk
    now), so that a re-run keeps it (`saved_file`). Best effort: the file is saved either way, and
    without the record a re-run only refuses to overwrite it without --force."""
    import sqlite3

    try:
        record = SavedFileRecord.of(str(path.resolve()), file_id, batch_id, path.stat())
        with Journal.open() as journal:
            journal.record_saved_file(record)
    except (OSError, sqlite3.Error):
        pass


def forget_saved(paths: list[Path]) -> None:
    """Forget what downloads recorded saving at `paths`: something else was written there."""
    import sqlite3

    try:
        with Journal.open() as journal:
            journal.forget_saved_files(str(p.resolve()) for p in paths)
    except (OSError, sqlite3.Error):
        pass  # the record no longer matches the file on disk anyway (`SavedFileRecord.unchanged`)


def saved_file(path: Path) -> SavedFileRecord | None:
    """What a download recorded writing at `path` (`remember_saved`), or None."""
    with Journal.open() as journal:
        return journal.saved_file(str(path.resolve()))

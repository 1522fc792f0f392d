"""The local journal: what batchctl remembers about each batch and job it created.

A batch on a New-API gateway must be reached through the same channel pin for its whole life, and a
batch may outlive the profile that was active when it was submitted. So `submit` records, per batch
id, the profile, base URL, provider and channel it used (plus the input file and model), and later
commands look the id up here. The records live in SQLite (`batchctl.jobs.store`, `<data dir>/journal.db`);
this module keeps the small per-batch interface the commands use, one short-lived connection per call.
"""

from __future__ import annotations

from batchctl.jobs.records import JournalEntry
from batchctl.jobs.store import Journal, journal_path

__all__ = ["JournalEntry", "entries", "journal_path", "lookup", "record", "update"]


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

"""The local journal: what batchctl remembers about each batch and job it created.

A batch on a New-API gateway must be reached through the same channel pin for its whole life, and a
batch may outlive the profile that was active when it was submitted. So `submit` records, per batch
id, the profile, base URL, provider and channel it used (plus the input file and model), and later
commands look the id up here. The records live in SQLite (`batchctl.jobs.store`, `<data dir>/journal.db`);
this module keeps the small per-batch interface the commands use.
"""

from batchctl.jobs.store import JournalEntry, entries, journal_path, lookup, record, update

__all__ = ["JournalEntry", "entries", "journal_path", "lookup", "record", "update"]

"""The local journal: what batchctl remembers about each batch it created.

A batch on a New-API gateway must be reached through the same channel pin for its whole life, and a
batch may outlive the profile that was active when it was submitted. So `submit` records, per batch
id, the profile, base URL, provider and channel it used (plus the input file and model), and later
commands look the id up here. One JSON object per line in `<data dir>/journal.jsonl`, appended only;
the last record for an id wins, so an update is just another line.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from batchctl.config import data_dir

JOURNAL_FILENAME = "journal.jsonl"


@dataclass
class JournalEntry:
    batch_id: str
    profile: str
    base_url: str
    provider: str
    channel: str | None = None
    input_path: str | None = None
    input_file_id: str | None = None
    endpoint: str | None = None
    model: str | None = None
    output_path: str | None = None
    recorded_at: float = field(default_factory=time.time)


def journal_path() -> Path:
    return data_dir() / JOURNAL_FILENAME


def record(entry: JournalEntry) -> None:
    """Append a record (O_APPEND keeps concurrent writers' lines whole)."""
    path = journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(entry), ensure_ascii=False, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line  # a torn line from a crash must not swallow this record
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def update(batch_id: str, **changes: object) -> JournalEntry | None:
    """Record new values for a known batch; returns the merged entry, or None if the id is unknown."""
    entry = lookup(batch_id)
    if entry is None:
        return None
    for key, value in changes.items():
        setattr(entry, key, value)
    entry.recorded_at = time.time()
    record(entry)
    return entry


def entries() -> dict[str, JournalEntry]:
    """Every batch id's latest record; unreadable lines (a crash mid-write) are skipped."""
    path = journal_path()
    known = {f.name for f in fields(JournalEntry)}
    found: dict[str, JournalEntry] = {}
    try:
        handle = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        return found
    with handle:
        for line in handle:
            try:
                data = json.loads(line)
                entry = JournalEntry(**{k: v for k, v in data.items() if k in known})
            except (ValueError, TypeError):
                continue
            found[entry.batch_id] = entry
    return found


def lookup(batch_id: str) -> JournalEntry | None:
    return entries().get(batch_id)

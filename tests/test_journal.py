"""The journal remembers how each batch was submitted; the last record for an id wins."""

from __future__ import annotations

import stat

from batchctl import journal
from batchctl.journal import JournalEntry


def test_record_lookup_update():
    assert journal.lookup("batch_1") is None
    journal.record(JournalEntry(batch_id="batch_1", profile="gw", base_url="http://g/v1", provider="newapi", channel="7"))
    journal.record(JournalEntry(batch_id="batch_2", profile="local", base_url="http://l/v1", provider="local"))
    entry = journal.lookup("batch_1")
    assert entry is not None and entry.channel == "7" and entry.profile == "gw"
    updated = journal.update("batch_1", output_path="/tmp/out.jsonl")
    assert updated is not None and updated.channel == "7"
    assert journal.lookup("batch_1").output_path == "/tmp/out.jsonl"
    assert journal.update("batch_missing", output_path="x") is None
    assert sorted(journal.entries()) == ["batch_1", "batch_2"]
    assert stat.S_IMODE(journal.journal_path().stat().st_mode) == 0o600


def test_torn_line_is_skipped():
    journal.record(JournalEntry(batch_id="batch_ok", profile="p", base_url="u", provider="openai"))
    with journal.journal_path().open("a") as handle:
        handle.write('{"batch_id": "batch_torn", "prof')
    assert list(journal.entries()) == ["batch_ok"]
    journal.record(JournalEntry(batch_id="batch_after", profile="p", base_url="u", provider="openai"))
    assert list(journal.entries()) == ["batch_ok", "batch_after"]

"""The journal's lookups stay indexed as it grows: prefixes by range (not a scan), the newest batches
read only as far as they are needed."""

from __future__ import annotations

import pytest

from batchctl.jobs.records import BatchRecord
from batchctl.jobs.store import Ambiguous, Journal


def _record(journal: Journal, batch_id: str, at: float) -> None:
    journal.record_batch(BatchRecord(batch_id, "local", "http://127.0.0.1:8765/v1", "local", recorded_at=at))


def test_prefix_lookup_is_an_index_range_and_exact(tmp_path):
    with Journal.open(tmp_path / "journal.db") as journal:
        for n, batch_id in enumerate(["batch_ab1", "batch_ab2", "batch_ac", "batch_b", "batch_a~", "batch_a"]):
            _record(journal, batch_id, n)
        assert journal.resolve("batch_ac").batch_id == "batch_ac"
        assert journal.resolve("batch_ab2").batch_id == "batch_ab2"
        assert journal.resolve("batch_b").batch_id == "batch_b"
        assert journal.resolve("batch_a~").batch_id == "batch_a~"
        with pytest.raises(Ambiguous) as caught:
            journal.resolve("batch_ab")
        assert caught.value.matches == ["batch_ab1", "batch_ab2"]
        plan = " ".join(row[-1] for row in journal.conn.execute(
            "EXPLAIN QUERY PLAN SELECT batch_id FROM batches WHERE batch_id >= ? AND batch_id < ?", ("a", "b")))  # fmt: skip
        assert "SEARCH" in plan and "SCAN" not in plan


def test_newest_batches_are_read_as_far_as_needed(tmp_path):
    with Journal.open(tmp_path / "journal.db") as journal:
        for n in range(50):
            _record(journal, f"batch_{n:03d}", n)
        newest = journal.newest_batches()
        assert [next(newest).batch_id for _ in range(3)] == ["batch_049", "batch_048", "batch_047"]
        assert [b.batch_id for b in journal.batches()][:2] == ["batch_049", "batch_048"]

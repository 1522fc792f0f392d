"""The SQLite journal: migrations, the JSON-lines import, batches, jobs, parts, steps, ids, and many writers."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap

import pytest

from batchctl.config import data_dir
from batchctl.jobs import new_job_id
from batchctl.jobs import store
from batchctl.jobs.migrations import MIGRATIONS, applied_migrations, import_legacy_journal, migrate
from batchctl.jobs.records import JobExists, submission_options
from batchctl.jobs.split import PartPlan
from batchctl.jobs.records import JournalEntry
from batchctl.jobs.store import Ambiguous, Journal, NotFound

MIGRATION_NAMES = [fn.__name__ for fn in MIGRATIONS]


def entry(batch_id: str, **kw) -> JournalEntry:
    return JournalEntry(batch_id=batch_id, profile=kw.pop("profile", "gw"), base_url="http://g/v1", provider="newapi", **kw)


def options(sha: str = "a" * 64, **kw):
    base = dict(
        input_sha256=sha,
        base_url="http://g/v1",
        profile="gw",
        channel="7",
        endpoint="/v1/chat/completions",
        model="qwen-plus",
        completion_window="24h",
        metadata={"project": "eval"},
        max_requests=50_000,
        max_file_bytes=500 * 1024 * 1024,
        max_line_bytes=6 * 1024 * 1024,
    )
    base.update(kw)
    return submission_options(**base)


def new_job(journal: Journal, opts=None, **kw):
    opts = opts or options()
    return journal.create_job(
        input_path="/data/in.jsonl",
        input_sha256=opts["input_sha256"],
        input_size=1000,
        input_lines=230,
        profile="gw",
        base_url="http://g/v1",
        provider="newapi",
        channel="7",
        endpoint="/v1/chat/completions",
        model="qwen-plus",
        completion_window="24h",
        metadata={"project": "eval"},
        options=opts,
        **kw,
    )


def test_new_job_ids_look_like_server_ids():
    job_id = new_job_id()
    assert job_id.startswith("job_") and len(job_id) == 28 and int(job_id[4:], 16) >= 0
    assert new_job_id() != job_id


def test_opening_creates_a_private_wal_database_in_the_data_dir():
    with Journal.open() as journal:
        assert journal.path == data_dir() / "journal.db" == store.journal_path()
        pragma = journal.conn.execute
        assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1
        assert pragma("PRAGMA busy_timeout").fetchone()[0] == 60_000
        journal.record_batch(entry("batch_1"))
        for name in ("journal.db", "journal.db-wal", "journal.db-shm"):
            assert stat.S_IMODE((data_dir() / name).stat().st_mode) == 0o600, name


def test_an_existing_database_is_made_private(tmp_path):
    path = tmp_path / "j.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    Journal.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_migrations_are_recorded_in_order_and_applied_once(tmp_path):
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        rows = journal.conn.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall()
        assert [r["name"] for r in rows] == MIGRATION_NAMES == sorted(MIGRATION_NAMES)
        assert all(r["applied_at"] for r in rows)
        journal.record_batch(entry("batch_1"))
    with Journal.open(path) as journal:
        assert migrate(journal.conn) == []
        again = journal.conn.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall()
        assert [tuple(r) for r in again] == [tuple(r) for r in rows]
        assert journal.lookup_batch("batch_1") is not None


def test_a_failing_migration_leaves_nothing_half_done(tmp_path, monkeypatch):
    def m999_broken(conn):
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr("batchctl.jobs.migrations.MIGRATIONS", [*MIGRATIONS, m999_broken])
    with pytest.raises(RuntimeError):
        Journal.open(tmp_path / "j.db")
    conn = sqlite3.connect(tmp_path / "j.db")
    assert applied_migrations(conn) == MIGRATION_NAMES
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None



def test_a_journal_from_before_saved_files_gains_the_table_and_keeps_its_rows(tmp_path, monkeypatch):
    """m004_saved_files on a database that had m001-m003: its rows stay; saved files are then recorded by
    resolved path (the last download there wins) and forgotten."""
    from batchctl.jobs.records import SavedFileRecord

    path = tmp_path / "j.db"
    with monkeypatch.context() as patch:
        patch.setattr("batchctl.jobs.migrations.MIGRATIONS", MIGRATIONS[:3])
        with Journal.open(path) as journal:
            journal.record_batch(entry("batch_1"))
            assert applied_migrations(journal.conn)[-1] == "m003_bills"
    with Journal.open(path) as journal:
        assert applied_migrations(journal.conn) == MIGRATION_NAMES and "m004_saved_files" in MIGRATION_NAMES
        assert journal.lookup_batch("batch_1") is not None
        results = tmp_path / "res.jsonl"
        results.write_text("{}\n")
        record = SavedFileRecord.of(str(results), "file-1", "batch_1", results.stat())
        journal.record_saved_file(record)
        assert journal.saved_file(str(results)) == record and record.unchanged(results.stat())
        journal.record_saved_file(SavedFileRecord.of(str(results), "file-2", "batch_2", results.stat()))
        assert journal.saved_file(str(results)).file_id == "file-2"
        (tmp_path / "new").write_text("[]\n")
        os.replace(tmp_path / "new", results)  # the same size, another file
        assert not journal.saved_file(str(results)).unchanged(results.stat())
        journal.forget_saved_files([str(results)])
        assert journal.saved_file(str(results)) is None

def test_the_jsonl_journal_is_imported_once():
    legacy = data_dir() / "journal.jsonl"
    legacy.parent.mkdir(parents=True)
    lines = [
        json.dumps({"batch_id": "batch_1", "profile": "gw", "base_url": "u", "provider": "newapi", "channel": "7", "recorded_at": 1.0}),
        json.dumps({"batch_id": "batch_2", "profile": "local", "base_url": "l", "provider": "local", "recorded_at": 2.0}),
        json.dumps({"batch_id": "batch_1", "profile": "gw", "base_url": "u", "provider": "newapi", "channel": "7",
                    "output_path": "/o.jsonl", "recorded_at": 3.0, "future_field": 1}),
        '{"batch_id": "batch_torn", "prof',
    ]
    legacy.write_text("\n".join(lines) + "\n")
    with Journal.open() as journal:
        assert [b.batch_id for b in journal.batches()] == ["batch_1", "batch_2"]
        assert journal.lookup_batch("batch_1").output_path == "/o.jsonl"
        assert journal.lookup_batch("batch_1").channel == "7"
        journal.update_batch("batch_1", output_path="/moved.jsonl")
    assert not legacy.exists() and (data_dir() / "journal.jsonl.imported").exists()
    with Journal.open() as journal:
        assert journal.lookup_batch("batch_1").output_path == "/moved.jsonl"
    # An older batchctl wrote a new journal.jsonl afterwards: it is imported too, next to the first copy.
    legacy.write_text(json.dumps({"batch_id": "batch_3", "profile": "p", "base_url": "u", "provider": "openai"}) + "\n")
    with Journal.open() as journal:
        assert journal.lookup_batch("batch_3") is not None
    assert (data_dir() / "journal.jsonl.imported.2").exists() and not legacy.exists()


def test_importing_again_never_replaces_a_newer_row(tmp_path):
    with Journal.open(tmp_path / "j.db") as journal:
        journal.record_batch(entry("batch_1", output_path="/new", recorded_at=10.0))
        legacy = tmp_path / "journal.jsonl"
        legacy.write_text(json.dumps({"batch_id": "batch_1", "profile": "gw", "base_url": "u", "provider": "newapi",
                                      "output_path": "/old", "recorded_at": 5.0}) + "\n")
        assert import_legacy_journal(journal.conn, legacy) == 1
        assert journal.lookup_batch("batch_1").output_path == "/new"
        assert import_legacy_journal(journal.conn, legacy) is None


def test_the_old_journal_interface():
    from batchctl import journal as old  # record/update/lookup/entries live there, over the Journal

    assert old.lookup("batch_1") is None
    old.record(JournalEntry(batch_id="batch_1", profile="gw", base_url="http://g/v1", provider="newapi", channel="7"))
    old.record(JournalEntry(batch_id="batch_2", profile="local", base_url="http://l/v1", provider="local"))
    found = old.lookup("batch_1")
    assert found is not None and found.channel == "7" and found.profile == "gw"
    updated = old.update("batch_1", output_path="/tmp/out.jsonl")
    assert updated is not None and updated.channel == "7" and updated.recorded_at >= found.recorded_at
    assert old.lookup("batch_1").output_path == "/tmp/out.jsonl"
    assert old.update("batch_missing", output_path="x") is None
    assert list(old.entries()) == ["batch_2", "batch_1"]  # oldest record first, as the jsonl read
    old.record(JournalEntry(batch_id="batch_2", profile="other", base_url="u", provider="openai"))
    assert old.lookup("batch_2").profile == "other"  # the last record wins
    with pytest.raises(ValueError, match="batch_idd"):
        old.update("batch_1", batch_idd="x")


def test_batches_are_listed_newest_first():
    with Journal.open() as journal:
        for n, at in ((1, 30.0), (2, 10.0), (3, 20.0)):
            journal.record_batch(entry(f"batch_{n}", recorded_at=at))
        assert [b.batch_id for b in journal.batches()] == ["batch_1", "batch_3", "batch_2"]


def test_a_job_is_found_again_by_its_options():
    with Journal.open() as journal:
        job = new_job(journal)
        assert journal.get_job(job.id) == job
        assert job.state == "splitting" and job.options["split"]["max_requests"] == 50_000
        assert journal.find_job(job.options_key) == job
        reordered = options(metadata={"project": "eval"})
        assert store.key_of(reordered) == job.options_key
        assert journal.find_job(store.key_of(options(model="qwen-max"))) is None
        with pytest.raises(JobExists) as caught:
            new_job(journal)
        assert caught.value.job.id == job.id
        journal.update_job(job.id, state="completed")
        assert journal.find_job(job.options_key).state == "completed"
        journal.update_job(job.id, state="failed")
        assert journal.find_job(job.options_key) is None
        assert new_job(journal).id != job.id


def test_forgetting_a_job_hides_it_but_keeps_its_batches():
    with Journal.open() as journal:
        job = new_job(journal)
        journal.record_batch(entry("batch_9", job_id=job.id, part=0))
        assert journal.forget_job(job.id) is True
        assert journal.forget_job("job_missing") is False
        assert journal.jobs() == [] and journal.find_job(job.options_key) is None
        assert [j.id for j in journal.jobs(include_forgotten=True)] == [job.id]
        assert journal.lookup_batch("batch_9").job_id == job.id
        assert [b.batch_id for b in journal.batches(job_id=job.id)] == ["batch_9"]
        again = new_job(journal)
        assert [j.id for j in journal.jobs()] == [again.id]


def test_job_fields_are_checked():
    with Journal.open() as journal:
        job = new_job(journal)
        with pytest.raises(ValueError, match="job state"):
            journal.update_job(job.id, state="done")
        with pytest.raises(ValueError, match="created_at"):
            journal.update_job(job.id, created_at=0)
        changed = journal.update_job(job.id, state="active", metadata={"a": "b"})
        assert changed.metadata == {"a": "b"} and changed.updated_at >= job.updated_at
        assert journal.update_job("job_missing", state="active") is None


def test_parts_follow_a_plan_and_record_progress():
    plans = [PartPlan(0, 1, 50, 0, 5000, 50), PartPlan(1, 51, 80, 5000, 8000, 30)]
    with Journal.open() as journal:
        job = new_job(journal)
        added = journal.add_parts(job.id, plans)
        assert [(p.index, p.first_line, p.last_line, p.step) for p in added] == [(0, 1, 50, "planned"), (1, 51, 80, "planned")]
        part = journal.update_part(job.id, 1, step="created", file_id="file-1", batch_id="batch_b", token="t1")
        assert (part.step, part.file_id, part.batch_id) == ("created", "file-1", "batch_b")
        assert [p.step for p in journal.parts(job.id)] == ["planned", "created"]
        journal.add_part(job.id, 2, first_line=51, last_line=60, byte_start=5000, byte_end=6000, request_count=10, retry_of=1)
        assert journal.parts(job.id)[2].retry_of == 1
        with pytest.raises(ValueError, match="part step"):
            journal.update_part(job.id, 0, step="flying")
        with pytest.raises(ValueError, match="bogus"):
            journal.update_part(job.id, 0, bogus=1)
        assert journal.update_part(job.id, 7, step="done") is None
        with pytest.raises(sqlite3.IntegrityError):
            journal.add_part("job_missing", 0, first_line=1, last_line=1, byte_start=0, byte_end=1, request_count=1)
        journal.add_part(job.id, 4, first_line=1, last_line=1, byte_start=0, byte_end=1, request_count=1)
        with pytest.raises(sqlite3.IntegrityError):  # all or nothing: part 3 would be new, part 4 exists
            journal.add_parts(job.id, plans, first_index=3)
        assert [p.index for p in journal.parts(job.id)] == [0, 1, 2, 4]


def test_steps_are_written_before_they_run():
    with Journal.open() as journal:
        job = new_job(journal)
        journal.add_parts(job.id, [PartPlan(0, 1, 2, 0, 10, 2)])
        step = journal.begin_step(job.id, "upload", part=0, token="tok", part_changes={"step": "uploading", "token": "tok"})
        # A crash here: the open step and the part's state say exactly what was in flight.
        assert [(s.name, s.token, s.finished_at) for s in journal.steps(job.id, unfinished=True)] == [("upload", "tok", None)]
        assert journal.parts(job.id)[0].step == "uploading"
        done = journal.finish_step(step, "ok", part_changes={"step": "uploaded", "file_id": "file-x"})
        assert done.outcome == "ok" and done.finished_at >= done.started_at
        assert journal.steps(job.id, unfinished=True) == []
        assert journal.parts(job.id)[0].file_id == "file-x"
        journal.begin_step(job.id, "split")
        assert [s.name for s in journal.steps(job.id)] == ["upload", "split"]
        with pytest.raises(NotFound):  # the part does not exist: the step is not recorded either
            journal.begin_step(job.id, "create", part=5, part_changes={"step": "creating"})
        assert [s.name for s in journal.steps(job.id)] == ["upload", "split"]
        with pytest.raises(NotFound):
            journal.finish_step(999)


def test_resolve_takes_job_and_batch_ids_and_prefixes():
    with Journal.open() as journal:
        one = new_job(journal, job_id="job_aaaa1111")
        new_job(journal, options(model="other"), job_id="job_aaaa2222")
        journal.record_batch(entry("batch_abc"))
        journal.record_batch(entry("batch_abd"))
        journal.record_batch(entry("batchXabe"))
        assert journal.resolve("job_aaaa1111") == one
        assert journal.resolve("job_aaaa1").id == one.id
        assert journal.resolve("batch_abc").batch_id == "batch_abc"
        assert journal.resolve("batchX").batch_id == "batchXabe"  # `_` is not a wildcard
        with pytest.raises(Ambiguous) as caught:
            journal.resolve("job_aaaa")
        assert caught.value.matches == ["job_aaaa1111", "job_aaaa2222"]
        with pytest.raises(Ambiguous):
            journal.resolve("batch_ab")
        with pytest.raises(NotFound):
            journal.resolve("job_zz")
        with pytest.raises(NotFound):
            journal.resolve("  ")


WORKER = textwrap.dedent(
    """
    import os, sys, time
    from batchctl.jobs.records import JournalEntry, submission_options
    from batchctl.jobs.split import PartPlan
    from batchctl.jobs.store import Journal

    path, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    for n in range(count):
        with Journal.open(path) as journal:  # a fresh connection each time, as one command per record
            journal.record_batch(JournalEntry(f"batch_{worker}_{n}", "p", "u", "openai", model=str(n)))
            if n % 5 == 0:
                journal.update_batch(f"batch_{worker}_{n}", output_path=f"/out/{worker}/{n}")
    with Journal.open(path) as journal:
        opts = submission_options(input_sha256=str(worker), base_url="u", profile="p", channel=None, endpoint=None,
                                  model=None, completion_window="24h", metadata=None, max_requests=50,
                                  max_file_bytes=1000, max_line_bytes=None)
        job = journal.create_job(input_path="in", input_sha256=str(worker), input_size=1, input_lines=150,
                                 profile="p", base_url="u", provider="openai", options=opts)
        journal.add_parts(job.id, [PartPlan(i, 1, 1, 0, 1, 50) for i in range(3)])
        for i in range(3):
            step = journal.begin_step(job.id, "upload", part=i, part_changes={"step": "uploading"})
            journal.finish_step(step, part_changes={"step": "uploaded", "file_id": f"file-{worker}-{i}"})
    """
)


def test_ten_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "journal.db"  # new: the ten also race to create, migrate and import it
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"batch_id": "batch_old", "profile": "p", "base_url": "u", "provider": "openai"}) + "\n"
    )
    go = tmp_path / "go"
    count = 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(w), str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(10)
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
    with Journal.open(path) as journal:
        conn = journal.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert applied_migrations(conn) == MIGRATION_NAMES
        batches = {b.batch_id: b for b in journal.batches()}
        assert len(batches) == 10 * count + 1 and "batch_old" in batches
        assert all(batches[f"batch_{w}_{n}"].output_path == f"/out/{w}/{n}" for w in range(10) for n in range(0, count, 5))
        jobs = journal.jobs()
        assert len(jobs) == 10
        for job in jobs:
            parts = journal.parts(job.id)
            assert [p.step for p in parts] == ["uploaded"] * 3 and all(p.file_id for p in parts)
            assert len(journal.steps(job.id)) == 3 and journal.steps(job.id, unfinished=True) == []
    assert (tmp_path / "journal.jsonl.imported").exists() and not (tmp_path / "journal.jsonl").exists()

"""The journal: what batchctl remembers about its batches and jobs, in `<data dir>/journal.db`.

One SQLite connection per command (`Journal.open()`). WAL mode and a busy timeout let several
batchctl processes read and write at once: a writer waits for the lock instead of failing.
`batchctl.journal` keeps the old per-batch interface (`record`/`update`/`lookup`/`entries`) on top.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from batchctl.config import data_dir
from batchctl.jobs import JOB_PREFIX, new_job_id
from batchctl.jobs.db import connect, write_transaction
from batchctl.jobs.migrations import LEGACY_FILENAME, import_legacy_journal, migrate
from batchctl.jobs.records import (
    BATCH_COLUMNS,
    JOB_COLUMNS,
    JOB_JSON_COLUMNS,
    JOB_STATES,
    LIVE_JOB_STATES,
    PART_COLUMNS,
    PART_STEPS,
    PART_UPDATABLE,
    SAVED_FILE_COLUMNS,
    Ambiguous,
    BatchRecord,
    Job,
    JobExists,
    NotFound,
    Part,
    SavedFileRecord,
    Step,
    canonical_json,
    check_changes,
    check_state,
)
from batchctl.jobs.records import options_key as key_of

DB_FILENAME = "journal.db"
JOBS_HINT = "`batchctl jobs` lists the jobs in the journal"  # what not finding a journal id points to

_BATCH_UPDATABLE = frozenset(BATCH_COLUMNS) - {"batch_id"}
_JOB_UPDATABLE = frozenset(JOB_COLUMNS) - {"id", "created_at", "updated_at"}
_LIVE = ", ".join(f"'{s}'" for s in LIVE_JOB_STATES)

def journal_path() -> Path:
    return data_dir() / DB_FILENAME


def _assignments(changes: Mapping[str, Any]) -> str:
    return ", ".join(f"{column} = :{column}" for column in changes)


def _insert(table: str, values: Mapping[str, Any]) -> str:
    return f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(':' + c for c in values)})"


class Journal:
    """One open journal database. Use as a context manager: `with Journal.open() as journal: ...`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Journal:
        """Open (creating and migrating if need be) the journal; imports a `journal.jsonl` beside it once."""
        db = Path(path) if path is not None else journal_path()
        conn = connect(db)
        try:
            migrate(conn)
            import_legacy_journal(conn, db.with_name(LEGACY_FILENAME))
        except BaseException:
            conn.close()
            raise
        return cls(conn, db)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batches: how each batch is reached ------------------------------------------------------------

    def record_batch(self, entry: BatchRecord) -> None:
        """Remember a batch; a record for a known batch id replaces it (the last record wins)."""
        values = {c: getattr(entry, c) for c in BATCH_COLUMNS}
        self.conn.execute(
            _insert("batches", values) + " "
            f"ON CONFLICT (batch_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in BATCH_COLUMNS[1:])}",
            values,
        )

    def update_batch(self, batch_id: str, **changes: Any) -> BatchRecord | None:
        """Change fields of a known batch (recorded_at becomes now); None if the id is unknown."""
        check_changes(changes, _BATCH_UPDATABLE, "batch record")
        changes.setdefault("recorded_at", time.time())
        rows = self.conn.execute(
            f"UPDATE batches SET {_assignments(changes)} WHERE batch_id = :batch_id_ RETURNING *",
            {**changes, "batch_id_": batch_id},
        ).fetchall()
        return _batch(rows[0]) if rows else None

    def lookup_batch(self, batch_id: str) -> BatchRecord | None:
        row = self.conn.execute("SELECT * FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return _batch(row) if row else None

    def batches(self, *, job_id: str | None = None) -> list[BatchRecord]:
        """Every batch (or a job's), newest record first."""
        return list(self.newest_batches(job_id=job_id))

    def newest_batches(self, *, job_id: str | None = None) -> Iterator[BatchRecord]:
        """`batches()` read as the caller goes: the newest ten of 100k cost ten rows."""
        where, args = ("WHERE job_id = ?", (job_id,)) if job_id is not None else ("", ())
        for row in self.conn.execute(f"SELECT * FROM batches {where} ORDER BY recorded_at DESC, rowid DESC", args):
            yield _batch(row)

    # -- jobs ------------------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        input_path: str,
        input_sha256: str,
        input_size: int,
        input_lines: int,
        profile: str,
        base_url: str,
        provider: str,
        options: Mapping[str, Any],
        options_key: str | None = None,
        channel: str | None = None,
        endpoint: str | None = None,
        model: str | None = None,
        completion_window: str | None = None,
        metadata: Mapping[str, str] | None = None,
        state: str = "splitting",
        job_id: str | None = None,
    ) -> Job:
        """Start a job. `options` is normally `submission_options(...)`; `options_key` defaults to its hash.

        Raises JobExists (carrying the job) when a live job has the same options key: two processes
        submitting the same file at once end up with one job, not two.
        """
        check_state(state, JOB_STATES, "job state")
        now = time.time()
        job = Job(
            id=job_id or new_job_id(),
            created_at=now,
            updated_at=now,
            input_path=input_path,
            input_sha256=input_sha256,
            input_size=input_size,
            input_lines=input_lines,
            profile=profile,
            base_url=base_url,
            provider=provider,
            channel=channel,
            endpoint=endpoint,
            model=model,
            completion_window=completion_window,
            options_key=options_key or key_of(options),
            state=state,
            options=dict(options),
            metadata=dict(metadata or {}),
        )
        values = _job_row(job)
        with write_transaction(self.conn):
            existing = self.find_job(job.options_key) if state in LIVE_JOB_STATES else None
            if existing is not None:
                raise JobExists(existing)
            self.conn.execute(_insert("jobs", values), values)
        return job

    def get_job(self, job_id: str) -> Job | None:
        row = self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self, *, include_forgotten: bool = False) -> list[Job]:
        """Jobs, newest first; forgotten ones only when asked."""
        where = "" if include_forgotten else "WHERE state != 'forgotten'"
        return [_job(row) for row in self.conn.execute(f"SELECT * FROM jobs {where} ORDER BY created_at DESC, rowid DESC")]

    def find_job(self, key: str) -> Job | None:
        """The live (in progress or completed) job for a submission with this options key."""
        row = self.conn.execute(
            f"SELECT * FROM jobs WHERE options_key = ? AND state IN ({_LIVE}) ORDER BY created_at DESC LIMIT 1", (key,)
        ).fetchone()
        return _job(row) if row else None

    def update_job(self, job_id: str, **changes: Any) -> Job | None:
        """Change fields of a job (updated_at becomes now); None if the id is unknown."""
        check_changes(changes, _JOB_UPDATABLE, "job")
        check_state(changes.get("state"), JOB_STATES, "job state")
        values = {k: canonical_json(v) if k in JOB_JSON_COLUMNS else v for k, v in changes.items()}
        values["updated_at"] = time.time()
        rows = self.conn.execute(
            f"UPDATE jobs SET {_assignments(values)} WHERE id = :id_ RETURNING *", {**values, "id_": job_id}
        ).fetchall()
        return _job(rows[0]) if rows else None

    def forget_job(self, job_id: str) -> bool:
        """Hide a job from listings and from find_job (so the input can be submitted anew).

        Its rows stay: its batches must still be reachable through the channel they were created on.
        """
        return self.update_job(job_id, state="forgotten") is not None

    # -- parts -----------------------------------------------------------------------------------------

    def add_part(
        self,
        job_id: str,
        index: int,
        *,
        first_line: int,
        last_line: int,
        byte_start: int,
        byte_end: int,
        request_count: int,
        path: str | None = None,
        retry_of: int | None = None,
    ) -> Part:
        """Plan part `index` of a job (step `planned`); `retry_of` for a part that retries another's failures."""
        part = Part(
            job_id=job_id,
            index=index,
            first_line=first_line,
            last_line=last_line,
            byte_start=byte_start,
            byte_end=byte_end,
            request_count=request_count,
            path=path,
            retry_of=retry_of,
            updated_at=time.time(),
        )
        values = dict(zip(PART_COLUMNS, (getattr(part, f) for f in _PART_FIELDS)))
        self.conn.execute(_insert("parts", values), values)
        return part

    def add_parts(self, job_id: str, plans: Iterable[Any], *, first_index: int = 0) -> list[Part]:
        """Add a split's parts (objects with PartPlan's fields) in one transaction: all or none."""
        with write_transaction(self.conn):
            return [
                self.add_part(
                    job_id,
                    first_index + n,
                    first_line=p.first_line,
                    last_line=p.last_line,
                    byte_start=p.byte_start,
                    byte_end=p.byte_end,
                    request_count=p.request_count,
                )
                for n, p in enumerate(plans)
            ]

    def update_part(self, job_id: str, index: int, **changes: Any) -> Part | None:
        """Change fields of a part (`step` must be one of PART_STEPS); None if there is no such part."""
        check_changes(changes, PART_UPDATABLE, "part")
        check_state(changes.get("step"), PART_STEPS, "part step")
        changes["updated_at"] = time.time()
        rows = self.conn.execute(
            f"UPDATE parts SET {_assignments(changes)} WHERE job_id = :job_id_ AND part = :part_ RETURNING *",
            {**changes, "job_id_": job_id, "part_": index},
        ).fetchall()
        return _part(rows[0]) if rows else None

    def parts(self, job_id: str) -> list[Part]:
        return [_part(row) for row in self.conn.execute("SELECT * FROM parts WHERE job_id = ? ORDER BY part", (job_id,))]

    # -- steps: intents written before a step runs -----------------------------------------------------

    def begin_step(
        self,
        job_id: str,
        name: str,
        *,
        part: int | None = None,
        token: str | None = None,
        detail: str | None = None,
        part_changes: Mapping[str, Any] | None = None,
    ) -> Step:
        """Record that step `name` is about to run (and, in the same transaction, the part's new fields)."""
        with write_transaction(self.conn):
            row = self.conn.execute(
                "INSERT INTO steps (job_id, part, name, token, started_at, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                (job_id, part, name, token, time.time(), detail),
            ).fetchall()[0]
            self._change_part(job_id, part, part_changes)
        return Step(**row)

    def finish_step(
        self,
        step: Step | int,
        outcome: str = "ok",
        *,
        detail: str | None = None,
        part_changes: Mapping[str, Any] | None = None,
    ) -> Step:
        """Record how a step ended (and, in the same transaction, what it changed in its part)."""
        step_id = step if isinstance(step, int) else step.id
        with write_transaction(self.conn):
            rows = self.conn.execute(
                "UPDATE steps SET finished_at = ?, outcome = ?, detail = coalesce(?, detail) WHERE id = ? RETURNING *",
                (time.time(), outcome, detail, step_id),
            ).fetchall()
            if not rows:
                raise NotFound(f"no step {step_id} in the journal")
            done = Step(**rows[0])
            self._change_part(done.job_id, done.part, part_changes)
        return done

    def steps(self, job_id: str, *, unfinished: bool = False) -> list[Step]:
        """A job's steps in the order they began; `unfinished`: only those that never reported an end."""
        extra = " AND finished_at IS NULL" if unfinished else ""
        rows = self.conn.execute(f"SELECT * FROM steps WHERE job_id = ?{extra} ORDER BY id", (job_id,))
        return [Step(**row) for row in rows]

    def _change_part(self, job_id: str, part: int | None, changes: Mapping[str, Any] | None) -> None:
        if not changes:
            return
        if part is None:
            raise ValueError("part_changes need a part")
        if self.update_part(job_id, part, **changes) is None:
            raise NotFound(f"{job_id} has no part {part}")

    # -- bills: what a download found a job or batch cost (docs/cost.md) -------------------------------

    def record_bill(self, job_or_batch_id: str, bill: Mapping[str, Any] | None) -> bool:
        """Keep a download's bill totals on the job (`job_…`) or batch, and on the job a batch is the only
        part of; False when the id is not in the journal (or there is no bill)."""
        if bill is None:
            return False
        text = canonical_json(dict(bill))
        if job_or_batch_id.startswith(JOB_PREFIX):
            return self.conn.execute("UPDATE jobs SET bill = ? WHERE id = ?", (text, job_or_batch_id)).rowcount > 0
        row = self.conn.execute("UPDATE batches SET bill = ? WHERE batch_id = ? RETURNING job_id", (text, job_or_batch_id)).fetchone()
        if row is not None and row[0] and [p.batch_id for p in self.parts(row[0])] == [job_or_batch_id]:
            self.conn.execute("UPDATE jobs SET bill = ? WHERE id = ?", (text, row[0]))
        return row is not None

    def bill(self, job_or_batch_id: str) -> dict[str, Any] | None:
        """The bill totals last recorded for a job or batch, or None."""
        table, key = ("jobs", "id") if job_or_batch_id.startswith(JOB_PREFIX) else ("batches", "batch_id")
        row = self.conn.execute(f"SELECT bill FROM {table} WHERE {key} = ?", (job_or_batch_id,)).fetchone()
        return json.loads(row[0]) if row is not None and row[0] else None

    # -- saved files: result files a download wrote whole, so a re-run keeps only those ---------------

    def record_saved_file(self, record: SavedFileRecord) -> None:
        """Remember the file a download just wrote at `record.path` (replacing what was recorded there)."""
        values = {c: getattr(record, c) for c in SAVED_FILE_COLUMNS}
        self.conn.execute(
            _insert("saved_files", values) + " "
            f"ON CONFLICT (path) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in SAVED_FILE_COLUMNS[1:])}",
            values,
        )

    def saved_file(self, path: str) -> SavedFileRecord | None:
        """What a download last recorded writing at the resolved `path`, or None."""
        row = self.conn.execute("SELECT * FROM saved_files WHERE path = ?", (path,)).fetchone()
        return SavedFileRecord(**{c: row[c] for c in SAVED_FILE_COLUMNS}) if row else None

    def forget_saved_files(self, paths: Iterable[str]) -> None:
        """Drop the records of files written over by something else (a merged or joined file)."""
        self.conn.executemany("DELETE FROM saved_files WHERE path = ?", ((p,) for p in paths))

    # -- ids -------------------------------------------------------------------------------------------

    def resolve(self, id_or_prefix: str) -> Job | BatchRecord:
        """The job (`job_…`) or batch with this id, or the only one whose id starts with it."""
        text = id_or_prefix.strip()
        if not text:
            raise NotFound("no id given", "Give a job id (job_…) or a batch id.")
        if text.startswith(JOB_PREFIX):
            found = self.get_job(text)
            if found is not None:
                return found
            matches = self._ids("SELECT id FROM jobs", "id", text)
            if len(matches) == 1:
                return self.get_job(matches[0])  # type: ignore[return-value]
        else:
            batch = self.lookup_batch(text)
            if batch is not None:
                return batch
            matches = self._ids("SELECT batch_id FROM batches", "batch_id", text)
            if len(matches) == 1:
                return self.lookup_batch(matches[0])  # type: ignore[return-value]
        if matches:
            raise Ambiguous(text, matches)
        if text.startswith(JOB_PREFIX):
            raise NotFound(f"no job {text!r} in the journal", f"{JOBS_HINT}.")
        raise NotFound(f"no job or batch {text!r} in the journal", f"{JOBS_HINT}; `batchctl list` lists the server's batches.")

    def _ids(self, select: str, column: str, prefix: str) -> list[str]:
        # A range on the index, not LIKE (`_` is a wildcard) or substr (a scan): ids starting with
        # `prefix` sort from it up to the prefix with its last character one higher.
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self.conn.execute(f"{select} WHERE {column} >= ? AND {column} < ? ORDER BY {column}", (prefix, after))
        return [row[0] for row in rows]


_PART_FIELDS = tuple("index" if c == "part" else c for c in PART_COLUMNS)


def _job_row(job: Job) -> dict[str, Any]:
    return {c: canonical_json(getattr(job, c)) if c in JOB_JSON_COLUMNS else getattr(job, c) for c in JOB_COLUMNS}


def _batch(row: sqlite3.Row) -> BatchRecord:
    return BatchRecord(**{c: row[c] for c in BATCH_COLUMNS})  # not `bill`: Journal.bill reads it


def _job(row: sqlite3.Row) -> Job:
    return Job(**{c: json.loads(row[c]) if c in JOB_JSON_COLUMNS else row[c] for c in JOB_COLUMNS})


def _part(row: sqlite3.Row) -> Part:
    return Part(**{f: row[c] for f, c in zip(_PART_FIELDS, PART_COLUMNS)})

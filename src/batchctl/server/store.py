"""The local server's state: files, batches and per-request results in SQLite (WAL), file bodies on disk.

Every method runs on the event-loop thread (one connection); each is a few milliseconds at most.
Results are keyed by (batch_id, line_no), so recording one twice is a no-op: a resumed batch can
never duplicate a line, and request counts are updated in the same transaction as the rows they count.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from batchctl.server.schema import connect, create_schema

# OpenAI's default for files uploaded with purpose=batch; other files keep until deleted.
BATCH_FILE_TTL = 30 * 86400
# Token details summed from the results when a batch ends (chat completions' names, then the Responses API's).
_DETAIL_SUMS = {
    "cached_tokens": ("prompt_tokens_details.cached_tokens", "input_tokens_details.cached_tokens"),
    "reasoning_tokens": ("completion_tokens_details.reasoning_tokens", "output_tokens_details.reasoning_tokens"),
}

# The batch metadata key counting requests an upstream may have received twice (sent again after a crash).
POSSIBLY_DUPLICATED = "batchctl_possibly_duplicated"

# Batch statuses, OpenAI's. Active: a runner owns the batch (and resumes it after a restart).
ACTIVE_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")
CANCELLABLE_STATUSES = ("validating", "in_progress")
# Cancelling these again answers the batch as it is, like OpenAI.
CANCELLED_STATUSES = ("cancelling", "cancelled")
TIMESTAMP_FIELDS = (
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


class UnknownCursor(LookupError):
    """A list's `after` names no object this server has (or had)."""


def new_id(prefix: str, nbytes: int = 12) -> str:
    return prefix + secrets.token_hex(nbytes)


@dataclass(frozen=True)
class ResultRow:
    line_no: int
    custom_id: str
    ok: bool
    result: dict[str, Any] | str  # the result line, or its JSON text already written
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class Store:
    """SQLite-backed state under `data_dir` (`server.db`, `files/`)."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.data_dir = Path(data_dir)
        self.clock = clock  # files' created_at and expiry; injectable so tests expire files without waiting
        self.files_dir = self.data_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.db_path = self.data_dir / "server.db"
        self._private_files()
        self.db = connect(self.db_path)
        create_schema(self.db)
        self._remove_orphans()

    def _private_files(self) -> None:
        """Owner-only state, and no leftovers of a server killed mid-upload or mid-write.

        The database is created 0600 before SQLite opens it (its -wal and -shm files take the same
        mode); files of an older data dir are tightened; `*.upload` and `*.part` temporaries, which
        no row names, are removed.
        """
        os.chmod(self.files_dir, 0o700)
        os.close(os.open(self.db_path, os.O_CREAT | os.O_RDWR, 0o600))
        for path in [*self.data_dir.glob("server.db*"), *self.files_dir.iterdir()]:
            if path.suffix in (".upload", ".part"):
                path.unlink(missing_ok=True)
            elif path.is_file():
                os.chmod(path, 0o600)

    def close(self) -> None:
        self.db.close()

    # -- files ---------------------------------------------------------------------------------

    def add_file(
        self, file_id: str, *, path: Path, filename: str, purpose: str, expires_after: int | None = None
    ) -> dict[str, Any]:
        """Record an uploaded file; it expires `expires_after` seconds from now (batch files: 30 days by default)."""
        size = path.stat().st_size
        now = int(self.clock())
        if expires_after is None and purpose == "batch":
            expires_after = BATCH_FILE_TTL
        expires_at = now + expires_after if expires_after is not None else None
        with self.db:
            self.db.execute(
                "INSERT INTO files (id, bytes, created_at, filename, purpose, path, expires_at) VALUES (?,?,?,?,?,?,?)",
                (file_id, size, now, filename, purpose, str(path), expires_at),
            )
        return self.get_file(file_id)  # type: ignore[return-value]

    def get_file(self, file_id: str) -> dict[str, Any] | None:
        """The file's row; None when there is none, or it has expired (it is deleted then)."""
        row = self.db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= self.clock() and self.delete_expired_files(file_id):
            return None
        return dict(row)

    def delete_expired_files(self, file_id: str | None = None) -> int:
        """Delete every file (or just `file_id`) past its `expires_at`, row and content; returns how many.

        The input file of a batch still running is kept until the batch ends: a restart resumes the
        batch from it.
        """
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        sql = (
            "SELECT id FROM files WHERE expires_at <= ? AND id NOT IN"
            f" (SELECT input_file_id FROM batches WHERE status IN ({marks}))"
        )
        args: tuple[Any, ...] = (int(self.clock()), *ACTIVE_STATUSES)
        if file_id is not None:
            sql, args = sql + " AND id = ?", (*args, file_id)
        rows = self.db.execute(sql, args).fetchall()
        for row in rows:
            self.delete_file(row["id"])
        return len(rows)

    def _cursor_seq(self, table: str, object_id: str) -> int:
        """The list position of `object_id` (also of a deleted file); UnknownCursor if it never existed."""
        row = self.db.execute(f"SELECT seq FROM {table} WHERE id = ?", (object_id,)).fetchone()
        if row is None and table == "files":
            row = self.db.execute("SELECT seq FROM file_tombstones WHERE id = ?", (object_id,)).fetchone()
        if row is None:
            raise UnknownCursor(object_id)
        return row["seq"]

    def list_files(
        self, *, purpose: str | None, limit: int, after: str | None, ascending: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of files and whether more follow (expired files are deleted first)."""
        self.delete_expired_files()
        where: list[str] = []
        args: list[Any] = []
        if purpose:
            where.append("purpose = ?")
            args.append(purpose)
        if after:
            where.append(f"seq {'>' if ascending else '<'} ?")
            args.append(self._cursor_seq("files", after))
        sql = "SELECT * FROM files"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'ASC' if ascending else 'DESC'} LIMIT ?"
        rows = self.db.execute(sql, (*args, limit + 1)).fetchall()
        return [dict(r) for r in rows[:limit]], len(rows) > limit

    def delete_file(self, file_id: str) -> bool:
        """Delete a file: gone from the API at once. Its content goes too, unless it is the input of a batch
        that has not ended: that batch still reads it (a restart resumes from it), so the content stays,
        under its id in `files_dir`, until the batch ends (`release_input`)."""
        row = self.db.execute("SELECT seq, path FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            return False
        with self.db:
            self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))
            self.db.execute("INSERT OR IGNORE INTO file_tombstones (id, seq) VALUES (?, ?)", (file_id, row["seq"]))
        if not self._input_in_use(file_id):
            Path(row["path"]).unlink(missing_ok=True)
        return True

    def _input_in_use(self, file_id: str) -> bool:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        sql = f"SELECT 1 FROM batches WHERE input_file_id = ? AND status IN ({marks}) LIMIT 1"
        return self.db.execute(sql, (file_id, *ACTIVE_STATUSES)).fetchone() is not None

    def input_path(self, file_id: str) -> Path | None:
        """Where a batch reads its input file: the file's content, also after the file was deleted while the
        batch ran (`delete_file` kept it); None when there is no content (removed by hand, or never there)."""
        row = self.db.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        path = Path(row["path"]) if row is not None else self._kept_content(file_id)
        return path if path is not None and path.is_file() else None

    def _kept_content(self, file_id: str) -> Path | None:
        """Where `delete_file` left the content of a deleted input file (an id names no other place)."""
        return None if "/" in file_id or file_id in ("", ".", "..") else self.files_dir / file_id

    def release_input(self, batch_id: str) -> None:
        """Once a batch has ended: remove the content of its input file if the file was deleted meanwhile and
        no other batch still running reads it."""
        row = self.db.execute("SELECT input_file_id FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            return
        file_id = row["input_file_id"]
        known = self.db.execute("SELECT 1 FROM files WHERE id = ?", (file_id,)).fetchone()
        kept = self._kept_content(file_id)
        if known is None and kept is not None and not self._input_in_use(file_id):
            kept.unlink(missing_ok=True)

    def _remove_orphans(self) -> None:
        """At start-up, before any batch runs: remove the content of files deleted through the API that no
        batch still to run reads -- kept for a batch that then ended in a crash before `release_input`."""
        for path in self.files_dir.iterdir():
            deleted = self.db.execute("SELECT 1 FROM file_tombstones WHERE id = ?", (path.name,)).fetchone()
            if deleted is not None and not self._input_in_use(path.name):
                path.unlink(missing_ok=True)

    # -- batches -------------------------------------------------------------------------------

    def create_batch(
        self,
        *,
        endpoint: str,
        input_file_id: str,
        completion_window: str,
        window_seconds: float,
        metadata: dict[str, str] | None,
        output_expires_seconds: int | None = None,
        executor: str | None = None,
    ) -> dict[str, Any]:
        """A new batch, `validating`; `executor` is the identity of the executor that alone may run it."""
        batch_id = new_id("batch_")
        now = time.time()
        with self.db:
            self.db.execute(
                "INSERT INTO batches (id, endpoint, input_file_id, completion_window, window_seconds,"
                " created_ts, status, created_at, expires_at, metadata, output_expires_seconds, executor)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    batch_id,
                    endpoint,
                    input_file_id,
                    completion_window,
                    window_seconds,
                    now,
                    "validating",
                    int(now),
                    int(now + window_seconds),
                    json.dumps(metadata) if metadata is not None else None,
                    output_expires_seconds,
                    executor,
                ),
            )
        return self.get_batch(batch_id)  # type: ignore[return-value]

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return dict(row) if row else None

    def list_batches(self, *, limit: int, after: str | None) -> tuple[list[dict[str, Any]], bool]:
        """Newest first; `after` is the id of the last batch of the previous page (UnknownCursor if none)."""
        if after:
            rows = self.db.execute(
                "SELECT * FROM batches WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (self._cursor_seq("batches", after), limit + 1),
            ).fetchall()
        else:
            rows = self.db.execute("SELECT * FROM batches ORDER BY seq DESC LIMIT ?", (limit + 1,)).fetchall()
        return [dict(r) for r in rows[:limit]], len(rows) > limit

    def active_batch_ids(self) -> list[str]:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        rows = self.db.execute(
            f"SELECT id FROM batches WHERE status IN ({marks}) ORDER BY seq", ACTIVE_STATUSES
        ).fetchall()
        return [r["id"] for r in rows]

    def sent_upstream(self, batch_id: str) -> bool:
        """Whether a server sent requests of the batch to an upstream (marks its start left behind): how a batch
        of an older release, which recorded no executor, is known to be an upstream's."""
        row = self.db.execute("SELECT started_upto FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is not None and row[0] >= 0:
            return True
        return self.db.execute("SELECT 1 FROM inflight WHERE batch_id = ? LIMIT 1", (batch_id,)).fetchone() is not None

    def update_batch(self, batch_id: str, **fields: Any) -> None:
        """Set columns; `errors`/`metadata` dicts are stored as JSON."""
        for key in ("errors", "metadata"):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.db:
            self.db.execute(f"UPDATE batches SET {cols} WHERE id = ?", (*fields.values(), batch_id))

    def transition(self, batch_id: str, status: str, *, only_from: tuple[str, ...] = (), **fields: Any) -> bool:
        """Move a batch to `status`, stamping `<status>_at`; with `only_from`, only from those statuses."""
        stamp = f"{status}_at"
        if stamp in TIMESTAMP_FIELDS and stamp not in fields:
            fields[stamp] = int(time.time())
        for key in ("errors",):
            if key in fields and fields[key] is not None:
                fields[key] = json.dumps(fields[key])
        fields["status"] = status
        cols = ", ".join(f"{k} = ?" for k in fields)
        sql = f"UPDATE batches SET {cols} WHERE id = ?"
        args: tuple[Any, ...] = (*fields.values(), batch_id)
        if only_from:
            sql += f" AND status IN ({','.join('?' * len(only_from))})"
            args = (*args, *only_from)
        with self.db:
            return self.db.execute(sql, args).rowcount == 1

    def finish_batch(self, batch_id: str, status: str, files: dict[str, Path | None]) -> None:
        """Register the result files and move the batch to its final status, in one transaction.

        The result files expire as the batch's `output_expires_after` asked (never, without one).
        """
        now = int(time.time())
        created = int(self.clock())
        ttl = self.db.execute("SELECT output_expires_seconds FROM batches WHERE id = ?", (batch_id,)).fetchone()
        expires_at = created + ttl[0] if ttl is not None and ttl[0] is not None else None
        ids: dict[str, str | None] = {}
        with self.db:
            for kind, path in files.items():
                if path is None:
                    ids[kind] = None
                    continue
                ids[kind] = path.name
                self.db.execute(
                    "INSERT OR IGNORE INTO files (id, bytes, created_at, filename, purpose, path, expires_at)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (path.name, path.stat().st_size, created, f"{batch_id}_{kind}.jsonl", "batch_output", str(path),
                     expires_at),
                )  # fmt: skip
            self.db.execute(
                f"UPDATE batches SET status = ?, {status}_at = ?, output_file_id = ?, error_file_id = ? WHERE id = ?",
                (status, now, ids.get("output"), ids.get("error"), batch_id),
            )

    def recount_usage_details(self, batch_id: str) -> None:
        """Sum the cached and reasoning tokens of the results recorded so far into the batch.

        Each group of results adds its own as it is recorded (`_bump_counts`); a batch resumed after a
        restart is recounted once first, as its rows may come from a release that summed them only at the end.
        """
        sums = []
        for column, paths in _DETAIL_SUMS.items():
            picks = ", ".join(f"json_extract(result, '$.response.body.usage.{p}')" for p in paths)
            sums.append(f"{column} = (SELECT COALESCE(SUM(COALESCE({picks}, 0)), 0) FROM results"
                        " WHERE batch_id = :id AND ok = 1)")  # fmt: skip
        with self.db:
            self.db.execute(f"UPDATE batches SET {', '.join(sums)} WHERE id = :id", {"id": batch_id})

    # -- results -------------------------------------------------------------------------------

    def done_lines(self, batch_id: str) -> set[int]:
        rows = self.db.execute("SELECT line_no FROM results WHERE batch_id = ?", (batch_id,))
        return {r[0] for r in rows}

    def add_results(self, batch_id: str, rows: list[ResultRow]) -> None:
        """Insert result rows and bump the counts by the rows actually inserted, in one transaction."""
        if rows:
            self.record_group(batch_id, (), rows)

    def record_group(self, batch_id: str, starts: Iterable[int], rows: list[ResultRow]) -> None:
        """One transaction: mark `starts` as sent, insert result rows, bump the counts.

        The group commit of `serve --upstream`: many requests' starts and results share one commit. A start is
        recorded as the batch's `started_upto` (the highest line sent: lines go out in input order), not a row
        a request, so a result needs no mark cleared: its row is what says that line is no longer in flight.
        """
        upto = max(starts, default=-1)
        try:
            with self.db:
                if rows:
                    before = self.db.total_changes
                    self.db.executemany(_INSERT_RESULT, [_result_values(batch_id, row) for row in rows])
                    if self.db.total_changes - before != len(rows):
                        raise _AlreadyRecorded  # some rows were there already: count row by row instead
                self._bump(batch_id, upto, rows)
            return
        except _AlreadyRecorded:
            pass  # rolled back; only a resumed batch gets here, and rarely
        with self.db:
            inserted = [row for row in rows if self.db.execute(_INSERT_RESULT, _result_values(batch_id, row)).rowcount == 1]
            self._bump(batch_id, upto, inserted)

    def _bump(self, batch_id: str, upto: int, rows: list[ResultRow]) -> None:
        """Raise `started_upto` to `upto` and add the rows to the counts, in one UPDATE."""
        if upto < 0 and not rows:
            return
        completed = sum(1 for row in rows if row.ok)
        self.db.execute(
            "UPDATE batches SET started_upto = max(started_upto, ?), completed = completed + ?, failed = failed + ?,"
            " input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, cached_tokens = cached_tokens + ?,"
            " reasoning_tokens = reasoning_tokens + ? WHERE id = ?",
            (upto, completed, len(rows) - completed, sum(row.input_tokens for row in rows),
             sum(row.output_tokens for row in rows), sum(row.cached_tokens for row in rows),
             sum(row.reasoning_tokens for row in rows), batch_id),
        )  # fmt: skip

    def take_interrupted(self, batch_id: str, unfinished_upto: Callable[[int], int]) -> int:
        """Count the requests left in flight by a crash into the batch's metadata; returns how many there were.

        `unfinished_upto(n)`: how many request lines up to line n have no result (the caller reads the input
        file). Those were sent and their answer never recorded; with the rows an older release marked one by
        one (`inflight`), they will be sent again, so the upstream may see them twice: the running total is
        kept under `POSSIBLY_DUPLICATED` in the batch's `metadata`, in the same transaction that clears the marks.
        """
        with self.db:
            row = self.db.execute("SELECT started_upto, metadata FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                return 0
            # An older release's rows up to started_upto (it ran the batch after this one crashed) have no result:
            # unfinished_upto counts them already.
            count = self.db.execute(
                "SELECT COUNT(*) FROM inflight WHERE batch_id = ? AND line_no > ?", (batch_id, row["started_upto"])
            ).fetchone()[0]
            if row["started_upto"] >= 0:
                count += unfinished_upto(row["started_upto"])
            if count:
                metadata = json.loads(row["metadata"]) if row["metadata"] else {}
                metadata[POSSIBLY_DUPLICATED] = str(int(metadata.get(POSSIBLY_DUPLICATED, 0)) + count)
                self.db.execute("UPDATE batches SET metadata = ? WHERE id = ?", (json.dumps(metadata), batch_id))
            if count or row["started_upto"] >= 0:  # else nothing is marked (a first start): nothing written
                # Counted once: they are marked again only when they are sent again.
                self.db.execute("DELETE FROM inflight WHERE batch_id = ?", (batch_id,))
                self.db.execute("UPDATE batches SET started_upto = -1 WHERE id = ?", (batch_id,))
        return count


_INSERT_RESULT = "INSERT OR IGNORE INTO results (batch_id, line_no, custom_id, ok, result) VALUES (?,?,?,?,?)"


class _AlreadyRecorded(Exception):
    """A group held rows recorded before: its transaction is rolled back and done row by row."""


def _result_values(batch_id: str, row: ResultRow) -> tuple[Any, ...]:
    text = row.result if isinstance(row.result, str) else json.dumps(row.result, ensure_ascii=False)
    return (batch_id, row.line_no, row.custom_id, int(row.ok), text)


def iter_results(db_path: Path, batch_id: str, *, ok: bool, chunk: int = 1000) -> Iterator[list[str]]:
    """Result lines (JSON text) of one kind, in input order, `chunk` at a time (a step a chunk, not a
    line: the output file is written at ~2x the speed), from a connection of the caller's thread."""
    db = connect(db_path)
    try:
        rows = db.execute(
            "SELECT result FROM results WHERE batch_id = ? AND ok = ? ORDER BY line_no", (batch_id, int(ok))
        )
        while found := rows.fetchmany(chunk):
            yield [text for (text,) in found]
    finally:
        db.close()

"""Streaming readers for tables: CSV/TSV (quotes, embedded delimiters and newlines, a BOM, any
delimiter), JSONL (one object a line) and Parquet (pyarrow's `iter_batches`, when installed).

Every reader yields `(row number, row)` one row at a time, so memory stays flat whatever the file's
size. Text is UTF-8, or UTF-16 with a BOM, or what `--encoding` names (`encoding.py`). Row numbers
count data rows from 1 (the header is not a row; blank CSV lines and blank JSONL lines are skipped and
not counted), the same way for `prepare` and for the join, so `row-N` ids match.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchctl.errors import BatchctlError
from batchctl.prepare.encoding import DEFAULT, encoding_for, undecodable

FORMATS = ("csv", "jsonl", "parquet")
_BY_SUFFIX = {".csv": "csv", ".tsv": "csv", ".tab": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}  # fmt: skip
PARQUET_BATCH_ROWS = 4096
PARQUET_HINT = "Install the Parquet extra: pip install 'batchctl[parquet]' (it brings pyarrow)."


def format_of(path: Path, forced: str | None = None) -> str:
    """csv, jsonl or parquet: `forced`, else by the file's extension (anything unknown reads as CSV)."""
    if forced:
        fmt = forced.lower()
        if fmt == "tsv":
            return "csv"
        if fmt not in FORMATS:
            raise BatchctlError(f"unknown format {forced!r}", "Use one of: csv, tsv, jsonl, parquet.")
        return fmt
    return _BY_SUFFIX.get(path.suffix.lower(), "csv")


def default_delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() in (".tsv", ".tab") else ","


def require_pyarrow(what: str) -> Any:
    """pyarrow.parquet, or a clear error naming the extra to install."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BatchctlError(f"{what} needs pyarrow, which is not installed", PARQUET_HINT) from None
    return pq


def cell_text(value: Any) -> str:
    """A cell as template text: strings as they are, None as empty, numbers and booleans as JSON spells
    them, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass
class RowSource:
    """A table opened for reading: its path, format, delimiter and columns (read from the header)."""

    path: Path
    fmt: str
    delimiter: str = ","
    columns: list[str] = field(default_factory=list)
    arrow_schema: Any = None  # Parquet: the table's pyarrow schema (a joined Parquet file keeps its types)
    encoding: str = DEFAULT  # CSV and JSONL: the codec the text is read with

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row number, {column: value}) for every data row, in file order."""
        if self.fmt == "csv":
            return self._csv_rows()
        if self.fmt == "jsonl":
            return self._jsonl_rows()
        return self._parquet_rows()

    def _csv_reader(self, handle: Any) -> Any:
        csv.field_size_limit(sys.maxsize)
        # strict: a stray quote (`"He said "hi"`) or a quote never closed is an error naming its line;
        # without it the reader went on, and an unclosed quote swallowed every row after it unsaid.
        return csv.reader(handle, delimiter=self.delimiter, strict=True)

    def _csv_cells(self, handle: Any) -> Iterator[list[str]]:
        """The rows of the CSV/TSV `handle`, header first; bad quoting is a BatchctlError with its line."""
        reader = self._csv_reader(handle)
        started = 1  # the line the next row starts on
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeError:  # UnicodeDecodeError, or utf-16 named without a BOM
                raise undecodable(self.path, self.encoding) from None
            except csv.Error as exc:
                raise BatchctlError(
                    f"{self.path.name}: the row starting on line {started} is not valid CSV ({exc}, line {reader.line_num})",
                    'Check its quotes: a cell holding the delimiter, a quote or a line break is quoted, a quote in it doubled ("").',
                ) from None
            if started == 1 and cells:
                cells[0] = cells[0].removeprefix("\ufeff")  # a BOM the named --encoding (utf-16-le, ...) kept
            started = reader.line_num + 1
            yield cells

    def _header(self) -> list[str] | None:
        with open(self.path, encoding=self.encoding, newline="") as handle:
            return next(self._csv_cells(handle), None)

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        columns = self.columns
        width = len(columns)
        with open(self.path, encoding=self.encoding, newline="") as handle:
            rows = self._csv_cells(handle)
            next(rows, None)  # the header
            n = 0
            for cells in rows:
                if not cells or (len(cells) == 1 and not cells[0]):
                    continue  # a blank line
                n += 1
                if len(cells) < width:
                    cells += [""] * (width - len(cells))
                elif len(cells) > width and any(cell.strip() for cell in cells[width:]):
                    raise BatchctlError(
                        f"{self.path.name}: row {n} has {len(cells)} cells but the header names {width} columns; "
                        "nothing was written",
                        f"A cell holding the delimiter ({self.delimiter!r}) must be quoted, or --delimiter set to the one the file uses.",
                    )
                yield n, dict(zip(columns, cells))

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            yield from self._jsonl_objects()
        except UnicodeError:
            raise undecodable(self.path, self.encoding) from None

    def _jsonl_objects(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with open(self.path, encoding=self.encoding) as handle:
            n = 0
            for lineno, line in enumerate(handle, 1):
                if lineno == 1:
                    line = line.removeprefix("\ufeff")
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise BatchctlError(f"{self.path.name}: line {lineno} is not valid JSON: {exc}",
                                        "Each line of a JSONL file must be one JSON object.") from None  # fmt: skip
                if not isinstance(obj, dict):
                    raise BatchctlError(f"{self.path.name}: line {lineno} is not a JSON object",
                                        "Each line of a JSONL file must be one JSON object.")  # fmt: skip
                n += 1
                yield n, obj

    def _parquet_rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        pq = require_pyarrow(f"reading {self.path.name} (Parquet)")
        n = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for row in batch.to_pylist():
                n += 1
                yield n, row


def open_rows(path: Path, *, fmt: str | None = None, delimiter: str | None = None, encoding: str | None = None) -> RowSource:
    """Open `path` as a table and read its columns: the CSV header, the keys of JSONL lines (in order of
    first appearance over the first 1,000 rows), the Parquet schema.

    Without `delimiter`, a header that is one cell holding tabs (Excel's "Unicode text", a .txt) is read
    as tab-separated. Header names lose their leading and trailing spaces (`id, text` names `text`)."""
    from batchctl.validation.inputs import check_input_file

    # A FIFO would hang, /dev/zero grow without end: a regular file, or a clear error.
    check_input_file(path, hint="Give the path of a CSV, TSV, JSONL or Parquet file (save a pipe's output to a file first).")
    tab = fmt is not None and fmt.lower() == "tsv"  # --data-format tsv: tab-separated, whatever the extension
    source = RowSource(path, format_of(path, fmt), delimiter or ("\t" if tab else default_delimiter(path)))
    if source.fmt != "parquet":
        source.encoding = encoding_for(path, encoding)
    if source.fmt == "csv":
        if len(source.delimiter) != 1:
            raise BatchctlError(f"the delimiter must be one character, not {source.delimiter!r}", "Pass e.g. --delimiter ';'.")
        header = source._header()
        if delimiter is None and source.delimiter == "," and len(header or ()) == 1 and "\t" in header[0]:
            source.delimiter = "\t"
            header = source._header()
        if not header:
            raise BatchctlError(f"{path.name} is empty: it has no header row", "The first row must name the columns.")
        if any("\x00" in name for name in header):
            raise BatchctlError(f"{path.name}: its header holds NUL characters: it looks like UTF-16 without a byte-order mark",
                                "Name it: --encoding utf-16-le (or utf-16-be); or save it as UTF-8.")  # fmt: skip
        source.columns = [name.strip() for name in header]
    elif source.fmt == "jsonl":
        seen: dict[str, None] = {}
        n = 0
        for n, row in source.rows():
            seen.update(dict.fromkeys(row))
            if n >= 1000:
                break
        if n == 0:
            raise BatchctlError(f"{path.name} is empty: it has no JSON lines", "Each line of a JSONL file must be one JSON object.")
        source.columns = list(seen)
    else:
        pq = require_pyarrow(f"reading {path.name} (Parquet)")
        source.arrow_schema = pq.ParquetFile(path).schema_arrow
        source.columns = list(source.arrow_schema.names)
    duplicated = sorted({c for c in source.columns if source.columns.count(c) > 1})
    if duplicated:
        raise BatchctlError(f"{path.name}: column {', '.join(map(repr, duplicated))} appears more than once in the header",
                            "Give every column its own name.")  # fmt: skip
    return source

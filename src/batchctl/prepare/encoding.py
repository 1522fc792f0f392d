"""Which text encoding a table or an @FILE is read with, and the error when its bytes are not that.

UTF-8 (a BOM skipped) unless a UTF-16 BOM says otherwise (Excel's "Unicode text" is UTF-16LE with a
BOM) or `--encoding` names one. A file that does not decode is an error naming the file, the line and
the byte, with the fix; it is located by a second streamed pass, on the error path only.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from batchctl.errors import BatchctlError

DEFAULT = "utf-8-sig"
_BINARY_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (a zip) and the old .xls


def save_as_utf8(path: Path, *, table: bool = True, source: str = "gbk") -> str:
    how = "Excel: Save As → CSV UTF-8" if table else "your editor's Save As, encoding UTF-8"
    return f"save it as UTF-8 ({how}; or iconv -f {source} -t utf-8 {path.name} > {path.stem}-utf8{path.suffix})"


def codec_name(encoding: str) -> str:
    """Python's name for `encoding`, or a BatchctlError naming some that exist."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise BatchctlError(f"unknown encoding {encoding!r}", "Name one Python knows, e.g. --encoding gbk, gb18030, utf-16, cp1252, latin-1.") from None
    if not getattr(info, "_is_text_encoding", True):  # rot13, hex, base64, zlib: bytes to bytes, open() refuses them
        raise BatchctlError(f"{encoding!r} is not a text encoding", "Name one Python knows, e.g. --encoding gbk, gb18030, utf-16, cp1252, latin-1.")
    return info.name


def encoding_for(path: Path, given: str | None = None) -> str:
    """The codec to read `path` with: `given`, else UTF-16 when the file starts with its BOM, else
    UTF-8 (a UTF-8 BOM skipped). Reads two bytes, never the whole file."""
    if given:
        return DEFAULT if codec_name(given) == "utf-8" else given
    with open(path, "rb") as handle:
        head = handle.read(2)
    return "utf-16" if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else DEFAULT


def _first_bad_byte(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """(line, byte offset, byte) of the first byte of `path` that `encoding` cannot decode; None if all do."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    done = 0  # bytes fed to the decoder so far
    with open(path, "rb") as handle:
        while piece := handle.readline(1 << 16):  # bounded: a binary file may have no line break at all
            try:
                held = len(decoder.getstate()[0])
            except (AttributeError, TypeError):
                held = 0
            try:
                line += decoder.decode(piece).count("\n")
            except UnicodeDecodeError as exc:
                before = exc.object[: exc.start]
                line += codecs.decode(before, encoding, "replace").count("\n")
                return line, done - held + exc.start, exc.object[exc.start]
            except UnicodeError:  # no byte is wrong: utf-16/utf-32 named without the byte-order mark they need
                return None
            done += len(piece)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # the file ends inside a character
        return line, done - len(exc.object) + exc.start, exc.object[exc.start]
    except UnicodeError:
        return None
    return None


def _needs_bom(path: Path, encoding: str) -> bool:
    """`encoding` is UTF-16 or UTF-32 of no byte order (which the file's BOM must give) and `path` starts
    with none."""
    name = codecs.lookup(encoding).name
    if name not in ("utf-16", "utf-32"):
        return False
    with open(path, "rb") as handle:
        head = handle.read(4)
    boms = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) if name == "utf-16" else (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
    return not head.startswith(boms)


def looks_binary(path: Path) -> bool:
    """An Excel workbook, or a file whose first 8 KB hold a NUL byte (text in UTF-8 or GBK never does)."""
    with open(path, "rb") as handle:
        head = handle.read(8192)
    return head.startswith(_BINARY_MAGIC) or (b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)))


def undecodable(path: Path, encoding: str, *, what: str | None = None, option: bool = True) -> BatchctlError:
    """The error for `path` not decoding as `encoding`: which line and byte, and how to fix it.

    `what` prefixes the message (e.g. "--template @p.txt"); `option`: whether --encoding is offered."""
    prefix = f"{what}: " if what else ""
    if looks_binary(path):
        workbook = " (an Excel workbook?)" if path.suffix.lower() in (".xlsx", ".xls", ".xlsm") else ""
        return BatchctlError(f"{prefix}{path.name} is not a text file{workbook}: it looks binary; nothing was written",
                             "Give a CSV/TSV, JSONL or Parquet file: in Excel, Save As → CSV UTF-8." if option
                             else "Give a text file, saved as UTF-8.")  # fmt: skip
    name = {DEFAULT: "UTF-8", "utf-16": "UTF-16"}.get(encoding, encoding)
    if _needs_bom(path, encoding):
        order = codecs.lookup(encoding).name
        return BatchctlError(f"{prefix}{path.name} does not start with the byte-order mark that --encoding {encoding} needs; "
                             "nothing was written",
                             f"Name the byte order: --encoding {order}-le (Windows' \"Unicode\") or {order}-be; or "
                             f"{save_as_utf8(path, table=option, source=order + '-le')}.")  # fmt: skip
    found = _first_bad_byte(path, encoding)
    where = f" (line {found[0]} holds the byte 0x{found[2]:02x}, at offset {found[1]:,})" if found else ""
    fix = save_as_utf8(path, table=option, source="utf-16" if encoding == "utf-16" else "gbk")
    if encoding == "utf-16":
        hint = f"It starts with a UTF-16 byte-order mark but is damaged or cut short: {fix}."
    elif encoding != DEFAULT:
        hint = f"It is in another encoding than --encoding {encoding}: name that one, or {fix}."
    elif option:
        hint = f"Either {fix}, or name its encoding: --encoding gbk (or gb18030, cp1252, ...)."
    else:
        hint = f"{fix[0].upper()}{fix[1:]}."
    return BatchctlError(f"{prefix}{path.name} is not {name} text{where}; nothing was written", hint)


def read_text(path: Path, *, what: str) -> str:
    """A small text file (a template, a schema) whole: UTF-8, or UTF-16 with a BOM; else a clear error."""
    encoding = encoding_for(path)
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError:
        raise undecodable(path, encoding, what=what, option=False) from None

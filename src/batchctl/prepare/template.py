"""Prompt templates: text with `{column}` placeholders filled from a row; `{{` and `}}` are literal braces.

Parsed once with `string.Formatter`'s rules; a placeholder names a column by its exact header text
(spaces allowed), with no format spec or conversion. Columns are checked against the table up front,
so a typo fails before anything is written.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchctl.errors import BatchctlError
from batchctl.prepare.rows import cell_text


class EmptyCell(BatchctlError):
    """A placeholder's cell is empty in some row (without --allow-empty)."""


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal text, column or None)
    what: str = "--template"

    @classmethod
    def parse(cls, text: str, what: str = "--template") -> Template:
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise BatchctlError(f"{what} is not a valid template: {exc}",
                                "Write placeholders as {column}; a literal brace as {{ or }}.") from None  # fmt: skip
        for literal, name, spec, conversion in parsed:
            if name is not None and (spec or conversion):
                raise BatchctlError(
                    f"{what}: placeholder {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}} "
                    "has a format spec or conversion, which templates do not take",
                    "Write a placeholder as just {column}; a literal brace as {{ or }}.",
                )
            if name is not None and not name.strip():
                raise BatchctlError(f"{what} has an empty placeholder {{}}", "Name a column: {column}; a literal brace is {{ or }}.")
            parts.append((literal, name))
        return cls(text, tuple(parts), what)

    @property
    def columns(self) -> list[str]:
        """The columns the template names, in order of first use."""
        return list(dict.fromkeys(name for _, name in self.parts if name is not None))

    def check_columns(self, available: Sequence[str], source: str) -> None:
        """Refuse a placeholder that names no column of the table, naming the columns that exist."""
        missing = [c for c in self.columns if c not in available]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise BatchctlError(
                f"{self.what} names column{plural} {', '.join(map(repr, missing))}, not in {source}; "
                f"its columns are: {', '.join(available) or '(none)'}; nothing was written",
                "Fix the placeholder (column names are exact, case included; spaces around a CSV header name are dropped); "
                "a literal brace is {{ or }}.",
            )

    def render(self, row: Mapping[str, Any], row_number: int, *, allow_empty: bool = False) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                value = cell_text(row.get(name))
                if not value and not allow_empty:
                    raise EmptyCell(
                        f"row {row_number}: column {name!r} (used by {self.what}) is empty; nothing was written",
                        "Fill it in, drop the row, or pass --allow-empty to send the text without it.",
                    )
                out.append(value)
        return "".join(out)

"""Data that leaves the program as a name or a spreadsheet cell, made safe in one place:

- codes (unit, project, indicator) are checked at import against a documented character set, so a
  code is always usable in a file name: ASCII letters and digits, `-`, `_` and `.`, not starting with
  `.` and without `..`;
- file names built from data (a code from an older database, a label) go through `safe_name`: never a
  path, never hidden, never empty, never too long for a file system;
- text cells of the CSV files the project writes are neutralised as OWASP recommends against CSV
  injection: a text cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`; numbers stay
  numbers (a negative number is not text, and spreadsheets do not run it);
- text cells of the workbooks the project writes are typed as text (openpyxl data type `s`): openpyxl
  would otherwise store any text starting with `=` as a formula, and `#N/A` as an error.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from typing import IO, Any

from monitor.core import cells

# --- codes ---------------------------------------------------------------------------------------

CODE_CHARACTERS = "letters, digits, '-', '_' and '.'"
_CODE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def check_code(code: str) -> str:
    """`code` if it is made of ASCII letters, digits, `-`, `_` and `.`, does not start with `.` and has
    no `..`; else ValueError saying which characters are not allowed."""
    if _CODE.fullmatch(code) and ".." not in code:
        return code
    bad = dict.fromkeys(c for c in code if not (c.isascii() and (c.isalnum() or c in "-_.")))
    if bad:
        shown = " ".join(repr(c) if c.isprintable() and not c.isspace() else f"U+{ord(c):04X}" for c in bad)
        raise ValueError(
            f"may contain only {CODE_CHARACTERS}, not {shown}（编码只能包含字母、数字、-、_ 和 .）"
        )
    raise ValueError(
        f"may contain only {CODE_CHARACTERS}, and must not start with '.' or contain '..'"
        "（编码不能以 . 开头，也不能包含 ..）"
    )


def parse_code(value: object, max_length: int = 32) -> str:
    """A code as `cells.parse_code` reads it (NFKC, no spaces, at most `max_length`), then checked by
    `check_code`."""
    return check_code(cells.parse_code(value, max_length))


# --- file names ----------------------------------------------------------------------------------

MAX_NAME_BYTES = 200  # room left for a suffix and a temporary file's affixes within 255 bytes


def safe_name(text: str) -> str:
    """`text` as one file name: letters, digits, `-`, `_` and `.` kept (any script), everything else
    (`/`, `\\`, `:`, spaces, control characters …) replaced by `_`; never empty, never starting with
    `.` (so never `.` or `..`, never hidden), at most MAX_NAME_BYTES bytes of UTF-8."""
    text = unicodedata.normalize("NFC", text)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    if not name or name.startswith("."):
        name = "_" + name
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        name = encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore")
    return name


# --- spreadsheet cells ---------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell starting with = + - @ TAB or CR prefixed with `'` (OWASP's advice against CSV
    injection); any other value unchanged, numbers included."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class CsvWriter:
    """csv.writer whose rows go through `csv_cell`: the only way the project writes CSV files."""

    def __init__(self, f: IO[str], **options: Any) -> None:
        self._writer = csv.writer(f, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def put(ws: Any, row: int, column: int, value: Any) -> Any:
    """Write `value` into an openpyxl worksheet's cell and return the cell; text stays text (data type
    `s`), never a formula or an error value."""
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell

"""Files as tables of rows. In: a CSV file (UTF-8, BOM or GB18030/GBK) or a workbook (.xlsx/.xlsm, its
archive checked against zip bombs and oversized sheets before anything is parsed). Out: per sheet
(one for a CSV), its name and its rows: (row number as Excel shows it, cells), merged cells filled,
Excel's error values as `ExcelError`; a CSV's delimiter is the one under which a line reads as a
header row (ingest.columns); a file that cannot be read raises `Unreadable` (with the row).
"""

from __future__ import annotations

import codecs
import csv
import functools
import itertools
import math
import re
import zipfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import openpyxl
from openpyxl.utils import column_index_from_string, get_column_letter

from monitor.core.cells import is_blank
from monitor.core.errors import BadInput
from monitor.core.numeric import canonical_decimal, to_decimal
from monitor.ingest.columns import HEADER_SEARCH_ROWS, Rows, count_known_headers

SUFFIXES = (".csv", ".xlsx", ".xlsm")

# Limits on a workbook (README: Data in), checked from the archive's directory and each sheet's declared
# dimension before anything is parsed, and on the cells actually read. A workbook is a zip of XML parts;
# the sheet XML of 1,048,576 rows of 15 columns is about 500 MB, and real sheets compress 5-30 times.
XLSX_MAX_PART_BYTES = 512 << 20  # one part (a sheet's XML, the shared strings) uncompressed
XLSX_MAX_TOTAL_BYTES = 1 << 30  # all parts together, uncompressed
XLSX_MAX_RATIO = 100  # uncompressed / compressed size, of any part over XLSX_RATIO_FROM and of the whole
XLSX_RATIO_FROM = 1 << 20  # small parts (styles, a sheet of a few rows) may compress better
XLSX_MAX_ROWS = 1_048_576  # Excel's own limit
XLSX_MAX_CELLS = 50_000_000  # per sheet: its declared dimension, and the cells read (blank ones too)


class Unreadable(BadInput, ValueError):
    """A file that cannot be read (or is refused before reading), with the line where it is known."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


def read_tables(path: Path) -> Generator[tuple[str | None, Rows]]:
    """The tables of a file as (sheet name, rows): one per worksheet of a workbook, one (sheet None)
    for a CSV file. Rows are numbered as Excel shows them; the file closes when done. A workbook
    beyond the limits above, or one whose XML declares entities, raises Unreadable."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding=_encoding(path), newline="") as f:
            yield None, _csv_rows(f)
        return
    check_archive(path)
    with _workbook_errors():
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        with _workbook_errors():
            sheets = wb.worksheets
        for ws in sheets:
            _check_dimension(ws)
            yield ws.title, _xlsx_rows(ws)
    finally:
        wb.close()


def check_archive(path: Path) -> None:
    """Refuse a workbook whose parts, as its zip directory declares them, exceed the limits (Python's
    zipfile never inflates a part beyond its declared size: a lie fails its CRC check)."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise Unreadable(f"not an .xlsx workbook (not a zip archive): {exc}") from None
    total = packed = 0
    for part in parts:
        total, packed = total + part.file_size, packed + part.compress_size
        if part.file_size > XLSX_MAX_PART_BYTES:
            raise Unreadable(
                f"part {part.filename} inflates to {part.file_size:,} bytes, over the limit of "
                f"{XLSX_MAX_PART_BYTES:,} bytes; split the data over several files（工作簿过大，请拆分）"
            )
        if part.file_size > XLSX_RATIO_FROM and part.file_size > XLSX_MAX_RATIO * max(part.compress_size, 1):
            raise Unreadable(_ratio_message(part.filename, part.file_size, part.compress_size))
    if total > XLSX_MAX_TOTAL_BYTES:
        raise Unreadable(
            f"inflates to {total:,} bytes in all, over the limit of {XLSX_MAX_TOTAL_BYTES:,} bytes; "
            "split the data over several files（工作簿过大，请拆分）"
        )
    if total > XLSX_RATIO_FROM and total > XLSX_MAX_RATIO * max(packed, 1):
        raise Unreadable(_ratio_message("(all parts)", total, packed))


def _ratio_message(part: str, size: int, packed: int) -> str:
    return (
        f"part {part} inflates from {packed:,} to {size:,} bytes, a compression ratio of "
        f"{size // max(packed, 1):,}:1, over the limit of {XLSX_MAX_RATIO}:1 (a zip bomb?)"
        "（压缩比异常，拒绝读取）"
    )


def _check_dimension(ws: Any) -> None:
    """Refuse a sheet whose declared dimension (`<dimension ref="A1:XFD1048576"/>`) is beyond the limits."""
    rows, cols = ws.max_row, ws.max_column  # as declared (read-only mode reads the dimension record)
    if rows is None or cols is None:
        return
    if rows > XLSX_MAX_ROWS or rows * cols > XLSX_MAX_CELLS:
        ref = f"{get_column_letter(ws.min_column or 1)}{ws.min_row or 1}:{get_column_letter(cols)}{rows}"
        raise Unreadable(
            f"sheet {ws.title!r} declares the dimension {ref}: over {XLSX_MAX_ROWS:,} rows or "
            f"{XLSX_MAX_CELLS:,} cells（工作表范围过大）"
        )


@contextmanager
def _workbook_errors() -> Iterator[None]:
    """openpyxl's (and the XML parser's) errors on a broken or hostile workbook as Unreadable."""
    try:
        yield
    except Unreadable:
        raise
    except Exception as exc:
        raise _unreadable(exc) from None


def _unreadable(exc: Exception, sheet: str | None = None) -> Unreadable:
    where = f"sheet {sheet!r}: " if sheet is not None else ""
    if _entities(exc):
        message = (
            "declares XML entities (a DOCTYPE), which a workbook never needs and which can expand "
            "to gigabytes (an XML bomb); re-save the file in Excel（工作簿含XML实体声明，拒绝读取）"
        )
    else:
        message = f"not a workbook that can be read: {type(exc).__name__}: {exc}（工作簿已损坏或格式不对）"
    return Unreadable(where + message)


def _entities(exc: BaseException | None) -> bool:
    """An XML entity or DTD refused by defusedxml, or expat's own amplification limit (also when
    openpyxl raised another exception while handling it)."""
    seen = 0
    while exc is not None and seen < 10:
        names = {cls.__name__ for cls in type(exc).__mro__}
        if names & {"DefusedXmlException", "EntitiesForbidden", "DTDForbidden"} or "amplification" in str(
            exc
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _encoding(path: Path) -> str:
    """utf-8-sig if the whole file is valid UTF-8, else gb18030 (a superset of GBK). Remembered for
    the file as it is (an import opens a file twice: for its header, then for its rows)."""
    stat = path.stat()
    return _scanned_encoding(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _scanned_encoding(path: Path, size: int, mtime_ns: int) -> str:
    if _first_error(path, "utf-8") is None:
        return "utf-8-sig"
    bad = _first_error(path, "gb18030")
    if bad is not None:
        offset, byte = bad
        line = _line_of(path, offset)
        raise Unreadable(
            f"line {line} holds the byte 0x{byte:02x}, which is neither UTF-8 nor GB18030/GBK text; "
            "save the file as UTF-8 CSV（第{line}行含有无法识别的字符，请另存为 UTF-8 编码的 CSV）".replace(
                "{line}", str(line)
            ),
            row=line,
        )
    return "gb18030"


def _first_error(path: Path, encoding: str) -> tuple[int, int] | None:
    """The offset and value of the first byte of the file that does not decode, or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(1 << 20)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                return at, exc.object[exc.start]
            if not chunk:
                return None
            offset += len(chunk)


def _line_of(path: Path, offset: int) -> int:
    """The 1-based line the byte at `offset` is on."""
    lines, done = 1, 0
    with path.open("rb") as f:
        while done < offset and (chunk := f.read(min(1 << 20, offset - done))):
            lines += chunk.count(b"\n")
            done += len(chunk)
    return lines


def _csv_rows(f: TextIO) -> Rows:
    """The records of an open CSV file, numbered from 1; the delimiter (`,` tab `;`) is the one under
    which an early line reads as a header row. Plain iterators, no generator: millions of rows."""
    lines = f.read(1 << 16).splitlines()[:HEADER_SEARCH_ROWS]
    scores = {d: max(map(count_known_headers, csv.reader(lines, delimiter=d)), default=0) for d in ",\t;"}
    f.seek(0)
    return enumerate(csv.reader(f, delimiter=max(scores, key=lambda d: scores[d])), start=1)


_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?\"")
Merge = tuple[int, int, int, int]  # first row, first column, last row, last column (1-based)


def _merged_ranges(ws: Any) -> list[Merge]:
    """A read-only sheet's merged ranges, scanned from its XML: openpyxl's read-only mode does not
    expose them, and they come after the cell data."""
    path, archive = getattr(ws, "_worksheet_path", None), getattr(ws.parent, "_archive", None)
    if path is None or archive is None:
        return []
    found, tail = [], b""
    with archive.open(path) as f:  # a chunk at a time: a sheet's XML may be hundreds of megabytes
        while chunk := f.read(1 << 20):
            text = tail + chunk
            cut = max(0, len(text) - 200)  # a match may straddle two chunks: keep the last bytes
            found += [m.groups() for m in _MERGE_REF.finditer(text) if m.start() < cut]
            tail = text[cut:]
        found += _MERGE_REF.findall(tail)
    ranges = []
    for c1, r1, c2, r2 in found:
        first = (int(r1), column_index_from_string(c1.decode()))
        ranges.append((*first, int(r2), column_index_from_string(c2.decode())) if c2 else (*first, *first))
    return ranges


class ExcelError(str):
    """The value of a cell holding an Excel error (#N/A, #VALUE!, #REF! …): not text to store."""


def _cell_value(cell: Any) -> object:
    """A cell's value; a number formatted as a percentage (0.417 shown as 41.7%) becomes `41.7%`, an
    error value an ExcelError."""
    value = cell.value
    if cell.data_type == "e" and value is not None:
        return ExcelError(value)
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and "%" in (cell.number_format or "")
        and math.isfinite(value)
    ):
        return canonical_decimal(to_decimal(value) * 100) + "%"
    return value


def _xlsx_rows(ws: Any) -> Rows:
    """A sheet's rows with merged cells filled from their top-left cell; a row holding nothing but
    cells merged across columns (a title or section line) comes out blank."""
    starts: dict[int, list[Merge]] = {}
    for m in _merged_ranges(ws):
        starts.setdefault(m[0], []).append(m)
    active: list[tuple[Merge, object]] = []
    ws.reset_dimensions()  # exporters often write wrong dimensions
    read, rows = 0, ws.iter_rows(min_row=1)
    for number in itertools.count(1):
        try:
            cells = next(rows, None)
        except Exception as exc:  # openpyxl's or the XML parser's, on a broken or hostile sheet
            raise _unreadable(exc, ws.title) from None
        if cells is None:
            break
        read += len(cells) or 1
        if number > XLSX_MAX_ROWS or read > XLSX_MAX_CELLS:
            raise Unreadable(
                f"sheet {ws.title!r} has more than {XLSX_MAX_ROWS:,} rows or {XLSX_MAX_CELLS:,} cells "
                f"(row {number:,} reached); delete what lies beyond the table（工作表行数或单元格过多）",
                row=number,
            )
        if len(cells) > _WIDE and cells[-1].value is None:  # a stray formatted cell far to the right
            cells = cells[: _last_value(cells) + 1]
        row = [_cell_value(c) for c in cells]
        active += [(m, row[m[1] - 1] if m[1] <= len(row) else None) for m in starts.get(number, ())]
        if active:
            row = _fill_merged(row, active)
            active = [a for a in active if a[0][2] > number]
        yield number, row


_WIDE = 256


def _last_value(cells: Sequence[Any]) -> int:
    """The index of the last cell holding a value (-1 if none)."""
    for i in range(len(cells) - 1, -1, -1):
        if cells[i].value is not None:
            return i
    return -1


def _fill_merged(row: list[object], active: list[tuple[Merge, object]]) -> list[object]:
    row = row + [None] * (max(m[3] for m, _ in active) - len(row))
    wide: set[int] = set()
    for (_, c1, _, c2), value in active:
        row[c1 - 1 : c2] = [value] * (c2 - c1 + 1)
        wide.update(range(c1 - 1, c2) if c2 > c1 else ())
    return [] if wide and all(i in wide for i, c in enumerate(row) if not is_blank(c)) else row

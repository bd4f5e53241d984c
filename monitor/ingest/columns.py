"""Files as tables of canonical columns. ALIASES is the one table of Chinese headers accepted for each
input kind's columns (also rendered into the README). In: a CSV file (UTF-8, BOM or GB18030/GBK) or
a workbook. Out: per sheet, its header row, its kind, a canonical column -> cell index map, and rows.
"""

from __future__ import annotations

import codecs
import csv
import functools
import itertools
import math
import re
import unicodedata
import zipfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any, TextIO

import openpyxl
from openpyxl.utils import column_index_from_string, get_column_letter

from monitor.core import values as v

# kind -> canonical column -> accepted headers besides the canonical name itself. When two headers of
# one sheet map to the same column, the earlier alias wins (so 调整后预算数 beats 年初预算数).
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "units": {
        "unit_code": ("单位编码", "单位代码", "预算单位编码", "预算单位代码"),
        "unit_name": ("单位名称", "预算单位名称", "单位"),
        "email": ("联系邮箱", "电子邮箱", "邮箱", "电子邮件"),
        "supervisor_code": ("主管部门编码", "主管部门代码", "上级单位编码"),
    },
    "projects": {
        "project_code": ("项目编码", "项目代码"),
        "project_name": ("项目名称",),
        "unit_code": ("实施单位编码", "项目实施单位编码", "单位编码", "预算单位编码"),
        "budget": ("调整后预算数", "年初预算数", "预算数", "全年预算数"),
        "carryover": ("上年结转", "结转资金", "上年结转资金"),
        "fund_flag": ("直达资金标识", "资金标识"),
        "category": ("项目类别", "项目类型"),
        "profile": ("季节曲线", "执行曲线"),
    },
    "indicators": {
        "project_code": ("项目编码", "项目代码"),
        "indicator_code": ("指标编码", "指标代码"),
        "level1": ("一级指标",),
        "level2": ("二级指标",),
        "name": ("三级指标", "指标名称"),
        "direction": ("方向", "指标方向", "运算符号"),
        "target": ("年度指标值", "指标值", "目标值"),
        "measure_unit": ("计量单位", "度量单位"),
        "kind": ("指标类型",),
        "profile": ("季节曲线", "执行曲线"),
    },
    "project_reports": {
        "checkpoint": ("监控期", "监控月份", "监控期间"),
        "project_code": ("项目编码", "项目代码"),
        "executed": ("1-X月执行数",),
        "forecast_executed": ("全年预计执行数",),
    },
    "indicator_reports": {
        "checkpoint": ("监控期", "监控月份", "监控期间"),
        "project_code": ("项目编码", "项目代码"),
        "indicator_code": ("指标编码", "指标代码"),
        "actual": ("1-X月执行情况",),
        "forecast": ("全年预计完成情况",),
        "possibility": ("完成目标可能性",),
        "causes": ("偏差原因", "偏差原因类型"),
        "cause_text": ("原因说明", "偏差原因说明"),
        "measures": ("纠偏措施", "备注"),
    },
    "responses": {  # units' answers to their warning cases (monitor.ingest.responses)
        "checkpoint": ("监控期", "监控月份", "监控期间"),
        "project_code": ("项目编码", "项目代码"),
        "unit_code": ("单位编码", "实施单位编码", "预算单位编码"),
        "cause": ("偏差原因类别", "偏差原因", "原因类别", "偏差原因类型"),
        "explanation": ("原因说明", "偏差原因说明", "原因分析"),
        "measure": ("纠偏措施", "整改措施", "整改措施类型"),
        "measure_text": ("措施说明", "具体纠偏措施", "具体整改措施", "整改措施说明", "具体措施"),
        "expected_date": ("预计完成时间", "预计完成日期", "计划完成时间"),
    },
}
# Kinds read by a module of their own rather than the data import: answers go into existing cases.
# Their headers overlap the reports' (原因说明, 纠偏措施), so a table missing columns is taken for one
# only if it has a header no other kind uses.
SIDE_KINDS = ("responses",)
_OWN_COLUMNS = {"responses": frozenset({"measure_text", "expected_date"})}

REQUIRED: dict[str, tuple[str, ...]] = {
    "units": ("unit_code", "unit_name", "email"),
    "projects": ("project_code", "project_name", "unit_code", "budget"),
    "indicators": (
        "project_code",
        "indicator_code",
        "level1",
        "level2",
        "name",
        "direction",
        "target",
        "measure_unit",
    ),
    "project_reports": ("checkpoint", "project_code", "executed"),
    "indicator_reports": ("checkpoint", "project_code", "indicator_code", "actual"),
    "responses": (
        "checkpoint",
        "project_code",
        "cause",
        "explanation",
        "measure",
        "measure_text",
        "expected_date",
    ),
}

# Sheet (or CSV file) names that say which kind a table holds, used when the headers do not decide.
SHEET_NAMES: dict[str, tuple[str, ...]] = {
    "units": ("单位", "units", "unit"),
    "projects": ("项目", "projects", "project"),
    "indicators": ("指标", "indicators", "indicator"),
    "project_reports": ("项目执行", "project_reports", "project_report"),
    "indicator_reports": ("指标执行", "indicator_reports", "indicator_report"),
    "responses": ("整改反馈", "预警反馈", "responses", "response"),
}

# When several kinds' required columns are all present, the most specific wins: a sheet of report
# rows usually repeats the project's or indicator's own columns, never the other way round.
PRIORITY = ("responses", "indicator_reports", "project_reports", "indicators", "projects", "units")

_SPACE = re.compile(r"\s+")
_MONTH_RANGE = re.compile(r"^1[-‐‑‒–—―~至到](?:\d{1,2}|x)月")
_WAN_SUFFIX = re.compile(r"\((?:单位:)?万元\)$")


def normalize_header(text: object) -> str:
    """The form in which headers are compared: NFKC (full-width -> half-width), no spaces or `*`
    markers, lower case, any `1-5月`/`1—8月`/`1至X月` as `1-x月`, and a trailing `(万元)` dropped."""
    if text is None:
        return ""
    s = unicodedata.normalize("NFKC", str(text))
    s = _SPACE.sub("", s).strip("*").lower()
    s = _MONTH_RANGE.sub("1-x月", s)
    return _WAN_SUFFIX.sub("", s)


def _build_index() -> dict[str, dict[str, tuple[int, str]]]:
    index: dict[str, dict[str, tuple[int, str]]] = {}
    for kind, columns in ALIASES.items():
        table: dict[str, tuple[int, str]] = {}
        for canonical, aliases in columns.items():
            for rank, header in enumerate((canonical, *aliases)):
                table.setdefault(normalize_header(header), (rank, canonical))
        index[kind] = table
    return index


_INDEX = _build_index()
_ALL_HEADERS = frozenset(h for table in _INDEX.values() for h in table)
_SHEET_INDEX = {normalize_header(n): kind for kind, names in SHEET_NAMES.items() for n in names}


def is_known_header(text: object) -> bool:
    return normalize_header(text) in _ALL_HEADERS


def count_known_headers(cells: Sequence[object]) -> int:
    """How many cells of a row are headers of some kind (a header row has at least three)."""
    return sum(1 for c in cells if c is not None and normalize_header(c) in _ALL_HEADERS)


def map_headers(kind: str, headers: Sequence[object]) -> dict[str, tuple[int, ...]]:
    """Canonical column -> indexes of the header cells naming it for `kind`, best alias first (a row
    blank under 调整后预算数 falls back to 年初预算数)."""
    table = _INDEX[kind]
    found: dict[str, list[tuple[int, int]]] = {}
    for i, cell in enumerate(headers):
        hit = table.get(normalize_header(cell))
        if hit is not None:
            found.setdefault(hit[1], []).append((hit[0], i))
    return {canonical: tuple(i for _, i in sorted(hits)) for canonical, hits in found.items()}


# Columns two headers may both give: the first non-blank wins (调整后预算数 blank: 年初预算数). Any other
# column given twice (`unit_code` and `单位编码`, `1-5月执行数` and `1-8月执行数`) is a mistake.
FALLBACK_COLUMNS = frozenset({"budget"})


def duplicate_columns(
    columns: dict[str, tuple[int, ...]], headers: Sequence[object]
) -> list[tuple[str, int, int]]:
    """(canonical column, first index, second index) of each column the header row gives twice: two
    headers for it, or (for a fallback column) the same header twice."""
    found = []
    for canonical, indexes in columns.items():
        if len(indexes) < 2:
            continue
        if canonical not in FALLBACK_COLUMNS:
            first, second = sorted(indexes)[:2]
            found.append((canonical, first, second))
            continue
        seen: dict[str, int] = {}
        for i in sorted(indexes):
            key = normalize_header(headers[i])
            if key in seen:
                found.append((canonical, seen[key], i))
                break
            seen[key] = i
    return found


def letter(index: int) -> str:
    """The column letter of a 0-based cell index (0 -> A), as Excel shows it."""
    return str(get_column_letter(index + 1))


def kind_from_name(name: str | None) -> str | None:
    """The kind a sheet or file name announces (项目 -> projects, indicator_reports.csv -> ...)."""
    if not name:
        return None
    key = normalize_header(name).replace("-", "_").replace(" ", "_")
    if key in _SHEET_INDEX:
        return _SHEET_INDEX[key]
    for kind in PRIORITY:  # e.g. "2025-05_indicator_reports": the longest English name first
        if kind in key:
            return kind
    return None


@dataclass(frozen=True)
class Detection:
    """What a header row holds: the kind (None if unknown), its column map, and what is missing."""

    kind: str | None
    columns: dict[str, tuple[int, ...]]
    missing: tuple[str, ...] = ()


def detect_kind(headers: Sequence[object], name: str | None = None) -> Detection:
    """Decide the kind of a table from its headers, using the sheet/file `name` to break ties.

    A kind is a candidate when all its required columns are present; the named kind wins among the
    candidates, else the most specific one. With no candidate, the named kind (or a clear best
    partial match) is returned with the required columns it lacks; otherwise the kind is unknown.
    """
    maps = {kind: map_headers(kind, headers) for kind in ALIASES}
    missing = {kind: tuple(c for c in REQUIRED[kind] if c not in maps[kind]) for kind in ALIASES}
    complete = [kind for kind in PRIORITY if not missing[kind]]
    named = kind_from_name(name)
    if complete:
        kind = named if named in complete else complete[0]
        return Detection(kind, maps[kind])
    if named is not None:
        return Detection(named, maps[named], missing[named])

    def score(kind: str) -> tuple[int, float]:
        if kind in _OWN_COLUMNS and not _OWN_COLUMNS[kind] & maps[kind].keys():
            return 0, 0.0
        found = len(REQUIRED[kind]) - len(missing[kind])
        return found, found / len(REQUIRED[kind])

    ranked = sorted(PRIORITY, key=score, reverse=True)
    best, second = ranked[0], ranked[1]
    if score(best)[0] >= 2 and score(best) != score(second):
        return Detection(best, maps[best], missing[best])
    return Detection(None, {})


def aliases_of(kind: str, canonical: str) -> tuple[str, ...]:
    return ALIASES[kind][canonical]


HEADER_SEARCH_ROWS = 10
Rows = Iterator[tuple[int, Sequence[object]]]  # (row number as Excel shows it, cells)


@dataclass(frozen=True)
class HeaderRow:
    """The header of a table: its row number, its cells, and whether it has ≥ 3 known headers (if not,
    `cells` is just the first non-blank row, shown to the user)."""

    number: int
    cells: list[object]
    known: bool


def _non_blank(cells: Sequence[object]) -> bool:
    return any(c is not None and str(c).strip() for c in cells)


def locate_header(rows: Rows) -> tuple[HeaderRow | None, Rows]:
    """The header row and the rows after it. The header is the first of the first ten rows with
    ≥ 3 known headers (title rows above it are skipped). A header split over two rows
    (`预算执行情况` above `1-5月执行数`) is read as one, if together they name more columns than
    either alone. None for an empty table."""
    head = list(islice(rows, HEADER_SEARCH_ROWS + 1))
    for i, (number, cells) in enumerate(head[:HEADER_SEARCH_ROWS]):
        known = count_known_headers(cells)
        if known and i + 1 < len(head):
            below = head[i + 1][1]
            combined = _two_row_header(cells, below)
            if combined and count_known_headers(combined) > max(known, count_known_headers(below), 2):
                return HeaderRow(number, combined, True), chain(head[i + 2 :], rows)
        if known >= 3:
            return HeaderRow(number, list(cells), True), chain(head[i + 1 :], rows)
    first = next((i for i, (_, c) in enumerate(head) if _non_blank(c)), None)
    if first is None:
        return None, rows
    return HeaderRow(head[first][0], list(head[first][1]), False), chain(head[first + 1 :], rows)


def _two_row_header(upper: Sequence[object], lower: Sequence[object]) -> list[object] | None:
    """The upper row with the known headers of the lower one where the upper has none."""
    width = max(len(upper), len(lower))
    up = [*upper, *[None] * (width - len(upper))]
    new = {i for i, c in enumerate(lower) if is_known_header(c) and not is_known_header(up[i])}
    return [lower[i] if i in new else up[i] for i in range(width)] if new else None


def alias_table_markdown() -> str:
    """The alias table as Markdown, one row per kind and column, for the README."""
    lines = [
        "| kind | column | required | accepted headers |",
        "|---|---|---|---|",
    ]
    for kind, columns in ALIASES.items():
        for canonical, aliases in columns.items():
            required = "yes" if canonical in REQUIRED[kind] else ""
            shown = ", ".join(f"`{a}`" for a in (canonical, *aliases))
            lines.append(f"| {kind} | `{canonical}` | {required} | {shown} |")
    note = (
        "\nHeaders match ignoring surrounding spaces, full-width/half-width differences, case and a "
        "trailing `（万元）`; `1-X月` stands for any month, with any dash (`1-5月`, `1—8月`, `1至5月`)."
    )
    return "\n".join(lines) + "\n" + note + "\n"


# --- files as tables of rows ---------------------------------------------------------------------

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


class Unreadable(ValueError):
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
        return v.canonical_decimal(v.to_decimal(value) * 100) + "%"
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
    return [] if wide and all(i in wide for i, c in enumerate(row) if not v.is_blank(c)) else row

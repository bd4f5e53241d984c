"""Tables as canonical columns. ALIASES is the one table of Chinese headers accepted for each input
kind's columns (data: also rendered into the README). In: a table's rows (ingest.files). Out: its
header row (title rows above it skipped, a header over two rows joined), its kind, and a canonical
column -> cell indexes map, with the required columns it lacks and the columns given twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice

from openpyxl.utils import get_column_letter

from monitor.ingest import exchange_fields

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
KINDS = tuple(
    k for k in ALIASES if k not in SIDE_KINDS
)  # the data import's, in the order read: parents first
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
_ALL_HEADERS = frozenset(h for table in _INDEX.values() for h in table) | {
    normalize_header(h)
    for h in exchange_fields.HEADERS  # the exchange table's (ingest.exchange)
}
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

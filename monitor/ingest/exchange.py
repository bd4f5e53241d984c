"""Reading the exchange table (domain.md §7: one row per indicator, the project's and unit's columns
repeated on each row; fields in ingest.exchange_fields). In: a located header row. Out: one `Source`
per canonical kind over the same rows (`derive`), read by the canonical parsers (ingest.rows) through
`distinct`, which keeps one record per unit, project, indicator and project report and refuses a row
whose repeated values disagree with an earlier row (ingest.exchange_problems says what a row lacks).

A row gives a new unit when it has an e-mail (联系邮箱), a new or updated project when it has its budget
(全年预算数), an indicator when it has its target (年度指标值), a project report when it has 1-X月执行数
(or 全年预计执行数), and an indicator report when it has any of the indicator's report cells (a row
whose report cells are all blank reports nothing: 未填报). The checkpoint of each row is its 监控期
column (2025-05): the table must have one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Final

from monitor.core.cells import cell_text, is_blank
from monitor.core.model import wan
from monitor.ingest import columns as cols
from monitor.ingest.columns import KINDS
from monitor.ingest.exchange_fields import FIELDS, LABELS, SIGNATURE
from monitor.ingest.problems import Problem, Source
from monitor.ingest.rows import Record, Row

INDEX = {cols.normalize_header(t): field for field, label, _ in FIELDS for t in (field, label)}
_GIVES = {field: gives for field, _, gives in FIELDS}
REQUIRED = (*SIGNATURE, "pro_name", "lv1_perf_ind_name", "lv2_perf_ind_name", "lv3_perf_ind_name",
            "kpi_val", "checkpoint")  # fmt: skip
_NO_CHECKPOINT = (
    "the exchange table gives the checkpoint of each row in a column 监控期 (e.g. 2025-05); add it"
    "（交换表须有“监控期”列，如 2025-05）"
)
# The column whose blank cell means "this row gives no record of the kind" (a reference only).
_TRIGGER = {
    "units": ("email",),
    "projects": ("budget",),
    "indicators": ("target",),
    "project_reports": ("executed", "forecast_executed"),
    "indicator_reports": ("actual", "forecast", "possibility", "causes", "cause_text", "measures"),
}
# The columns of each kind's record (ingest.rows), in order: which one two rows disagree on.
_RECORD_COLUMNS = {
    "units": ("unit_code", "unit_name", "email", "supervisor_code"),
    "projects": (
        "project_code",
        "project_name",
        "unit_code",
        "budget",
        "carryover",
        "fund_flag",
        "category",
        "profile",
    ),
    "indicators": (
        "project_code",
        "indicator_code",
        "level1",
        "level2",
        "name",
        "direction",
        "target",
        "measure_unit",
        "kind",
        "profile",
    ),
    "project_reports": ("checkpoint", "project_code", "executed", "forecast_executed"),
}
_AMOUNTS = frozenset({"budget", "carryover", "executed", "forecast_executed"})


def field_indexes(cells: Sequence[object]) -> dict[str, list[int]]:
    """Exchange field -> the indexes of the header cells naming it (by field name or label)."""
    found: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        field = INDEX.get(cols.normalize_header(cell))
        if field is not None:
            found.setdefault(field, []).append(i)
    return found


def is_exchange(cells: Sequence[object]) -> bool:
    """Whether a header row is an exchange table's: it names the unit, project and indicator code."""
    return all(f in field_indexes(cells) for f in SIGNATURE)


def derive(
    file: str, sheet: str | None, number: int, cells: Sequence[object], out: list[Problem]
) -> list[Source]:
    """One source per canonical kind over the exchange table's columns; none, with the problems, when the
    header lacks a required field or gives one twice."""
    found = field_indexes(cells)
    headers = tuple(cell_text(c) for c in cells)
    whole = Source(file, sheet, "exchange", {}, headers)
    problems = [
        whole.problem(number, field, None, _NO_CHECKPOINT if field == "checkpoint" else (
            f"missing required column of the exchange table; accepted headers: {field}/{LABELS[field]}"
            "（交换表缺少必填列）"))
        for field in REQUIRED if field not in found
    ]  # fmt: skip
    for field, at in found.items():
        if len(at) > 1:
            a, b = headers[at[0]], headers[at[1]]
            message = (f"columns {cols.letter(at[0])} and {cols.letter(at[1])} both give {field}: {a!r} and "
                       f"{b!r}; keep one（同一列出现两次：{a} 与 {b}，请删除其一）")  # fmt: skip
            problems.append(whole.problem(number, field, None, message, at[0]))
    out += problems
    if problems:
        return []
    sources = []
    for kind in KINDS:
        columns: dict[str, tuple[int, ...]]
        columns = {gives[kind]: (at[0],) for field, at in found.items() if kind in (gives := _GIVES[field])}
        sources.append(Source(file, sheet, kind, columns, headers))
    return sources


class _Skip:
    """A row that gives no record of this kind: a reference only, or a repetition of an earlier row."""


SKIP: Final = _Skip()
Build = Callable[[Row], tuple[Record | None, Hashable]]


def distinct(kind: str, build: Build) -> Callable[[Row], tuple[Record | _Skip | None, Hashable]]:
    """`build` (ingest.rows) for the exchange table: SKIP for a row that gives no record of `kind`, or
    repeats one an earlier row gave; a problem naming both rows when the repeated values disagree."""
    trigger, names = _TRIGGER[kind], _RECORD_COLUMNS.get(kind)
    seen: dict[Hashable, tuple[Record, int]] = {}

    def read(r: Row) -> tuple[Record | _Skip | None, Hashable]:
        if all(is_blank(r.raw(column)) for column in trigger):
            return SKIP, None
        record, key = build(r)
        if record is None or names is None:
            return record, key
        earlier = seen.setdefault(key, (record, r.number))
        if earlier[0] == record:
            return (record if earlier[1] == r.number else SKIP), key
        column, before = next((c, a) for c, a, b in zip(names, earlier[0], record, strict=True) if a != b)
        shown = wan(before).replace(",", "") if column in _AMOUNTS and isinstance(before, int) else before
        header = r.source.headers[r.source.columns[column][0]] if column in r.source.columns else column
        r.fail(column, r.raw(column), (
            f"differs from row {earlier[1]}, which gives {shown!r}: the values of one {kind[:-1]} must agree "
            f"on all its rows（与第{earlier[1]}行的“{header}”不一致）"))  # fmt: skip
        return None, key

    return read

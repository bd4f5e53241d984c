"""The import stage: CSV/XLSX files in, every row validated and upserted in one transaction out.
Tables are located by their header row (kinds told by headers) and read parents first: units,
projects, indicators, then reports. Each row is parsed, checked against compact sets of the keys
read so far and those in the database, and written into the open transaction; any problem rolls it
all back. Every problem names file, sheet, row, column and value, and all are reported at once.
"""

from __future__ import annotations

import csv
import ctypes
import datetime as dt
import gc
import multiprocessing
import operator
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from monitor.core import safe
from monitor.core import values as v
from monitor.core.model import Direction, Indicator, IndicatorReport, Kind, Project, ProjectReport, Unit, wan
from monitor.db import store
from monitor.db.store import Batch, KnownCodes, create_schema
from monitor.ingest import columns as cols
from monitor.ingest.columns import Rows

T = TypeVar("T")
KINDS = tuple(k for k in cols.ALIASES if k not in cols.SIDE_KINDS)  # the order they are read: parents first
Record = tuple[Any, ...]  # one row as stored: the values of its table's columns, in order


@dataclass(frozen=True)
class Problem:
    """One bad input: where it is (file, sheet, 1-based row as Excel shows it, canonical column and
    the header as written) and what is wrong with the value."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    sheet: str | None = None
    header: str | None = None

    def __str__(self) -> str:
        text = self.file + (f"[{self.sheet}]" if self.sheet else "")
        text += f":row {self.row}" if self.row is not None else ""
        if self.column:
            text += f": {self.column}" + (
                f" ({self.header})" if self.header not in (None, self.column) else ""
            )
        return text + f": {self.message}" + (f" (got {self.value!r})" if self.value is not None else "")


class ImportFailed(Exception):
    """The import was refused; `problems` lists every problem found, and nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[:50]] + (
            [f"… and {len(problems) - 50} more"] if len(problems) > 50 else []
        )
        super().__init__(
            f"{len(problems)} problem(s), nothing imported（导入失败，未写入任何数据）:\n" + "\n".join(lines)
        )


SHOWN_PROBLEMS = 50  # problems printed on the terminal; all of them go to a file beyond that


def problem_report(problems: Sequence[Problem], errors: Path | None = None) -> list[str]:
    """The lines to print for a refused import: the first SHOWN_PROBLEMS problems, the count of problems
    per column, and the file that holds them all: `errors` if given, else (when some are not shown)
    a new file in the temporary folder."""
    lines = [str(p) for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"… and {len(problems) - SHOWN_PROBLEMS} more")
        per_column = Counter(p.column or "(file)" for p in problems)
        lines.append("problems per column: " + ", ".join(f"{c}: {n}" for c, n in per_column.most_common()))
    if errors is not None or len(problems) > SHOWN_PROBLEMS:
        try:
            if errors is None:
                fd, name = tempfile.mkstemp(prefix="monitor-import-errors-", suffix=".txt")
                os.close(fd)
                errors = Path(name)
            with errors.open("w", encoding="utf-8") as f:
                f.writelines(f"{p}\n" for p in problems)
            lines.append(f"all problems: {errors}")
        except OSError as exc:
            lines.append(f"could not write the list of all problems: {exc}")
    lines.append(f"{len(problems)} problem(s); nothing was imported.")
    return lines


@dataclass(frozen=True)
class Source:
    """A table read from a file or sheet: its kind, and its header cells as written."""

    file: str
    sheet: str | None
    kind: str
    columns: dict[str, tuple[int, ...]]  # canonical column -> header indexes, best first
    headers: tuple[str, ...]  # header text by index

    def problem(
        self, row: int | None, column: str | None, value: object, message: str, index: int = -1
    ) -> Problem:
        if index < 0 and column in self.columns:
            index = self.columns[column][0]
        header = self.headers[index] if 0 <= index < len(self.headers) else None
        shown = None if v.is_blank(value) else v.cell_text(value)[:200]
        return Problem(self.file, row, column, shown, message, self.sheet, header)

    def where(self, row: int) -> str:
        return self.file + (f"[{self.sheet}]" if self.sheet else "") + f":row {row}"


@dataclass
class SourcedBatch(Batch):
    """A Batch that remembers where each record came from, and which keys or kinds could not be read
    (so that references to them are not reported a second time as unknown)."""

    origins: dict[str, list[tuple[Source, int]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unreadable: dict[str, set[Hashable]] = field(default_factory=lambda: {k: set() for k in KINDS})
    incomplete: set[str] = field(default_factory=set)


# --- one row of each kind, any cell type (the reference; problems recorded, not raised) -------------


class _Row:
    """The current row of a table, read column by column; problems are recorded, not raised."""

    def __init__(self, source: Source, problems: list[Problem]) -> None:
        self.source, self.problems = source, problems
        self.number, self.ok = 0, True
        self.cells: Sequence[object] = ()
        self.used: dict[str, int] = {}  # column -> index the value came from (for the header shown)
        self.values: dict[str, object] = {}  # column -> parsed value (references of a failed row)

    def load(self, number: int, cells: Sequence[object]) -> None:
        self.number, self.cells, self.ok = number, cells, True
        self.values = {}

    def raw(self, column: str) -> object:
        indexes = self.source.columns.get(column, ())
        if len(indexes) == 1:  # the usual case; a problem then shows the one header
            return self.cells[indexes[0]] if indexes[0] < len(self.cells) else None
        for i in indexes:
            if i < len(self.cells) and not v.is_blank(self.cells[i]):
                self.used[column] = i
                return self.cells[i]
        self.used[column] = indexes[0] if indexes else -1
        return None

    def get(self, column: str, parse: Callable[[object], T], required: bool = True) -> T | None:
        return self.parse(column, self.raw(column), parse, required)

    def parse(
        self, column: str, value: object, parse: Callable[[object], T], required: bool = True
    ) -> T | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(column, None, "a value is required（不能为空）")
            return None
        if type(value) is cols.ExcelError:
            self.fail(column, value, _EXCEL_ERROR)
            return None
        try:
            parsed = parse(value)
        except ValueError as exc:
            self.fail(column, value, str(exc))
            return None
        self.values[column] = parsed
        return parsed

    def fail(self, column: str, value: object, message: str) -> None:
        self.ok = False
        index = self.used.get(column, -1)
        self.problems.append(self.source.problem(self.number, column, value, message, index))


_unit_code = partial(safe.parse_code, max_length=32)  # a code is also a file name: see monitor.core.safe
_project_code = partial(safe.parse_code, max_length=21)
_budget = partial(v.parse_amount, positive=True)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^-?\d+(?:\.\d+)?$")


def _unit(r: _Row) -> tuple[Record | None, Hashable]:
    code, name = r.get("unit_code", _unit_code), r.get("unit_name", v.parse_text)
    emails = r.get("email", v.parse_emails)
    supervisor = r.get("supervisor_code", _unit_code, required=False)
    if not r.ok or code is None or name is None or emails is None:
        return None, code
    return (code, name, ";".join(emails), supervisor), code


def _project(r: _Row) -> tuple[Record | None, Hashable]:
    code, name = r.get("project_code", _project_code), r.get("project_name", v.parse_text)
    unit, budget = r.get("unit_code", _unit_code), r.get("budget", _budget)
    carryover = r.get("carryover", v.parse_amount, required=False) or 0
    fund_flag = r.get("fund_flag", v.parse_fund_flag, required=False)
    category = r.get("category", v.parse_text, required=False) or None
    profile = r.get("profile", v.parse_text, required=False) or None
    if not r.ok or code is None or name is None or unit is None or budget is None:
        return None, code
    return (code, name, unit, budget, carryover, fund_flag, category, profile), code


_REQUIRED = "a value is required（不能为空）"
_EXCEL_ERROR = (
    "is an Excel error value; a value is expected: correct the formula or type the value（单元格为错误值）"
)
Failure = tuple[str, object, str]  # column, value, message


def _cell(parse: Callable[[object], T], value: object) -> tuple[T | None, str | None]:
    """A required cell parsed, or the message saying why it is not."""
    if v.is_blank(value):
        return None, _REQUIRED
    if type(value) is cols.ExcelError:
        return None, _EXCEL_ERROR
    try:
        return parse(value), None
    except ValueError as exc:
        return None, str(exc)


def _direction_and_target(
    raw_direction: object, raw_target: object, name: str, unit: str, kind: Kind | None
) -> tuple[Direction | None, str | None, list[Failure]]:
    """The direction, also when written in front of the target (`≥90%`), and the canonical target,
    with what is wrong with either."""
    failures: list[Failure] = []
    written, rest = v.split_direction(raw_target) if isinstance(raw_target, str) else (None, raw_target)
    direction: Direction | None = written
    if not (written and v.is_blank(raw_direction)):
        direction, message = _cell(v.parse_direction, raw_direction)
        if message:
            failures.append(("direction", None if message is _REQUIRED else raw_direction, message))
    if direction is Direction.QUALITATIVE:
        rest = raw_target
    elif written is not None and direction is not None and written is not direction:
        message = f"says {written} but the direction is {direction}（指标值的符号与指标方向不一致）"
        return direction, None, [*failures, ("target", raw_target, message)]
    target, message = _cell(lambda x: v.parse_target(x, direction, unit), rest)
    if message:
        failures.append(("target", None if message is _REQUIRED else rest, message))
    problem = target and _target_problem(target, name, direction, kind)
    if problem:
        failures.append(("target", raw_target, problem))
    return direction, target, failures


_MILESTONE_NAME = re.compile(r"(时间|日期|时限)$")
_DUE = (Direction.LE, Direction.LT, Direction.EQ)


def _target_problem(target: str, name: str, direction: Direction | None, kind: Kind | None) -> str | None:
    """What is wrong with a target for its indicator's kind, or for a milestone-looking name
    (项目开工时间 ≤ 6月底 would otherwise pass as a qualitative target)."""
    is_date, is_number = bool(_ISO_DATE.match(target)), bool(_DECIMAL.match(target))
    if kind is Kind.MILESTONE and not is_date:
        return "a milestone target must be a date such as 2025-06-30（时间节点指标值须为日期）"
    if kind in (Kind.CUMULATIVE, Kind.LEVEL) and not is_number:
        return f"a {kind} indicator needs a numeric target（该类型指标值须为数字）"
    looks_milestone = direction in _DUE and _MILESTONE_NAME.search(name)
    if kind is None and looks_milestone and not (is_date or is_number):
        return "a due date must be written as a date such as 2025-06-30（完成时间须写为日期，如 2025-06-30）"
    return None


def _depends_on_name(target: str, direction: Direction | None, kind: Kind | None) -> bool:
    """Whether `_target_problem` looks at the indicator's name for this target (see there)."""
    return kind is None and direction in _DUE and not (_ISO_DATE.match(target) or _DECIMAL.match(target))


def _indicator(r: _Row) -> tuple[Record | None, Hashable]:
    project, code = r.get("project_code", _project_code), r.get("indicator_code", _unit_code)
    level1, level2 = r.get("level1", v.parse_text), r.get("level2", v.parse_text)
    name = r.get("name", v.parse_text)
    unit = r.get("measure_unit", v.parse_text, required=False) or ""
    kind = r.get("kind", v.parse_kind, required=False)
    profile = r.get("profile", v.parse_text, required=False) or None
    raw_direction, raw_target = r.raw("direction"), r.raw("target")
    direction, target, failures = _direction_and_target(raw_direction, raw_target, name or "", unit, kind)
    for column, value, message in failures:
        r.fail(column, value, message)
    if not (r.ok and project and code and level1 and level2 and name and direction and target):
        return None, (project, code)
    record = (
        project,
        code,
        level1,
        level2,
        name,
        direction.value,
        target,
        unit,
        kind and kind.value,
        profile,
    )
    return record, (project, code)


def _project_report(r: _Row) -> tuple[Record | None, Hashable]:
    checkpoint, project = r.get("checkpoint", v.parse_checkpoint), r.get("project_code", _project_code)
    executed = r.get("executed", v.parse_amount)
    forecast = r.get("forecast_executed", v.parse_amount, required=False)
    if not r.ok or checkpoint is None or project is None or executed is None:
        return None, (checkpoint, project)
    return (checkpoint, project, executed, forecast), (checkpoint, project)


def _indicator_report(r: _Row) -> tuple[Record | None, Hashable]:
    checkpoint, project = r.get("checkpoint", v.parse_checkpoint), r.get("project_code", _project_code)
    code, actual = r.get("indicator_code", _unit_code), r.get("actual", v.parse_actual, required=False)
    forecast = r.get("forecast", v.parse_actual, required=False)
    possibility = r.get("possibility", v.parse_possibility, required=False)
    causes = r.get("causes", v.parse_causes, required=False)
    cause_text = r.get("cause_text", v.parse_free_text, required=False) or None
    measures = r.get("measures", v.parse_free_text, required=False) or None
    if not r.ok or checkpoint is None or project is None or code is None:
        return None, (checkpoint, project, code)
    record = (checkpoint, project, code, actual, forecast, possibility, causes, cause_text, measures)
    return record, (checkpoint, project, code)


_BUILDERS: dict[str, Callable[[_Row], tuple[Record | None, Hashable]]] = {
    "units": _unit,
    "projects": _project,
    "indicators": _indicator,
    "project_reports": _project_report,
    "indicator_reports": _indicator_report,
}
_KEY_COLUMNS = {"units": 1, "projects": 1, "indicators": 2, "project_reports": 2, "indicator_reports": 3}


# --- the same for CSV text, fast: parsed values remembered by cell text ----------------------------
# A CSV cell is text and every parser above is a pure function of it, so a value seen before (a
# checkpoint, an indicator code, `≥`, `100`, an empty cell) is looked up instead of parsed again.
# A row's values are looked up in one `map` over the memos; a text not seen yet is parsed then. A row
# that does not parse goes to the reference path above, which parses it again and says what is wrong.

_MEMO_SIZE = 100_000  # texts per column; emptied when full (codes of a million projects would not fit)
_CHUNK = 10_000  # records written (and checked) at a time


class _NeedsName(ValueError):
    """The target's check looks at the indicator's name (see _target_problem): not remembered."""


class _Memo(dict[Any, Any]):
    """Parsed values by cell text: a text not seen yet is parsed (ValueError if it cannot be) and kept."""

    def __init__(self, parse: Callable[[Any], Any]) -> None:
        super().__init__()
        self.parse = parse

    def __missing__(self, text: Any) -> Any:
        value = self.parse(text)
        if len(self) >= _MEMO_SIZE:
            self.clear()
        self[text] = value
        return value


def _required(parse: Callable[[str], T]) -> Callable[[str], T]:
    def cell(text: str) -> T:
        if not text.strip():
            raise ValueError(_REQUIRED)
        return parse(text)

    return cell


def _optional(parse: Callable[[str], T], blank: Any = None) -> Callable[[str], T | Any]:
    return lambda text: parse(text) if text.strip() else blank


def _kind_value(text: str) -> str | None:
    kind = v.parse_kind(text)
    return kind.value if kind else None


def _tail(texts: Sequence[str], name: str | None) -> Record:
    """An indicator's (direction, target, measure unit, kind, profile) from their texts; with
    `name` None, _NeedsName where the target's check would look at the name."""
    direction, target, unit, kind, profile = texts
    u, k, pro = _PARSE["measure_unit"](unit), _PARSE["kind"](kind), _PARSE["profile"](profile)
    d, t, failures = _direction_and_target(direction, target, name or "", u, Kind(k) if k else None)
    if failures or d is None or t is None:
        raise ValueError(failures[0][2] if failures else _REQUIRED)
    if name is None and _depends_on_name(t, d, Kind(k) if k else None):
        raise _NeedsName(t)
    return (d.value, t, u, k, pro)


# column -> how its text is parsed, as the reference path does (blank: a problem, or the blank value)
_PARSE: dict[str, Callable[[str], Any]] = {
    "unit_code": _required(_unit_code),
    "unit_name": _required(v.parse_text),
    "email": _required(lambda text: ";".join(v.parse_emails(text))),
    "supervisor_code": _optional(_unit_code),
    "project_code": _required(_project_code),
    "project_name": _required(v.parse_text),
    "budget": _required(_budget),
    "carryover": _optional(v.parse_amount, 0),
    "fund_flag": _optional(v.parse_fund_flag),
    "category": _optional(v.parse_text),
    "profile": _optional(v.parse_text),
    "indicator_code": _required(_unit_code),
    "level1": _required(v.parse_text),
    "level2": _required(v.parse_text),
    "name": _required(v.parse_text),
    "measure_unit": _optional(v.parse_text, ""),
    "kind": _optional(_kind_value),
    "checkpoint": _required(v.parse_checkpoint),
    "executed": _required(v.parse_amount),
    "forecast_executed": _optional(v.parse_amount),
    "actual": _optional(v.parse_actual),
    "forecast": _optional(v.parse_actual),
    "possibility": _optional(v.parse_possibility),
    "causes": _optional(v.parse_causes),
    "cause_text": _optional(v.parse_free_text),
    "measures": _optional(v.parse_free_text),
}
_SHARED = {"forecast": "actual", "measures": "cause_text"}  # same parser, one memo
_UNIQUE = frozenset(
    {"unit_name", "email", "project_name", "budget", "carryover", "executed", "forecast_executed"}
)
_TAIL = ("direction", "target", "measure_unit", "kind", "profile")  # an indicator's, parsed together
Memos = dict[str, _Memo]


def _memo(memos: Memos, column: str) -> Any:
    if column in _UNIQUE:
        return _direct(_PARSE[column])
    name = _SHARED.get(column, column)
    if name not in memos:
        memos[name] = _Memo(_PARSE[name])
    return memos[name]


def _direct(parse: Callable[[str], Any]) -> Any:
    """Stands in for a memo where texts rarely repeat (names, amounts): `[text]` parses every time,
    calling `parse` directly (a staticmethod __getitem__: no frame in between)."""
    return type("Direct", (), {"__getitem__": staticmethod(parse), "__slots__": ()})()


def _csv_parser(
    kind: str, source: Source, width: int, memos: Memos
) -> Callable[[Sequence[str]], Record] | None:
    """A function from the cells of a CSV row (`width` of them) to its record, raising ValueError
    where the reference path must look (None: the reference path reads every row). `memos`: the
    import's, shared by its tables."""
    index, extra = {}, 0
    for column in cols.ALIASES[kind]:
        if column in source.columns:
            index[column] = source.columns[column][0]
        else:  # an absent optional column reads as an empty cell appended to the row
            index[column] = width + extra
            extra += 1
    head = [c for c in cols.ALIASES[kind] if kind != "indicators" or c not in _TAIL]
    dicts = [_memo(memos, c) for c in head]
    at = [index[c] for c in head]
    pick = operator.itemgetter(*at)
    getitem = operator.getitem
    parse: Callable[[Sequence[str]], Record]
    if kind == "indicators":
        tails = memos.setdefault("tail", _Memo(lambda texts: _tail(texts, None)))
        pick_tail, pick_name = (
            operator.itemgetter(*(index[c] for c in _TAIL)),
            operator.itemgetter(index["name"]),
        )

        def parse(cells: Sequence[str]) -> Record:
            head = tuple(map(getitem, dicts, pick(cells)))
            try:
                tail: Record = tails[pick_tail(cells)]
            except _NeedsName:
                tail = _tail(pick_tail(cells), pick_name(cells))
            return head + tail

    elif at == list(range(len(at))):  # the first cells, in order (as `monitor sample` writes them)
        parse = lambda cells: tuple(map(getitem, dicts, cells))  # noqa: E731
    else:
        parse = lambda cells: tuple(map(getitem, dicts, pick(cells)))  # noqa: E731
    if not extra:
        return parse
    pad = [""] * extra
    return lambda cells: parse([*cells, *pad])


_TOTALS = frozenset({"合计", "总计", "小计"})


# --- tables ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """A readable table: its file, which of the file's tables it is, its source and header cells."""

    path: Path
    position: int
    source: Source
    header: tuple[object, ...]


def _locate_table(
    path: Path, position: int, sheet: str | None, rows: Rows, out: list[Problem], incomplete: set[str]
) -> tuple[bool, _Table | None]:
    """Whether this is a table, and if its rows can be read, where. A sheet with no header row and no
    kind in its name is not a table (a note, a list): (False, None) without a problem."""
    file, name = str(path), sheet if sheet is not None else path.stem
    header, _ = cols.locate_header(rows)
    if sheet is not None and (header is None or not header.known) and cols.kind_from_name(name) is None:
        return False, None
    if header is None:
        out.append(Problem(file, None, None, None, "the table is empty（表格为空）", sheet))
        incomplete.update(KINDS)
        return True, None
    found = cols.detect_kind(header.cells, name)
    source = Source(file, sheet, found.kind or "", found.columns, tuple(v.cell_text(c) for c in header.cells))
    if found.kind is None:
        seen = ", ".join(h for h in source.headers if h) or "(none)"
        message = (
            f"cannot tell which kind of data this is; headers seen: {seen}（无法识别表格类型，请检查表头）"
        )
        out.append(source.problem(header.number, None, None, message))
        incomplete.update(KINDS)
    elif found.missing or cols.duplicate_columns(found.columns, header.cells):
        for column in found.missing:
            accepted = "/".join((column, *cols.aliases_of(found.kind, column)))
            message = f"missing required column of {found.kind}; accepted headers: {accepted}（缺少必填列）"
            out.append(source.problem(header.number, column, None, message))
        for column, first, second in cols.duplicate_columns(found.columns, header.cells):
            a, b = source.headers[first], source.headers[second]
            message = (
                f"columns {cols.letter(first)} and {cols.letter(second)} both give {column}: {a!r} and "
                f"{b!r}; keep one（同一列出现两次：{a} 与 {b}，请删除其一）"
            )
            out.append(source.problem(header.number, column, None, message, first))
        incomplete.add(found.kind)
    else:
        return True, _Table(path, position, source, tuple(header.cells))
    return True, None


_READ_ERRORS = (OSError, ValueError, KeyError, csv.Error, zipfile.BadZipFile)


def _cannot_read(path: Path, exc: Exception) -> Problem:
    row = exc.row if isinstance(exc, cols.Unreadable) else None
    return Problem(str(path), row, None, None, f"cannot read this file: {exc}（文件无法读取）")


def _locate(paths: Sequence[Path], out: list[Problem], incomplete: set[str]) -> list[_Table]:
    """Every readable table of the files (folders: every .csv/.xlsx inside, sorted), parents' kinds
    first, in file order within a kind. Problems of whole files and tables go to `out`."""
    tables: list[_Table] = []
    for path in _files(paths, out):
        sheets, found = [], 0
        try:
            with closing(cols.read_tables(path)) as each:
                for position, (sheet, rows) in enumerate(each):
                    is_table, table = _locate_table(path, position, sheet, rows, out, incomplete)
                    found += is_table
                    sheets.append(sheet or "")
                    tables += [table] if table else []
        except _READ_ERRORS as exc:
            out.append(_cannot_read(path, exc))
            incomplete.update(KINDS)
            continue
        if not found:
            listed = ", ".join(sheets)
            message = f"no sheet has a header row of a known kind (sheets: {listed})（没有可识别的数据表）"
            out.append(Problem(str(path), None, None, None, message))
            incomplete.update(KINDS)
    return sorted(tables, key=lambda t: KINDS.index(t.source.kind) if t.source.kind in KINDS else len(KINDS))


def _files(paths: Sequence[Path], out: list[Problem]) -> list[Path]:
    """The files to read: files as given, folders' .csv/.xlsx files (recursively, sorted); no file twice."""
    found: dict[Path, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix.lower() in cols.SUFFIXES and p.is_file()
                            and not p.name.startswith(("~$", ".")))  # fmt: skip
            if not inside:
                out.append(
                    Problem(str(path), None, None, None, "no .csv or .xlsx file in this folder（文件夹为空）")
                )
            found.update((p.resolve(), p) for p in inside if p.resolve() not in found)
        elif not path.is_file():
            out.append(Problem(str(path), None, None, None, "no such file or folder（文件不存在）"))
        elif path.suffix.lower() not in cols.SUFFIXES:
            message = (
                "unsupported file type; save it as .xlsx or .csv（不支持的文件类型，请另存为 .xlsx 或 .csv）"
            )
            out.append(Problem(str(path), None, None, None, message))
        else:
            found.setdefault(path.resolve(), path)
    return list(found.values())


@contextmanager
def _data_rows(table: _Table) -> Iterator[Rows]:
    """The rows of a located table below its header (the file is opened again)."""
    with closing(cols.read_tables(table.path)) as each:
        for position, (_, rows) in enumerate(each):
            if position == table.position:
                yield cols.locate_header(rows)[1]
                return
    yield iter(())


def _skipped(cells: Sequence[object], key_cell: object, header_key: object) -> bool:
    """A blank line, the header repeated (page breaks in exports) or a 合计 (total) line."""
    if all(v.is_blank(c) for c in cells) or key_cell == header_key:
        return True
    return (v.is_blank(key_cell) or key_cell in _TOTALS) and any(v.cell_text(c) in _TOTALS for c in cells)


Chunk = tuple[list[int], list[Record]]  # row numbers as Excel shows them, and their records


Loose = tuple[str, Source, int, dict[str, object]]  # kind, table, row and the readable cells of a failed row
_REFERENCES = {
    "units": ("supervisor_code",),
    "projects": ("unit_code",),
    "indicators": ("project_code",),
    "project_reports": ("project_code",),
    "indicator_reports": ("project_code", "indicator_code"),
}


def _chunks(
    table: _Table,
    out: list[Problem],
    unreadable: set[Hashable],
    memos: Memos,
    loose: list[Loose] | None = None,
) -> Iterator[Chunk]:
    """The readable rows of `table`, _CHUNK at a time; the problems of the others go to `out`, their
    keys (as far as they could be read) to `unreadable`, and the references they hold that could be
    read to `loose` (checked all the same: one wrong cell must not hide an unknown code)."""
    source, width = table.source, len(table.header)
    fast = _csv_parser(source.kind, source, width, memos) if table.path.suffix.lower() == ".csv" else None
    fallbacks = [(ix[0], ix[1:]) for ix in source.columns.values() if len(ix) > 1]
    key = source.columns["project_code" if "project_code" in source.columns else "unit_code"][0]
    header_key, blank, totals = table.header[key], [""] * width, _TOTALS
    build, reference = _BUILDERS[source.kind], _Row(source, out)
    numbers: list[int] = []
    records: list[Record] = []
    with _data_rows(table) as rows:
        for number, cells in rows:
            if len(records) >= _CHUNK:
                yield numbers, records
                numbers, records = [], []
            if fast is not None:  # CSV: every cell is text
                text = cells if len(cells) == width and not fallbacks else _csv_cells(cells, blank, fallbacks)
                key_cell = text[key]
                if key_cell != header_key and key_cell not in totals:
                    try:
                        records.append(fast(text))  # type: ignore[arg-type]
                        numbers.append(number)
                        continue
                    except ValueError:
                        pass  # the reference path says why, from the cells as they are
            key_cell = cells[key] if key < len(cells) else None
            if _skipped(cells, key_cell, header_key):
                continue
            reference.load(number, cells)
            record, record_key = build(reference)
            if record is None:
                unreadable.add(record_key)
                if loose is not None:
                    refs = {c: reference.values[c] for c in _REFERENCES[source.kind] if c in reference.values}
                    if refs:
                        loose.append((source.kind, source, number, refs))
            else:
                records.append(record)
                numbers.append(number)
    if records:
        yield numbers, records


def _csv_cells(
    cells: Sequence[Any], blank: list[str], fallbacks: list[tuple[int, tuple[int, ...]]]
) -> list[Any]:
    """A CSV row cut or padded to the header's width (`blank`), a blank cell under the best alias
    filled from the next (调整后预算数 blank: 年初预算数)."""
    text = [*cells[: len(blank)], *blank[len(cells) :]]
    for first, others in fallbacks:
        if not text[first].strip():
            text[first] = next((text[i] for i in others if text[i].strip()), text[first])
    return text


# --- checks across rows ------------------------------------------------------------------------------

_UNKNOWN_UNIT = "unknown unit: not in this import nor in the database（单位编码不存在）"
_UNKNOWN_PROJECT = "unknown project: not in this import nor in the database（项目编码不存在）"
_UNKNOWN_INDICATOR = (
    "the project has no such indicator in this import nor in the database（该项目下无此指标）"
)
_SHIFT = 1 << 64  # budget and carry-over packed into one int: budget * _SHIFT + carry-over (both < 2**60)
Where = Source | str  # a table, or the kind of a batch built elsewhere (records are then numbered)


def _place(where: Where, row: int, column: str, value: object, message: str) -> Problem:
    if isinstance(where, Source):
        return where.problem(row, column, value, message)
    return Problem(f"<{where}>", row, column, v.cell_text(value), message)


def _where(where: Where, row: int) -> str:
    return where.where(row) if isinstance(where, Source) else f"<{where}> #{row}"


class _Project:
    """What the checks keep of one project: its budget and indicator codes, from this import and from
    the database (the codes' order gives each indicator a bit, see _Checker.indicator_reports)."""

    __slots__ = ("budget", "code", "codes", "db_budget")

    def __init__(self, code: str) -> None:
        self.code = code
        self.budget: int | None = None  # packed with the carry-over (see _SHIFT), if in this import
        self.db_budget: int | None = None
        self.codes: list[str] = []  # indicator codes in this import, then those only in the database

    def known(self) -> bool:
        return self.budget is not None or self.db_budget is not None


class _Checker:
    """Checks across rows, a chunk of records at a time, parents' kinds first: duplicate keys,
    references to unknown units, projects and indicators, and execution beyond the budget. It keeps
    keys only (a small object per project, a bit per indicator report), so memory grows with
    projects, not rows.

    A duplicate is found as it comes; where its first occurrence was is asked for at `finish`. The
    problems of references into a kind that could not be read completely are dropped there."""

    def __init__(
        self, out: list[Problem], unreadable: dict[str, set[Hashable]], incomplete: set[str]
    ) -> None:
        self.out, self.unreadable, self.incomplete = out, unreadable, incomplete
        self.units: set[str] = set()
        self.db_units: set[str] = set()
        self.projects: dict[str, _Project] = {}
        self.db_indicators: dict[str, list[str]] = {}  # project -> codes, until the import's are in
        self.reported: dict[str, set[str]] = {}  # checkpoint -> projects reported
        self.indicators_reported: dict[str, dict[str, int]] = {}  # checkpoint -> project -> bits of codes
        self.odd_reports: set[Hashable] = set()  # indicator reports of unknown indicators
        self.refs: list[tuple[tuple[str, ...], Problem]] = []  # (kinds that must be complete, problem)
        self.duplicates: dict[str, list[tuple[int, Hashable]]] = {k: [] for k in KINDS}  # index in out
        self.supervisors: list[tuple[str, Where, int]] = []
        self.unit_rows: dict[str, tuple[str, str | None, Where, int]] = {}  # code -> name, supervisor, place
        self.db_units_info: dict[str, tuple[str, str | None]] = {}  # code -> name, supervisor
        self.warnings: list[str] = []
        self.counts = dict.fromkeys(KINDS, 0)

    @property
    def failed(self) -> bool:
        return bool(self.out or self.refs)

    def know(
        self,
        units: Iterator[str],
        projects: Iterator[tuple[str, int, int]],
        indicators: Iterator[tuple[str, str]],
    ) -> None:
        """Take in the codes already in the database."""
        self.db_units.update(units)
        for code, budget, carryover in projects:
            self._entry(code).db_budget = budget * _SHIFT + carryover
        for project, code in indicators:
            self.db_indicators.setdefault(project, []).append(code)

    def check(self, kind: str, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        """Check `records` of `kind` (given after every record of the kinds before it), found at `rows`
        of `where`."""
        if kind == "indicator_reports":  # the import's indicators are all in
            self._all_indicators_in()
        self.counts[kind] += len(records)
        getattr(self, "_" + kind)(records, rows, where)

    def _all_indicators_in(self) -> None:
        for project, codes in self.db_indicators.items():
            p = self._entry(project)
            p.codes += [c for c in codes if c not in p.codes]
        self.db_indicators = {}

    def check_loose(self, loose: Sequence[Loose]) -> None:
        """The references of rows that failed (given after every readable record): unknown codes are
        problems too, unless what they refer to could not be read."""
        self._all_indicators_in()
        unreadable_projects = self.unreadable["projects"]
        for kind, where, row, refs in loose:
            if kind == "units":
                self.supervisors.append((str(refs["supervisor_code"]), where, row))
            elif kind == "projects":
                unit = str(refs["unit_code"])
                if not self._unit_known(unit):
                    self._unknown(("units",), where, row, "unit_code", unit, _UNKNOWN_UNIT)
                continue
            project = refs.get("project_code")
            if not isinstance(project, str) or project in unreadable_projects:
                continue
            p = self.projects.get(project)
            if p is None or not p.known():
                self._unknown(("projects",), where, row, "project_code", project, _UNKNOWN_PROJECT)
                continue
            code = refs.get("indicator_code")
            if (
                kind == "indicator_reports"
                and isinstance(code, str)
                and code not in p.codes
                and (project, code) not in self.unreadable["indicators"]
            ):
                self._unknown(("indicators",), where, row, "indicator_code", code, _UNKNOWN_INDICATOR)

    def _entry(self, code: str) -> _Project:
        p = self.projects.get(code)
        if p is None:
            p = self.projects[code] = _Project(code)
        return p

    def _duplicate(self, kind: str, key: Hashable, where: Where, row: int, column: str) -> None:
        shown = "/".join(key) if isinstance(key, tuple) else key
        self.duplicates[kind].append((len(self.out), key))
        self.out.append(_place(where, row, column, shown, "duplicate: already given at {}（重复）"))

    def _unknown(
        self, needs: tuple[str, ...], where: Where, row: int, column: str, value: str, message: str
    ) -> None:
        self.refs.append((needs, _place(where, row, column, value, message)))

    def _unit_known(self, code: str) -> bool:
        return code in self.units or code in self.db_units or code in self.unreadable["units"]

    def _units(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        for r, row in zip(records, rows, strict=True):
            if r[0] in self.units:
                self._duplicate("units", r[0], where, row, "unit_code")
            self.units.add(r[0])
            self.unit_rows.setdefault(r[0], (r[1], r[3], where, row))
            if r[3] is not None:  # checked at the end: a supervisor may come later
                self.supervisors.append((r[3], where, row))

    def _projects(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        for r, row in zip(records, rows, strict=True):
            p = self._entry(r[0])
            if p.budget is not None:
                self._duplicate("projects", r[0], where, row, "project_code")
            else:
                p.budget = r[3] * _SHIFT + r[4]
            if not self._unit_known(r[2]):
                self._unknown(("units",), where, row, "unit_code", r[2], _UNKNOWN_UNIT)

    def _indicators(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        projects, unreadable = self.projects, self.unreadable["projects"]
        for r, row in zip(records, rows, strict=True):
            p = projects.get(r[0])
            if p is None or not p.known():
                if r[0] not in unreadable:
                    self._unknown(("projects",), where, row, "project_code", r[0], _UNKNOWN_PROJECT)
                p = self._entry(r[0])
            codes = p.codes
            if r[1] in codes:
                self._duplicate("indicators", (r[0], r[1]), where, row, "indicator_code")
            else:
                codes.append(r[1])

    def _project_reports(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        for r, row in zip(records, rows, strict=True):
            checkpoint, code, executed = r[0], r[1], r[2]
            p = self.projects.get(code)
            reported = self.reported.setdefault(checkpoint, set())
            if code in reported:
                self._duplicate("project_reports", (checkpoint, code), where, row, "project_code")
            reported.add(p.code if p is not None else code)  # the project's own string: one copy of each
            if p is None or not p.known():
                if code not in self.unreadable["projects"]:
                    self._unknown(("projects",), where, row, "project_code", code, _UNKNOWN_PROJECT)
                continue
            budget, carryover = divmod(p.budget if p.budget is not None else p.db_budget or 0, _SHIFT)
            if executed > budget + carryover:
                message = (f"{wan(executed)} 万元 exceeds budget {wan(budget)} + carry-over "
                           f"{wan(carryover)} 万元（执行数超过预算数与上年结转之和）")  # fmt: skip
                self.refs.append(((), _place(where, row, "executed", wan(executed), message)))

    def _indicator_reports(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        """Each (checkpoint, project, indicator) once: a bit per indicator code of the project."""
        get_project, reported = self.projects.get, self.indicators_reported
        last, bits = None, {}
        for r, row in zip(records, rows, strict=True):
            checkpoint, project, code = r[0], r[1], r[2]
            p = get_project(project)
            if p is None:
                self._odd_report(p, (checkpoint, project, code), where, row)
                continue
            try:
                bit = 1 << p.codes.index(code)
            except ValueError:  # the project has no such indicator
                self._odd_report(p, (checkpoint, project, code), where, row)
                continue
            if checkpoint is not last:
                last, bits = checkpoint, reported.setdefault(checkpoint, {})
            name = p.code  # one string per project, shared
            seen = bits.get(name, 0)
            if seen & bit:
                self._duplicate(
                    "indicator_reports", (checkpoint, project, code), where, row, "indicator_code"
                )
            bits[name] = seen | bit

    def _odd_report(self, p: _Project | None, key: tuple[str, str, str], where: Where, row: int) -> None:
        """A report of an indicator not in the import nor in the database."""
        if key in self.odd_reports:
            self._duplicate("indicator_reports", key, where, row, "indicator_code")
        self.odd_reports.add(key)
        _, project, code = key
        if (project, code) in self.unreadable["indicators"]:
            return
        if (p is None or not p.known()) and project not in self.unreadable["projects"]:
            self._unknown(("indicators", "projects"), where, row, "project_code", project, _UNKNOWN_PROJECT)
        else:
            self._unknown(("indicators",), where, row, "indicator_code", code, _UNKNOWN_INDICATOR)

    def finish(self, first: Callable[[str, set[Hashable]], dict[Hashable, str]]) -> None:
        """Check the supervisors, say where each duplicated key was first given (`first(kind, keys)`:
        key -> place) and add the reference problems that stand."""
        self.refs[:0] = [
            (("units",), _place(where, row, "supervisor_code", code, _UNKNOWN_UNIT))
            for code, where, row in self.supervisors
            if not self._unit_known(code)
        ]
        self.supervisors = []
        self._cycles()
        self._renamed()
        for kind, found in self.duplicates.items():
            if found:
                places = first(kind, {key for _, key in found})
                for i, key in found:
                    self.out[i] = replace(
                        self.out[i], message=self.out[i].message.format(places.get(key, "?"))
                    )
        self.out += [p for needs, p in self.refs if not self.incomplete.intersection(needs)]

    def _cycles(self) -> None:
        """Units whose chain of supervising departments comes back to them: each cycle once, at the first
        of its units in this import."""
        above = {code: sup for code, (_, sup) in self.db_units_info.items()}
        above.update((code, sup) for code, (_, sup, _, _) in self.unit_rows.items())
        settled: set[str] = set()  # units whose chain was followed already
        for code in self.unit_rows:
            chain, at = [code], {code: 0}
            up = above.get(code)
            while up is not None and up not in settled and up not in at:
                at[up] = len(chain)
                chain.append(up)
                up = above.get(up)
            settled.update(chain)
            if up is None or up not in at:
                continue  # the chain ends, or joins one followed before
            cycle = chain[at[up] :]
            first = next((i for i, c in enumerate(cycle) if c in self.unit_rows), None)
            if first is None:
                continue  # a cycle the database held already, this import does not touch
            cycle = cycle[first:] + cycle[:first]
            _, sup, where, row = self.unit_rows[cycle[0]]
            shown = " → ".join([*cycle, cycle[0]])
            message = (
                f"the chain of supervising departments comes back to the unit: {shown}"
                f"（主管部门形成循环：{shown}）"
            )
            self.out.append(_place(where, row, "supervisor_code", sup, message))

    def _renamed(self) -> None:
        """A warning for each unit of this import named like a unit in the database that this import
        does not give: its code may have changed, which makes a second unit of the same name."""
        if not self.db_units_info:
            return
        by_name: dict[str, list[str]] = {}
        for code, (name, _) in self.db_units_info.items():
            if code not in self.unit_rows:
                by_name.setdefault(name, []).append(code)
        for code, (name, _, where, row) in self.unit_rows.items():
            old = by_name.get(name)
            if old and code not in self.db_units_info:
                self.warnings.append(
                    f"{_where(where, row)}: unit_code: new unit {code!r} has the name {name!r} of unit "
                    f"{', '.join(map(repr, sorted(old)))} already in the database; if its code changed, the "
                    "old unit stays as a second unit of that name（新单位与库中已有单位同名，若为编码变更，"
                    "旧单位仍保留）"
                )


def _key(kind: str, record: Record) -> Hashable:
    n = _KEY_COLUMNS[kind]
    return record[0] if n == 1 else record[:n]


# --- reading, validating, importing -------------------------------------------------------------------

_MODEL: dict[str, Callable[[Record], Any]] = {
    "units": lambda r: Unit(r[0], r[1], tuple(r[2].split(";")), r[3]),
    "projects": lambda r: Project(*r),
    "indicators": lambda r: Indicator(
        r[0], r[1], r[2], r[3], r[4], Direction(r[5]), r[6], r[7], Kind(r[8]) if r[8] else None, r[9]
    ),
    "project_reports": lambda r: ProjectReport(*r),
    "indicator_reports": lambda r: IndicatorReport(*r),
}


class _Reading:
    """The tables of one import and what reading them found: problems, unreadable keys, incomplete kinds."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.out: list[Problem] = []
        self.unreadable: dict[str, set[Hashable]] = {k: set() for k in KINDS}
        self.incomplete: set[str] = set()
        self.memos: Memos = {}
        tables = _locate(paths, self.out, self.incomplete)
        self.tables = [t for t in tables if t.source.kind in KINDS]
        self.responses = [t for t in tables if t.source.kind == "responses"]  # see import_responses
        self.failed_files: set[Path] = set()
        self.loose: list[Loose] = []

    def chunks(self, table: _Table, out: list[Problem] | None = None) -> Iterator[Chunk]:
        """The readable records of a table, a chunk at a time; a file that cannot be read is one problem."""
        try:
            yield from _chunks(
                table,
                self.out if out is None else out,
                self.unreadable[table.source.kind],
                self.memos,
                self.loose if out is None else None,
            )
        except _READ_ERRORS as exc:
            if out is None and table.path not in self.failed_files:
                self.failed_files.add(table.path)
                self.out.append(_cannot_read(table.path, exc))
                self.incomplete.update(KINDS)

    def first(self, kind: str, keys: set[Hashable]) -> dict[Hashable, str]:
        """Where each key was first given among the readable records of `kind` (read again)."""
        places: dict[Hashable, str] = {}
        for table in (t for t in self.tables if t.source.kind == kind):
            for numbers, records in self.chunks(table, out=[]):
                for number, record in zip(numbers, records, strict=True):
                    k = _key(kind, record)
                    if k in keys and k not in places:
                        places[k] = table.source.where(number)
        return places


def read_paths(paths: Sequence[Path]) -> tuple[SourcedBatch, list[Problem]]:
    """Parse every file (folders: every .csv/.xlsx inside, sorted) into a batch; returns it with the
    problems found in single values and tables. Checks across rows are `validate`'s."""
    reading = _Reading(paths)
    batch = SourcedBatch(unreadable=reading.unreadable, incomplete=reading.incomplete)
    for table in reading.tables:
        kind, model = table.source.kind, _MODEL[table.source.kind]
        for numbers, records in reading.chunks(table):
            getattr(batch, kind).extend(map(model, records))
            batch.origins[kind].extend((table.source, n) for n in numbers)
    return batch, reading.out


def validate(batch: Batch, known: KnownCodes) -> list[Problem]:
    """Cross-row checks of `batch` against itself and the codes already in the database: duplicate
    keys, references to unknown units, projects and indicators, and execution beyond the budget."""
    sourced = batch if isinstance(batch, SourcedBatch) else None
    out: list[Problem] = []
    checker = _Checker(
        out,
        sourced.unreadable if sourced else {k: set() for k in KINDS},
        sourced.incomplete if sourced else set(),
    )
    checker.know(
        iter(known.units),
        ((code, b, c) for code, (b, c) in known.projects.items()),
        iter(sorted(known.indicators)),
    )
    records = {kind: [store.RECORD[kind](x) for x in getattr(batch, kind)] for kind in KINDS}
    origins: dict[str, Sequence[tuple[Where, int]]] = {
        kind: sourced.origins[kind] if sourced else [(kind, i + 1) for i in range(len(records[kind]))]
        for kind in KINDS
    }
    for kind in KINDS:
        for where, group in groupby(range(len(records[kind])), key=lambda i: origins[kind][i][0]):
            at = list(group)
            checker.check(kind, [records[kind][i] for i in at], [origins[kind][i][1] for i in at], where)

    def first(kind: str, keys: set[Hashable]) -> dict[Hashable, str]:
        places: dict[Hashable, str] = {}
        for record, origin in zip(records[kind], origins[kind], strict=True):
            places.setdefault(_key(kind, record), _where(*origin))
        return {k: places[k] for k in keys if k in places}

    checker.finish(first)
    return out


def _know_database(conn: Connection, checker: _Checker, kinds: set[str]) -> None:
    """Load the database's codes the checks of `kinds` can refer to (nothing, for an empty database)."""
    children = {"indicators", "project_reports", "indicator_reports"}
    if "units" in kinds:
        query = select(store.UNIT.c.code, store.UNIT.c.name, store.UNIT.c.supervisor_code)
        checker.db_units_info = {r[0]: (r[1], r[2]) for r in conn.execute(query)}
    checker.know(
        store.known_unit_codes(conn) if kinds & {"units", "projects"} else iter(()),
        store.known_project_budgets(conn) if kinds & children else iter(()),
        store.known_indicator_codes(conn) if "indicator_reports" in kinds else iter(()),
    )


def import_paths(
    engine: Engine,
    paths: Sequence[Path],
    now: dt.datetime | None = None,
    warnings: list[str] | None = None,
) -> dict[str, int]:
    """Read, validate and write in ONE transaction; returns counts per kind, and adds to `warnings`
    what was imported but looks like a mistake (a unit named like one in the database under another
    code). Raises ImportFailed with ALL problems (sorted by file, sheet and row) and writes nothing.
    Units' answers to warning cases (kind `responses`, answered at `now`) are stored by
    monitor.ingest.responses in the same transaction.

    Rows are written as they are checked (parents first) while no problem has been found; any problem
    rolls the transaction back, so the database is exactly as before. Large inputs are read and
    checked in a forked process while this one writes (see _read_in_child)."""
    with _no_cycle_collection():
        reading = _Reading(paths)
        create_schema(engine)
        with store.import_transaction(engine, check_at_end=store.is_empty(engine)) as conn:
            checker = _Checker(reading.out, reading.unreadable, reading.incomplete)
            _know_database(conn, checker, {t.source.kind for t in reading.tables})
            with store.bulk_upsert(conn) as write:
                if _worth_a_reader_process(reading):
                    _read_in_child(reading, checker, write)
                else:
                    _read_and_check(reading, checker, write)
            if reading.responses:
                from monitor.ingest.responses import store_responses

                checker.counts["responses"] = store_responses(conn, reading.responses, reading.out, now)
            if reading.out:
                _name_formulas(reading.tables, reading.out)
                raise ImportFailed(sorted(reading.out, key=lambda p: (p.file, p.sheet or "", p.row or 0)))
        if warnings is not None:
            warnings += checker.warnings
        return checker.counts


def _name_formulas(tables: Sequence[_Table], problems: list[Problem]) -> None:
    """Blank required cells of workbooks that hold a formula: the workbook is read for values (a formula's
    result as last calculated), and a formula never calculated (a file written by a program, not saved
    by Excel) reads as blank. Such problems say so (the sheet is read again, for formulas)."""
    blanks: dict[tuple[str, str | None], dict[tuple[int, int], int]] = {}
    for i, p in enumerate(problems):
        if p.message == _REQUIRED and p.row is not None and p.column and not p.file.lower().endswith(".csv"):
            blanks.setdefault((p.file, p.sheet), {})[(p.row, -1)] = i
    for table in tables:
        wanted = blanks.get((table.source.file, table.source.sheet))
        if not wanted:
            continue
        cells = {}
        for (row, _), i in wanted.items():
            columns = table.source.columns.get(problems[i].column or "", ())
            cells[(row, columns[0] if columns else -1)] = i
        with suppress(Exception):  # a best effort (the file was read once): else the problems stand
            _formulas_at(table, cells, problems)


def _formulas_at(table: _Table, cells: dict[tuple[int, int], int], problems: list[Problem]) -> None:
    import openpyxl

    last = max(row for row, _ in cells)
    cols.check_archive(table.path)
    wb = openpyxl.load_workbook(table.path, read_only=True, data_only=False)
    try:
        ws = wb.worksheets[table.position]
        ws.reset_dimensions()
        for number, row in enumerate(ws.iter_rows(min_row=1, max_row=last), start=1):
            for (at, index), i in cells.items():
                if at == number and 0 <= index < len(row) and row[index].data_type == "f":
                    formula = str(row[index].value)[:200]
                    message = (
                        "is a formula with no calculated value; values are expected, not formulas: paste "
                        "the column as values, or open and save the file in Excel"
                        "（该单元格为公式且无计算结果，请粘贴为数值）"
                    )
                    problems[i] = replace(problems[i], value=formula, message=message)
    finally:
        wb.close()


def _read_and_check(reading: _Reading, checker: _Checker, emit: Callable[[str, list[Record]], None]) -> None:
    """Read every table, parents' kinds first, check each chunk of records and `emit` it while no
    problem has been found (after one, nothing will be written: the transaction rolls back)."""
    for table in reading.tables:
        kind = table.source.kind
        for numbers, records in reading.chunks(table):
            checker.check(kind, records, numbers, table.source)
            if not checker.failed:
                emit(kind, records)
    checker.check_loose(reading.loose)
    reading.loose = []
    checker.finish(reading.first)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The import makes millions of objects and no reference cycle: the cycle collector would only
    scan its growing key sets again and again (a tenth of the parsing time). Paused, then restored."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


# --- reading in a second process ------------------------------------------------------------------
# Writing a row costs SQLite about as much as parsing and checking it costs Python, so on a machine
# with two cores a large import reads and checks in a forked child while this process writes what
# the child sends (pickled chunks through a pipe; the pipe's small buffer keeps the child at most a
# chunk ahead). The child never touches the database: the codes already there are loaded before the
# fork, and the connection and its transaction stay here. It ends with os._exit (multiprocessing's
# way), so the connection it inherited is never closed or used there.

READER_PROCESS_BYTES = 2 << 20  # inputs this large are read in a second process (2,500 projects: 3 MB)


def _worth_a_reader_process(reading: _Reading) -> bool:
    """Large input, Linux (fork), more than one CPU, no other thread here (fork copies only the
    calling thread: locks held by another one would stay held in the child), and not a daemonic
    process (multiprocessing forbids those children)."""
    size = sum(p.stat().st_size for p in {t.path for t in reading.tables})
    return (
        size >= READER_PROCESS_BYTES
        and sys.platform == "linux"
        and store.cores() > 1
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
    )


def _read_in_child(reading: _Reading, checker: _Checker, write: Callable[[str, list[Record]], None]) -> None:
    """`_read_and_check` in a forked child, writing here what it emits; its problems and counts are
    taken back into `reading` and `checker` at the end."""
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    child = fork.Process(
        target=_reader_child, args=(reading, checker, sender, receiver), name="monitor-import-reader"
    )
    child.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                child.join()
                raise RuntimeError(
                    f"the import's reader process ended early (exit code {child.exitcode})"
                ) from None
            if message[0] == "records":
                write(message[1], message[2])
            elif message[0] == "done":
                reading.out[:], checker.counts, checker.warnings = message[1], message[2], message[3]
                break
            else:
                raise RuntimeError(f"reading the import files failed in the reader process:\n{message[1]}")
    except BaseException:
        child.terminate()
        raise
    finally:
        receiver.close()
        child.join()


def _reader_child(reading: _Reading, checker: _Checker, sender: Any, receiver: Any) -> None:
    """Read and check, sending the records; ends when the parent does: the pipe's reading end is the
    parent's alone (so a write fails once it is gone), and on Linux the kernel kills this process
    when the parent dies (PR_SET_PDEATHSIG), also while it reads a large file."""
    receiver.close()
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    try:
        _read_and_check(reading, checker, lambda kind, records: sender.send(("records", kind, records)))
        sender.send(("done", reading.out, checker.counts, checker.warnings))
    except (BrokenPipeError, ConnectionResetError):
        os._exit(1)  # the parent is gone: nobody to tell
    except BaseException:
        with suppress(OSError):
            sender.send(("error", traceback.format_exc()))
    finally:
        with suppress(OSError):
            sender.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (nothing elsewhere, or without libc)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass

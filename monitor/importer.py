"""The import stage: CSV/XLSX files in, a validated Batch upserted in one transaction out.
`read_paths` parses every file (tables located by their header row, kinds told by headers), `validate`
checks references, duplicates and amounts across the batch and the database, `import_paths` does both
and writes only if there is no problem at all; every problem names file, sheet, row, column and value.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from monitor import columns as cols
from monitor import values as v
from monitor.columns import Rows
from monitor.model import Direction, Indicator, IndicatorReport, Kind, Project, ProjectReport, Unit, wan
from monitor.store import Batch, KnownCodes, create_schema, known_codes, write_batch

T = TypeVar("T")
KINDS = tuple(cols.ALIASES)


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


@dataclass
class SourcedBatch(Batch):
    """A Batch that remembers where each record came from, and which keys or kinds could not be read
    (so that references to them are not reported a second time as unknown)."""

    origins: dict[str, list[tuple[Source, int]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unreadable: dict[str, set[Hashable]] = field(default_factory=lambda: {k: set() for k in KINDS})
    incomplete: set[str] = field(default_factory=set)


# --- one row of each kind ------------------------------------------------------------------------


class _Row:
    """The current row of a table, read column by column; problems are recorded, not raised."""

    def __init__(self, source: Source, problems: list[Problem]) -> None:
        self.source, self.problems = source, problems
        self.number, self.ok = 0, True
        self.cells: Sequence[object] = ()
        self.used: dict[str, int] = {}  # column -> index the value came from (for the header shown)

    def load(self, number: int, cells: Sequence[object]) -> None:
        self.number, self.cells, self.ok = number, cells, True

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
        try:
            return parse(value)
        except ValueError as exc:
            self.fail(column, value, str(exc))
            return None

    def fail(self, column: str, value: object, message: str) -> None:
        self.ok = False
        index = self.used.get(column, -1)
        self.problems.append(self.source.problem(self.number, column, value, message, index))


_unit_code = partial(v.parse_code, max_length=32)
_project_code = partial(v.parse_code, max_length=21)
_budget = partial(v.parse_amount, positive=True)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^-?\d+(?:\.\d+)?$")


def _unit(r: _Row) -> tuple[Unit | None, Hashable]:
    code, name = r.get("unit_code", _unit_code), r.get("unit_name", v.parse_text)
    emails = r.get("email", v.parse_emails)
    supervisor = r.get("supervisor_code", _unit_code, required=False)
    if not r.ok or code is None or name is None or emails is None:
        return None, code
    return Unit(code, name, emails, supervisor), code


def _project(r: _Row) -> tuple[Project | None, Hashable]:
    code, name = r.get("project_code", _project_code), r.get("project_name", v.parse_text)
    unit, budget = r.get("unit_code", _unit_code), r.get("budget", _budget)
    carryover = r.get("carryover", v.parse_amount, required=False) or 0
    fund_flag = r.get("fund_flag", v.parse_fund_flag, required=False)
    category = r.get("category", v.parse_text, required=False) or None
    profile = r.get("profile", v.parse_text, required=False) or None
    if not r.ok or code is None or name is None or unit is None or budget is None:
        return None, code
    return Project(code, name, unit, budget, carryover, fund_flag, category, profile), code


def _direction_and_target(
    r: _Row, name: str, unit: str, kind: Kind | None
) -> tuple[Direction | None, str | None]:
    """The direction, also when written in front of the target (`≥90%`), and the canonical target."""
    raw = r.raw("target")
    written, rest = v.split_direction(raw) if isinstance(raw, str) else (None, raw)
    direction = (
        written if written and v.is_blank(r.raw("direction")) else r.get("direction", v.parse_direction)
    )
    if direction is Direction.QUALITATIVE:
        rest = raw
    elif written is not None and direction is not None and written is not direction:
        r.fail(
            "target", raw, f"says {written} but the direction is {direction}（指标值的符号与指标方向不一致）"
        )
        return direction, None
    target = r.parse("target", rest, lambda x: v.parse_target(x, direction, unit))
    problem = target and _target_problem(target, name, direction, kind)
    if problem:
        r.fail("target", raw, problem)
    return direction, target


_MILESTONE_NAME = re.compile(r"(时间|日期|时限)$")


def _target_problem(target: str, name: str, direction: Direction | None, kind: Kind | None) -> str | None:
    """What is wrong with a target for its indicator's kind, or for a milestone-looking name
    (项目开工时间 ≤ 6月底 would otherwise pass as a qualitative target)."""
    is_date, is_number = bool(_ISO_DATE.match(target)), bool(_DECIMAL.match(target))
    if kind is Kind.MILESTONE and not is_date:
        return "a milestone target must be a date such as 2025-06-30（时间节点指标值须为日期）"
    if kind in (Kind.CUMULATIVE, Kind.LEVEL) and not is_number:
        return f"a {kind} indicator needs a numeric target（该类型指标值须为数字）"
    looks_milestone = direction in (Direction.LE, Direction.LT, Direction.EQ) and _MILESTONE_NAME.search(name)
    if kind is None and looks_milestone and not (is_date or is_number):
        return "a due date must be written as a date such as 2025-06-30（完成时间须写为日期，如 2025-06-30）"
    return None


def _indicator(r: _Row) -> tuple[Indicator | None, Hashable]:
    project, code = r.get("project_code", _project_code), r.get("indicator_code", _unit_code)
    level1, level2 = r.get("level1", v.parse_text), r.get("level2", v.parse_text)
    name = r.get("name", v.parse_text)
    unit = r.get("measure_unit", v.parse_text, required=False) or ""
    kind = r.get("kind", v.parse_kind, required=False)
    profile = r.get("profile", v.parse_text, required=False) or None
    direction, target = _direction_and_target(r, name or "", unit, kind)
    if not (r.ok and project and code and level1 and level2 and name and direction and target):
        return None, (project, code)
    return Indicator(project, code, level1, level2, name, direction, target, unit, kind, profile), (
        project,
        code,
    )


def _project_report(r: _Row) -> tuple[ProjectReport | None, Hashable]:
    checkpoint, project = r.get("checkpoint", v.parse_checkpoint), r.get("project_code", _project_code)
    executed = r.get("executed", v.parse_amount)
    forecast = r.get("forecast_executed", v.parse_amount, required=False)
    if not r.ok or checkpoint is None or project is None or executed is None:
        return None, (checkpoint, project)
    return ProjectReport(checkpoint, project, executed, forecast), (checkpoint, project)


def _indicator_report(r: _Row) -> tuple[IndicatorReport | None, Hashable]:
    checkpoint, project = r.get("checkpoint", v.parse_checkpoint), r.get("project_code", _project_code)
    code, actual = r.get("indicator_code", _unit_code), r.get("actual", v.parse_actual, required=False)
    forecast = r.get("forecast", v.parse_actual, required=False)
    possibility = r.get("possibility", v.parse_possibility, required=False)
    causes = r.get("causes", v.parse_causes, required=False)
    cause_text = r.get("cause_text", v.parse_free_text, required=False) or None
    measures = r.get("measures", v.parse_free_text, required=False) or None
    if not r.ok or checkpoint is None or project is None or code is None:
        return None, (checkpoint, project, code)
    report = IndicatorReport(
        checkpoint, project, code, actual, forecast, possibility, causes, cause_text, measures
    )
    return report, (checkpoint, project, code)


_BUILDERS: dict[str, Callable[[_Row], tuple[Any, Hashable]]] = {
    "units": _unit,
    "projects": _project,
    "indicators": _indicator,
    "project_reports": _project_report,
    "indicator_reports": _indicator_report,
}
_TOTALS = frozenset({"合计", "总计", "小计"})


# --- tables ----------------------------------------------------------------------------------------


def _read_table(file: str, sheet: str | None, rows: Rows, batch: SourcedBatch, out: list[Problem]) -> bool:
    """Parse one table into `batch`. A sheet with no header row and no kind in its name is not a
    table (a note, a list): returns False without a problem."""
    name = sheet if sheet is not None else Path(file).stem
    header, rows = cols.locate_header(rows)
    if sheet is not None and (header is None or not header.known) and cols.kind_from_name(name) is None:
        return False
    if header is None:
        out.append(Problem(file, None, None, None, "the table is empty（表格为空）", sheet))
        batch.incomplete.update(KINDS)
        return True
    found = cols.detect_kind(header.cells, name)
    source = Source(file, sheet, found.kind or "", found.columns, tuple(v.cell_text(c) for c in header.cells))
    if found.kind is None:
        seen = ", ".join(h for h in source.headers if h) or "(none)"
        message = (
            f"cannot tell which kind of data this is; headers seen: {seen}（无法识别表格类型，请检查表头）"
        )
        out.append(source.problem(header.number, None, None, message))
        batch.incomplete.update(KINDS)
    elif found.missing:
        for column in found.missing:
            accepted = "/".join((column, *cols.aliases_of(found.kind, column)))
            message = f"missing required column of {found.kind}; accepted headers: {accepted}（缺少必填列）"
            out.append(source.problem(header.number, column, None, message))
        batch.incomplete.add(found.kind)
    else:
        _read_rows(source, header.cells, rows, batch, out)
    return True


def _read_rows(
    source: Source, header: list[object], rows: Rows, batch: SourcedBatch, out: list[Problem]
) -> None:
    build, records = _BUILDERS[source.kind], getattr(batch, source.kind)
    origins, unreadable = batch.origins[source.kind], batch.unreadable[source.kind]
    key = source.columns["project_code" if "project_code" in source.columns else "unit_code"][0]
    row = _Row(source, out)
    for number, cells in rows:
        if all(v.is_blank(c) for c in cells):
            continue
        key_cell = cells[key] if key < len(cells) else None
        if key_cell == header[key]:
            continue  # the header repeated (page breaks in exports)
        if (v.is_blank(key_cell) or key_cell in _TOTALS) and any(v.cell_text(c) in _TOTALS for c in cells):
            continue  # a 合计 (total) line
        row.load(number, cells)
        record, record_key = build(row)
        if record is None:
            unreadable.add(record_key)
        else:
            records.append(record)
            origins.append((source, number))


# --- files -----------------------------------------------------------------------------------------


def _read_file(path: Path, batch: SourcedBatch, out: list[Problem]) -> None:
    """Every sheet of a workbook is a table, except sheets that are plainly not (see `_read_table`);
    a workbook with no table at all is a problem."""
    sheets, tables = [], 0
    for sheet, rows in cols.read_tables(path):
        tables += _read_table(str(path), sheet, rows, batch, out)
        sheets.append(sheet or "")
    if not tables:
        message = (
            f"no sheet has a header row of a known kind (sheets: {', '.join(sheets)})（没有可识别的数据表）"
        )
        out.append(Problem(str(path), None, None, None, message))
        batch.incomplete.update(KINDS)


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


def read_paths(paths: Sequence[Path]) -> tuple[SourcedBatch, list[Problem]]:
    """Parse every file (folders: every .csv/.xlsx inside, sorted) into a batch; returns it with the
    problems found in single values and tables. Checks across rows are `validate`'s."""
    out: list[Problem] = []
    batch = SourcedBatch()
    for path in _files(paths, out):
        try:
            _read_file(path, batch, out)
        except (OSError, ValueError, KeyError, csv.Error, zipfile.BadZipFile) as exc:
            out.append(Problem(str(path), None, None, None, f"cannot read this file: {exc}（文件无法读取）"))
            batch.incomplete.update(KINDS)
    return batch, out


# --- checks across rows ------------------------------------------------------------------------------

_UNKNOWN_UNIT = "unknown unit: not in this import nor in the database（单位编码不存在）"
_UNKNOWN_PROJECT = "unknown project: not in this import nor in the database（项目编码不存在）"
_UNKNOWN_INDICATOR = (
    "the project has no such indicator in this import nor in the database（该项目下无此指标）"
)


class _Checker:
    """Problems of a batch's records, placed where each record came from (a plain Batch read
    elsewhere has no origins: its records are numbered instead)."""

    def __init__(self, batch: Batch, known: KnownCodes) -> None:
        self.batch, self.known, self.out = batch, known, list[Problem]()
        sourced = batch if isinstance(batch, SourcedBatch) else None
        self.origins = sourced.origins if sourced else None
        self.unreadable = sourced.unreadable if sourced else {k: set() for k in KINDS}
        self.incomplete = sourced.incomplete if sourced else set()

    def add(self, kind: str, i: int, column: str, value: object, message: str) -> None:
        if self.origins is None:
            self.out.append(Problem(f"<{kind}>", i + 1, column, v.cell_text(value), message))
        else:
            source, row = self.origins[kind][i]
            self.out.append(source.problem(row, column, value, message))

    def where(self, kind: str, i: int) -> str:
        if self.origins is None:
            return f"<{kind}> #{i + 1}"
        source, row = self.origins[kind][i]
        return source.file + (f"[{source.sheet}]" if source.sheet else "") + f":row {row}"

    def first_of_each(self, kind: str, column: str, key: Callable[[Any], Hashable]) -> dict[Hashable, int]:
        """Index of the first record of each key; every later record with that key is a problem."""
        first: dict[Hashable, int] = {}
        for i, record in enumerate(getattr(self.batch, kind)):
            k = key(record)
            if k in first:
                shown = "/".join(k) if isinstance(k, tuple) else k
                self.add(
                    kind,
                    i,
                    column,
                    shown,
                    f"duplicate: already given at {self.where(kind, first[k])}（重复）",
                )
            else:
                first.setdefault(k, i)
        return first

    def exists(self, kind: str, key: Hashable, in_batch: dict[Hashable, int], in_db: Any) -> bool:
        """Known, or not checkable: in the batch, the database, an unreadable row or table of `kind`."""
        return key in in_batch or key in in_db or key in self.unreadable[kind] or kind in self.incomplete


def validate(batch: Batch, known: KnownCodes) -> list[Problem]:
    """Cross-row checks of `batch` against itself and the codes already in the database: duplicate
    keys, references to unknown units, projects and indicators, and execution beyond the budget."""
    c = _Checker(batch, known)
    units = c.first_of_each("units", "unit_code", lambda u: u.code)
    projects = c.first_of_each("projects", "project_code", lambda p: p.code)
    indicators = c.first_of_each("indicators", "indicator_code", lambda i: (i.project_code, i.code))
    c.first_of_each("project_reports", "project_code", lambda r: (r.checkpoint, r.project_code))
    c.first_of_each(
        "indicator_reports", "indicator_code", lambda r: (r.checkpoint, r.project_code, r.indicator_code)
    )
    for i, u in enumerate(batch.units):
        if u.supervisor_code is not None and not c.exists("units", u.supervisor_code, units, known.units):
            c.add("units", i, "supervisor_code", u.supervisor_code, _UNKNOWN_UNIT)
    for i, p in enumerate(batch.projects):
        if not c.exists("units", p.unit_code, units, known.units):
            c.add("projects", i, "unit_code", p.unit_code, _UNKNOWN_UNIT)
    for i, ind in enumerate(batch.indicators):
        if not c.exists("projects", ind.project_code, projects, known.projects):
            c.add("indicators", i, "project_code", ind.project_code, _UNKNOWN_PROJECT)
    for i, r in enumerate(batch.project_reports):
        if not c.exists("projects", r.project_code, projects, known.projects):
            c.add("project_reports", i, "project_code", r.project_code, _UNKNOWN_PROJECT)
        elif (budget := _budget_of(r.project_code, batch, projects, known)) and r.executed > sum(budget):
            message = (f"{wan(r.executed)} 万元 exceeds budget {wan(budget[0])} + carry-over "
                       f"{wan(budget[1])} 万元（执行数超过预算数与上年结转之和）")  # fmt: skip
            c.add("project_reports", i, "executed", wan(r.executed), message)
    for i, ir in enumerate(batch.indicator_reports):
        if c.exists("indicators", (ir.project_code, ir.indicator_code), indicators, known.indicators):
            continue
        if not c.exists("projects", ir.project_code, projects, known.projects):
            c.add("indicator_reports", i, "project_code", ir.project_code, _UNKNOWN_PROJECT)
        else:
            c.add("indicator_reports", i, "indicator_code", ir.indicator_code, _UNKNOWN_INDICATOR)
    return c.out


def _budget_of(
    code: str, batch: Batch, projects: dict[Hashable, int], known: KnownCodes
) -> tuple[int, int] | None:
    """(budget, carry-over) in fen: from this batch if the project is in it, else from the database."""
    if code in projects:
        p = batch.projects[projects[code]]
        return p.budget, p.carryover
    return known.projects.get(code)


def import_paths(engine: Engine, paths: Sequence[Path]) -> dict[str, int]:
    """Read, validate, and write in ONE transaction; returns counts per kind. Raises ImportFailed with
    ALL problems (sorted by file, sheet and row) and writes nothing."""
    batch, problems = read_paths(paths)
    create_schema(engine)
    with engine.begin() as conn:
        problems += validate(batch, known_codes(conn))
        if problems:
            raise ImportFailed(sorted(problems, key=lambda p: (p.file, p.sheet or "", p.row or 0)))
        write_batch(conn, batch)
    return batch.counts()

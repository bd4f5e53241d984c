"""One row of each input kind, read cell by cell (the reference path: any cell type, every problem
recorded, not raised). In: a located table's `Source` and a row's cells. Out: the row's record (the
values of its table's columns, in order) and key, or None with its problems. The parsers of single
values are monitor.core's (cells, numeric, dates, values); the columns are ingest.columns'. The CSV
fast path (ingest.fastcsv) reads the same records and falls back to this one where a row does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any, TypeVar

from monitor.core import safe
from monitor.core.cells import is_blank, parse_emails, parse_free_text, parse_text
from monitor.core.dates import parse_checkpoint
from monitor.core.model import Direction, Kind
from monitor.core.numeric import parse_amount
from monitor.core.values import (
    parse_actual,
    parse_causes,
    parse_direction,
    parse_fund_flag,
    parse_kind,
    parse_possibility,
    parse_target,
    split_direction,
)
from monitor.ingest import files
from monitor.ingest.problems import Problem, Source

T = TypeVar("T")
Record = tuple[Any, ...]  # one row as stored: the values of its table's columns, in order


class Row:
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
            if i < len(self.cells) and not is_blank(self.cells[i]):
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
        if type(value) is files.ExcelError:
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


parse_unit_code = partial(safe.parse_code, max_length=32)  # a code is also a file name: see monitor.core.safe
parse_project_code = partial(safe.parse_code, max_length=21)
parse_budget = partial(parse_amount, positive=True)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^-?\d+(?:\.\d+)?$")


def _unit(r: Row) -> tuple[Record | None, Hashable]:
    code, name = r.get("unit_code", parse_unit_code), r.get("unit_name", parse_text)
    emails = r.get("email", parse_emails)
    supervisor = r.get("supervisor_code", parse_unit_code, required=False)
    if not r.ok or code is None or name is None or emails is None:
        return None, code
    return (code, name, ";".join(emails), supervisor), code


def _project(r: Row) -> tuple[Record | None, Hashable]:
    code, name = r.get("project_code", parse_project_code), r.get("project_name", parse_text)
    unit, budget = r.get("unit_code", parse_unit_code), r.get("budget", parse_budget)
    carryover = r.get("carryover", parse_amount, required=False) or 0
    fund_flag = r.get("fund_flag", parse_fund_flag, required=False)
    category = r.get("category", parse_text, required=False) or None
    profile = r.get("profile", parse_text, required=False) or None
    if not r.ok or code is None or name is None or unit is None or budget is None:
        return None, code
    return (code, name, unit, budget, carryover, fund_flag, category, profile), code


BLANK_REQUIRED = "a value is required（不能为空）"
_EXCEL_ERROR = (
    "is an Excel error value; a value is expected: correct the formula or type the value（单元格为错误值）"
)
Failure = tuple[str, object, str]  # column, value, message


def _cell(parse: Callable[[object], T], value: object) -> tuple[T | None, str | None]:
    """A required cell parsed, or the message saying why it is not."""
    if is_blank(value):
        return None, BLANK_REQUIRED
    if type(value) is files.ExcelError:
        return None, _EXCEL_ERROR
    try:
        return parse(value), None
    except ValueError as exc:
        return None, str(exc)


def direction_and_target(
    raw_direction: object, raw_target: object, name: str, unit: str, kind: Kind | None
) -> tuple[Direction | None, str | None, list[Failure]]:
    """The direction, also when written in front of the target (`≥90%`), and the canonical target,
    with what is wrong with either."""
    failures: list[Failure] = []
    written, rest = split_direction(raw_target) if isinstance(raw_target, str) else (None, raw_target)
    direction: Direction | None = written
    if not (written and is_blank(raw_direction)):
        direction, message = _cell(parse_direction, raw_direction)
        if message:
            failures.append(("direction", None if message is BLANK_REQUIRED else raw_direction, message))
    if direction is Direction.QUALITATIVE:
        rest = raw_target
    elif written is not None and direction is not None and written is not direction:
        message = f"says {written} but the direction is {direction}（指标值的符号与指标方向不一致）"
        return direction, None, [*failures, ("target", raw_target, message)]
    target, message = _cell(lambda x: parse_target(x, direction, unit), rest)
    if message:
        failures.append(("target", None if message is BLANK_REQUIRED else rest, message))
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


def depends_on_name(target: str, direction: Direction | None, kind: Kind | None) -> bool:
    """Whether `_target_problem` looks at the indicator's name for this target (see there)."""
    return kind is None and direction in _DUE and not (_ISO_DATE.match(target) or _DECIMAL.match(target))


def _indicator(r: Row) -> tuple[Record | None, Hashable]:
    project, code = r.get("project_code", parse_project_code), r.get("indicator_code", parse_unit_code)
    level1, level2 = r.get("level1", parse_text), r.get("level2", parse_text)
    name = r.get("name", parse_text)
    unit = r.get("measure_unit", parse_text, required=False) or ""
    kind = r.get("kind", parse_kind, required=False)
    profile = r.get("profile", parse_text, required=False) or None
    raw_direction, raw_target = r.raw("direction"), r.raw("target")
    direction, target, failures = direction_and_target(raw_direction, raw_target, name or "", unit, kind)
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


def _project_report(r: Row) -> tuple[Record | None, Hashable]:
    checkpoint, project = r.get("checkpoint", parse_checkpoint), r.get("project_code", parse_project_code)
    executed = r.get("executed", parse_amount)
    forecast = r.get("forecast_executed", parse_amount, required=False)
    if not r.ok or checkpoint is None or project is None or executed is None:
        return None, (checkpoint, project)
    return (checkpoint, project, executed, forecast), (checkpoint, project)


def _indicator_report(r: Row) -> tuple[Record | None, Hashable]:
    checkpoint, project = r.get("checkpoint", parse_checkpoint), r.get("project_code", parse_project_code)
    code, actual = r.get("indicator_code", parse_unit_code), r.get("actual", parse_actual, required=False)
    forecast = r.get("forecast", parse_actual, required=False)
    possibility = r.get("possibility", parse_possibility, required=False)
    causes = r.get("causes", parse_causes, required=False)
    cause_text = r.get("cause_text", parse_free_text, required=False) or None
    measures = r.get("measures", parse_free_text, required=False) or None
    if not r.ok or checkpoint is None or project is None or code is None:
        return None, (checkpoint, project, code)
    record = (checkpoint, project, code, actual, forecast, possibility, causes, cause_text, measures)
    return record, (checkpoint, project, code)


BUILDERS: dict[str, Callable[[Row], tuple[Record | None, Hashable]]] = {
    "units": _unit,
    "projects": _project,
    "indicators": _indicator,
    "project_reports": _project_report,
    "indicator_reports": _indicator_report,
}
KEY_COLUMNS = {"units": 1, "projects": 1, "indicators": 2, "project_reports": 2, "indicator_reports": 3}


def key_of(kind: str, record: Record) -> Hashable:
    n = KEY_COLUMNS[kind]
    return record[0] if n == 1 else record[:n]

"""Units' answers to their warnings by file (kind `responses` of `monitor import`): the located tables in,
each row checked (the values the web form takes, a warning case of that checkpoint and project that
waits for an answer) and, when nothing in the whole import is wrong, stored through the web's
`submit_answer` with channel `import`; every problem out as an ingest.problems.Problem. Also the workbook a
bureau hands out: the cases waiting for an answer pre-filled, with dropdowns for cause and measure.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select, tuple_
from sqlalchemy.engine import Connection

from monitor.cases import rectification as rc
from monitor.cases.exemptions import local_day
from monitor.cases.rectification import CAUSES
from monitor.core import values as v
from monitor.core.wording import WORD, period
from monitor.db.store import WARNING_CASE, as_utc
from monitor.ingest.locate import Table, data_rows
from monitor.ingest.problems import Problem, Source

ANSWER_COLUMNS = ("cause", "explanation", "measure", "measure_text", "expected_date")
MIN_TEXT = 5  # as the web form (rectification.parse_answer)
CAUSE_WORDS = {
    **{c: c for c in CAUSES},
    **{c.removesuffix("保障"): c for c in CAUSES},
    "其它": "其他",
}
# The words of workbooks handed out before the measures took the domain brief's words (rc.MEASURES).
OLD_MEASURE_WORDS = {"调整资金用途": "reallocate", "同步调减预算和绩效目标": "reduce", "终止项目": "cancel"}
MEASURE_WORDS = {
    **{key: key for key in rc.MEASURES},
    **{label: key for key, label in rc.MEASURES.items()},
    **OLD_MEASURE_WORDS,
    "继续": "continue",
    "调剂": "reallocate",
    "调剂使用": "reallocate",
    "调减预算": "reduce",
    "调减": "reduce",
    "取消": "cancel",
    "终止": "cancel",
}
_SPLIT = re.compile(r"[;,；，、/\s]+")
WAITING = (rc.State.OPEN.value, rc.State.RETURNED.value)  # the states in which a case takes an answer


@dataclass(frozen=True)
class _Answer:
    """One row that reads well: where it is, its case's key and the web form's fields."""

    source: Source
    row: int
    checkpoint: str
    project_code: str
    unit_code: str | None
    form: dict[str, str]


def _cell(source: Source, cells: Sequence[object], column: str) -> object:
    """The first non-blank cell under the headers naming `column` (None if there is none)."""
    for i in source.columns.get(column, ()):
        if i < len(cells) and not v.is_blank(cells[i]):
            return cells[i]
    return None


def _text(value: object, what: str, bad: Callable[[str], None]) -> str:
    """Free text of the web form's length (`what` names it in messages); what is wrong goes to `bad`."""
    try:
        text = v.parse_free_text(value)
    except ValueError as exc:
        bad(str(exc))
        return ""
    if len(text) < MIN_TEXT:
        bad(f"too short: at least {MIN_TEXT} characters（{what}至少{MIN_TEXT}个字）")
    elif len(text) > rc.MAX_TEXT:
        bad(f"too long: at most {rc.MAX_TEXT} characters（{what}不能超过{rc.MAX_TEXT}个字）")
    return text


def _read_row(
    source: Source, number: int, cells: Sequence[object], today: dt.date, out: list[Problem]
) -> _Answer | None:
    """One row's answer, or None with its problems in `out` (None without any for a row to skip: blank,
    or a template row the unit left unanswered)."""
    raw = {c: _cell(source, cells, c) for c in ("checkpoint", "project_code", "unit_code", *ANSWER_COLUMNS)}
    if all(v.is_blank(raw[c]) for c in ANSWER_COLUMNS):
        return None
    before = len(out)

    def bad(column: str, message: str) -> None:
        out.append(source.problem(number, column, raw[column], message))

    def required(column: str) -> bool:
        if v.is_blank(raw[column]):
            bad(column, "a value is required（不能为空）")
            return False
        return True

    def parsed(column: str, parse: Callable[[object], str]) -> str | None:
        if v.is_blank(raw[column]):
            return None
        try:
            return parse(raw[column])
        except ValueError as exc:
            bad(column, str(exc))
            return None

    required("checkpoint")
    required("project_code")
    checkpoint = parsed("checkpoint", v.parse_checkpoint)
    project = parsed("project_code", lambda x: v.parse_code(x, max_length=21))
    unit = parsed("unit_code", lambda x: v.parse_code(x, max_length=32))
    form: dict[str, str] = {}
    if required("cause"):
        parts = [p for p in _SPLIT.split(v.cell_text(raw["cause"])) if p]
        cause = CAUSE_WORDS.get(parts[0]) if len(parts) == 1 else None
        if cause is None:
            bad(
                "cause",
                f"must be one of {'/'.join(CAUSES)}（偏差原因类别须为{'、'.join(CAUSES)}之一，只选一个）",
            )
        else:
            form["cause"] = cause
    if required("explanation"):
        form["explanation"] = _text(raw["explanation"], "原因说明", lambda m: bad("explanation", m))
    if required("measure"):
        measure = MEASURE_WORDS.get("".join(v.cell_text(raw["measure"]).split()))
        if measure is None:
            labels = "、".join(rc.MEASURES.values())
            bad("measure", f"must be one of {'/'.join(rc.MEASURES.values())}（纠偏措施须为{labels}之一）")
        else:
            form["measure"] = measure
    if required("measure_text"):
        form["measure_text"] = _text(raw["measure_text"], "措施说明", lambda m: bad("measure_text", m))
    if required("expected_date"):
        try:
            expected = dt.date.fromisoformat(v.parse_date(raw["expected_date"]))
        except ValueError as exc:
            bad("expected_date", str(exc))
        else:
            last = dt.date(today.year + 1, 12, 31)
            if expected < today:
                bad("expected_date", f"is before today {today}（预计完成时间不能早于今天 {today}）")
            elif expected > last:
                bad("expected_date", f"is after {last}（预计完成时间不能晚于 {last}）")
            else:
                form["expected_date"] = expected.isoformat()
    if len(out) > before or checkpoint is None or project is None:
        return None
    return _Answer(source, number, checkpoint, project, unit, form)


def _cases(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(checkpoint, project code) -> the warning case, for the keys that have one."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    wanted = sorted(keys)
    for i in range(0, len(wanted), 500):
        q = select(WARNING_CASE).where(
            tuple_(WARNING_CASE.c.checkpoint, WARNING_CASE.c.project_code).in_(wanted[i : i + 500])
        )
        found.update({(r.checkpoint, r.project_code): dict(r._mapping) for r in conn.execute(q)})
    return found


def check(
    conn: Connection, tables: Sequence[Table], today: dt.date, out: list[Problem]
) -> list[tuple[_Answer, dict[str, Any], rc.Answer]]:
    """Every answer of `tables` with its case and its validated Answer; the problems go to `out`."""
    answers: list[_Answer] = []
    for table in tables:
        source = table.source
        header_key = source.headers[source.columns["project_code"][0]]
        with data_rows(table) as rows:
            for number, cells in rows:
                if (
                    all(v.is_blank(c) for c in cells)
                    or v.cell_text(_cell(source, cells, "project_code")) == header_key
                ):
                    continue
                answer = _read_row(source, number, cells, today, out)
                if answer is not None:
                    answers.append(answer)
    cases = _cases(conn, {(a.checkpoint, a.project_code) for a in answers})
    seen: dict[tuple[str, str], _Answer] = {}
    ready = []
    for a in answers:
        key = (a.checkpoint, a.project_code)

        def bad(column: str, value: object, message: str, a: _Answer = a) -> None:
            out.append(a.source.problem(a.row, column, value, message))

        first = seen.setdefault(key, a)
        case = cases.get(key)
        if first is not a:
            bad(
                "project_code",
                a.project_code,
                f"duplicate: already answered at {first.source.where(first.row)}（重复填写）",
            )
        elif case is None:
            bad(
                "project_code",
                a.project_code,
                f"no warning case for this project at {a.checkpoint}"
                f"（该项目在{period(a.checkpoint)}没有预警案件，请核对项目编码和监控期）",
            )
        elif a.unit_code is not None and a.unit_code != case["unit_code"]:
            bad(
                "unit_code",
                a.unit_code,
                f"the project belongs to unit {case['unit_code']}（该项目属于单位 {case['unit_code']}）",
            )
        elif not rc.allows(case["state"], rc.Event.ANSWER):
            bad(
                "project_code",
                a.project_code,
                str(rc.IllegalTransition(rc.State(case["state"]), rc.Event.ANSWER)),
            )
        else:
            parsed = rc.parse_answer(a.form, today)  # the web form's own check, the final word
            if isinstance(parsed, list):
                for message in parsed:
                    bad("project_code", a.project_code, message)
            else:
                ready.append((a, case, parsed))
    return ready


def store_responses(
    conn: Connection, tables: Sequence[Table], out: list[Problem], now: dt.datetime | None = None
) -> int:
    """Check the answers of `tables` (problems into `out`, with those the rest of the import found) and,
    if `out` stays empty, store each in the caller's transaction as the web form does, channel
    `import`; the number of answers stored."""
    from monitor.cases.store import submit_answer

    at = as_utc(now) if now is not None else dt.datetime.now(dt.UTC)
    ready = check(conn, tables, local_day(at), out)
    if out:
        return 0
    for a, case, answer in ready:
        try:
            submit_answer(conn, case["id"], case["unit_code"], answer, at, channel="import")
        except (LookupError, rc.IllegalTransition) as exc:  # changed by someone else meanwhile
            out.append(a.source.problem(a.row, "project_code", a.project_code, str(exc)))
    return len(ready)


# --- the template a bureau hands out ----------------------------------------------------------------

HEADERS = (
    "监控期",
    "单位编码",
    "单位名称",
    "项目编码",
    "项目名称",
    "灯色",
    "案件状态",
    "退回意见",
    "偏差原因类别",
    "原因说明",
    "纠偏措施",
    "措施说明",
    "预计完成时间",
)
FIRST_ANSWER_COLUMN = HEADERS.index("偏差原因类别") + 1  # 1-based, as Excel counts
HEADER_ROW = 3


def waiting_cases(conn: Connection, checkpoint: str, unit_code: str | None) -> list[dict[str, Any]]:
    """The cases of `checkpoint` (of one unit) that wait for an answer, with the last return comment."""
    from monitor.cases.store import cases

    found = [c for c in cases(conn, unit_code=unit_code, states=WAITING) if c["checkpoint"] == checkpoint]
    for c in found:
        reviews = [a["review"] for a in c["answers"] if a["review"]]
        c["comment"] = reviews[-1]["comment"] if reviews and c["state"] == rc.State.RETURNED.value else ""
    return found


def workbook_name(unit_code: str, checkpoint: str) -> str:
    """The file name of a unit's answer workbook attached to its warning: 反馈表-<unit>-<checkpoint>.xlsx."""
    from monitor.core.safe import safe_name

    return f"反馈表-{safe_name(unit_code)}-{checkpoint}.xlsx"


def warning_workbook(view: Mapping[str, Any], today: dt.date) -> tuple[str, bytes] | None:
    """The answer workbook of a warning (views.warning): the template `monitor responses template --unit`
    writes, one row per project the warning asks an answer for (each a case the run opened, waiting for
    its first answer), as (file name, bytes); None when the warning asks for no answer."""
    projects = view["projects"]
    if not projects:
        return None
    checkpoint, unit = view["checkpoint"], view["unit_code"]
    found = [
        {
            "checkpoint": checkpoint,
            "unit_code": unit,
            "project_code": p["code"],
            "project_name": p["name"],
            "light": p["project_light"]["light"],
            "state": rc.State.OPEN.value,
            "comment": "",
        }
        for p in projects
    ]
    buf = io.BytesIO()
    write_template(buf, checkpoint, found, {unit: view["unit_name"]}, today)
    return workbook_name(unit, checkpoint), buf.getvalue()


def write_template(
    path: Path | BinaryIO,
    checkpoint: str,
    found: Sequence[Mapping[str, Any]],
    unit_names: Mapping[str, str],
    today: dt.date,
) -> None:
    """An .xlsx the units fill in: one row per case of `found`, its identity filled in, dropdowns for
    the cause and the measure, the expected date checked; `monitor import` reads it back."""
    import openpyxl
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from monitor.core.safe import put

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "整改反馈"
    put(ws, 1, 1, f"{period(checkpoint)}预算绩效运行监控预警整改反馈表").font = Font(bold=True, size=14)
    put(
        ws,
        2,
        1,
        "请在黄色栏目中逐项填写（偏差原因类别、纠偏措施从下拉列表选择，预计完成时间填日期如 "
        f"{today.year}-09-30），其余栏目请勿修改；未填写的行视为暂不反馈。",
    )
    fill = PatternFill("solid", fgColor="FFF2CC")
    for i, header in enumerate(HEADERS, 1):
        cell = put(ws, HEADER_ROW, i, header)
        cell.font = Font(bold=True)
        if i >= FIRST_ANSWER_COLUMN:
            cell.fill = fill
    for n, c in enumerate(found, HEADER_ROW + 1):
        values = (
            c["checkpoint"],
            c["unit_code"],
            unit_names.get(c["unit_code"], ""),
            c["project_code"],
            c["project_name"],
            WORD.get(c["light"], c["light"]) + "灯",
            rc.STATE_WORD[rc.State(c["state"])],
            c.get("comment", ""),
        )
        for i, value in enumerate(values, 1):
            put(ws, n, i, value).number_format = "@"  # codes and names stay text, never formulas
        for i in range(FIRST_ANSWER_COLUMN, len(HEADERS) + 1):
            ws.cell(n, i).fill = fill
            ws.cell(n, i).alignment = Alignment(wrap_text=True, vertical="top")
        ws.cell(n, len(HEADERS)).number_format = "yyyy-mm-dd"
    last = HEADER_ROW + max(len(found), 1)

    def column(header: str) -> str:
        return str(get_column_letter(HEADERS.index(header) + 1))

    def validate(header: str, dv: DataValidation) -> None:
        dv.error, dv.errorTitle, dv.showErrorMessage = dv.error or "请按要求填写", "填写有误", True
        dv.add(f"{column(header)}{HEADER_ROW + 1}:{column(header)}{last}")
        ws.add_data_validation(dv)

    validate(
        "偏差原因类别", DataValidation(type="list", formula1='"' + ",".join(CAUSES) + '"', allow_blank=True)
    )
    measures = ",".join(rc.MEASURES.values())
    validate("纠偏措施", DataValidation(type="list", formula1=f'"{measures}"', allow_blank=True))
    for header in ("原因说明", "措施说明"):
        text = DataValidation(
            type="textLength", operator="between", formula1=str(MIN_TEXT), formula2=str(rc.MAX_TEXT)
        )
        text.error = f"请填写{MIN_TEXT}至{rc.MAX_TEXT}个字"
        validate(header, text)
    until = dt.date(today.year + 1, 12, 31)
    date = DataValidation(
        type="date",
        operator="between",
        formula1=f"DATE({today.year},{today.month},{today.day})",
        formula2=f"DATE({until.year},{until.month},{until.day})",
        allow_blank=True,
    )
    date.error = f"请填写 {today} 至 {until} 之间的日期"
    validate("预计完成时间", date)
    widths = (10, 10, 22, 18, 30, 8, 14, 24, 16, 40, 22, 40, 14)
    for i, width in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
    from monitor.core.xlsx import print_setup

    print_setup(ws, str(ws.cell(1, 1).value), HEADER_ROW)
    wb.save(path)

"""Units' answers to their warnings by file (kind `responses` of `monitor import`, a side kind the importer
hands over). In: the located tables of that kind (ingest.locate) and the open transaction. Out: each
row checked (the values the web form takes, a warning case of that checkpoint and project that waits
for an answer) and, when nothing in the whole import is wrong, stored through `submit_answer` with
channel `import`; every problem as an ingest.problems.Problem. The workbook a bureau hands out for
these answers is ingest.workbook's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.engine import Connection

from monitor.cases import rectification as rc
from monitor.cases.exemptions import local_day
from monitor.cases.rectification import CAUSES
from monitor.cases.store import submit_answer
from monitor.core.cells import cell_text, is_blank, parse_code, parse_free_text
from monitor.core.dates import parse_checkpoint, parse_date
from monitor.core.rows import CaseRow, row_of
from monitor.core.wording import period
from monitor.core.workdays import as_utc
from monitor.db.engine import WARNING_CASE
from monitor.ingest.locate import Table, data_rows
from monitor.ingest.problems import Problem, Source
from monitor.ingest.workbook import (
    MIN_TEXT,
    waiting_cases,
    warning_workbook,
    workbook_name,
    write_template,
)

__all__ = [  # and the answer workbook's names (ingest.workbook), which callers (cli, notify) reach here
    "check",
    "store_responses",
    "waiting_cases",
    "warning_workbook",
    "workbook_name",
    "write_template",
]

ANSWER_COLUMNS = ("cause", "explanation", "measure", "measure_text", "expected_date")
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
        if i < len(cells) and not is_blank(cells[i]):
            return cells[i]
    return None


def _text(value: object, what: str, bad: Callable[[str], None]) -> str:
    """Free text of the web form's length (`what` names it in messages); what is wrong goes to `bad`."""
    try:
        text = parse_free_text(value)
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
    if all(is_blank(raw[c]) for c in ANSWER_COLUMNS):
        return None
    before = len(out)

    def bad(column: str, message: str) -> None:
        out.append(source.problem(number, column, raw[column], message))

    def parsed(column: str, parse: Callable[[object], str]) -> str | None:
        if is_blank(raw[column]):
            return None
        try:
            return parse(raw[column])
        except ValueError as exc:
            bad(column, str(exc))
            return None

    _present(raw, "checkpoint", bad)
    _present(raw, "project_code", bad)
    checkpoint = parsed("checkpoint", parse_checkpoint)
    project = parsed("project_code", lambda x: parse_code(x, max_length=21))
    unit = parsed("unit_code", lambda x: parse_code(x, max_length=32))
    form = _form(raw, today, bad)
    if len(out) > before or checkpoint is None or project is None:
        return None
    return _Answer(source, number, checkpoint, project, unit, form)


def _present(raw: Mapping[str, object], column: str, bad: Callable[[str, str], None]) -> bool:
    """Whether the cell of `column` holds a value (if not, a problem goes to `bad`)."""
    if is_blank(raw[column]):
        bad(column, "a value is required（不能为空）")
        return False
    return True


def _form(raw: Mapping[str, object], today: dt.date, bad: Callable[[str, str], None]) -> dict[str, str]:
    """The web form's fields from a row's answer cells; what is wrong goes to `bad` (column, message)."""
    form: dict[str, str] = {}
    if _present(raw, "cause", bad):
        parts = [p for p in _SPLIT.split(cell_text(raw["cause"])) if p]
        cause = CAUSE_WORDS.get(parts[0]) if len(parts) == 1 else None
        if cause is None:
            bad(
                "cause",
                f"must be one of {'/'.join(CAUSES)}（偏差原因类别须为{'、'.join(CAUSES)}之一，只选一个）",
            )
        else:
            form["cause"] = cause
    if _present(raw, "explanation", bad):
        form["explanation"] = _text(raw["explanation"], "原因说明", lambda m: bad("explanation", m))
    if _present(raw, "measure", bad):
        measure = MEASURE_WORDS.get("".join(cell_text(raw["measure"]).split()))
        if measure is None:
            labels = "、".join(rc.MEASURES.values())
            bad("measure", f"must be one of {'/'.join(rc.MEASURES.values())}（纠偏措施须为{labels}之一）")
        else:
            form["measure"] = measure
    if _present(raw, "measure_text", bad):
        form["measure_text"] = _text(raw["measure_text"], "措施说明", lambda m: bad("measure_text", m))
    if _present(raw, "expected_date", bad):
        try:
            expected = dt.date.fromisoformat(parse_date(raw["expected_date"]))
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
    return form


def _cases(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], CaseRow]:
    """(checkpoint, project code) -> the warning case, for the keys that have one."""
    found: dict[tuple[str, str], CaseRow] = {}
    wanted = sorted(keys)
    for i in range(0, len(wanted), 500):
        q = select(WARNING_CASE).where(
            tuple_(WARNING_CASE.c.checkpoint, WARNING_CASE.c.project_code).in_(wanted[i : i + 500])
        )
        found.update({(r.checkpoint, r.project_code): row_of(CaseRow, r._mapping) for r in conn.execute(q)})
    return found


def _answers(tables: Sequence[Table], today: dt.date, out: list[Problem]) -> list[_Answer]:
    """The answers of the rows of `tables` that read well (blank rows, repeated headers and rows left
    unanswered skipped); the problems of the others go to `out`."""
    answers: list[_Answer] = []
    for table in tables:
        source = table.source
        header_key = source.headers[source.columns["project_code"][0]]
        with data_rows(table) as rows:
            for number, cells in rows:
                if (
                    all(is_blank(c) for c in cells)
                    or cell_text(_cell(source, cells, "project_code")) == header_key
                ):
                    continue
                answer = _read_row(source, number, cells, today, out)
                if answer is not None:
                    answers.append(answer)
    return answers


def check(
    conn: Connection, tables: Sequence[Table], today: dt.date, out: list[Problem]
) -> list[tuple[_Answer, CaseRow, rc.Answer]]:
    """Every answer of `tables` with its case and its validated Answer; the problems go to `out`."""
    answers = _answers(tables, today, out)
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

"""Rectification of warnings, pure: a case's state and event in, the next state out (an illegal step
raises IllegalTransition); a checkpoint's results in, the cases to open and the earlier cases resolved
out; a unit's form fields in, a validated answer or every problem (in Chinese) out. No database, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from monitor.core.errors import BadInput
from monitor.core.rows import StoredResult
from monitor.core.workdays import add_working_days


class State(StrEnum):
    OPEN = "open"  # warned, not answered yet
    ANSWERED = "answered"  # the unit answered; the bureau has not decided
    RETURNED = "returned"  # the bureau sent the answer back; the unit answers again
    ACCEPTED = "accepted"  # the bureau accepted the answer
    RESOLVED = "resolved"  # the project was green at a later checkpoint


class Event(StrEnum):
    ANSWER = "answer"
    ACCEPT = "accept"
    RETURN = "return"
    RESOLVE = "resolve"


STATE_WORD = {
    State.OPEN: "待反馈",
    State.ANSWERED: "已反馈待审核",
    State.RETURNED: "已退回待重新反馈",
    State.ACCEPTED: "已认可",
    State.RESOLVED: "已整改到位",
}
EVENT_WORD = {Event.ANSWER: "反馈", Event.ACCEPT: "认可", Event.RETURN: "退回", Event.RESOLVE: "整改到位"}
# The corrective measures (纠偏措施) a unit chooses from, in the words of the domain brief (§5), defined
# here once: the warning e-mails, the web form, the answer workbook's dropdown, the import and the board
# show these words (import_responses also accepts the older words of workbooks already handed out).
CAUSES = ("经费保障", "制度保障", "人员保障", "硬件条件保障", "其他")  # 偏差原因类别, the form's five
MEASURES = {
    "continue": "继续实施",
    "reallocate": "调剂资金",
    "reduce": "调减预算并同步调整目标",
    "cancel": "取消项目",
}
GREEN = frozenset({"green", "blue"})  # blue (ahead of schedule) counts as green
WARNED = frozenset({"yellow", "red"})

_NEXT: dict[tuple[State, Event], State] = {
    (State.OPEN, Event.ANSWER): State.ANSWERED,
    (State.RETURNED, Event.ANSWER): State.ANSWERED,
    (State.ANSWERED, Event.ACCEPT): State.ACCEPTED,
    (State.ANSWERED, Event.RETURN): State.RETURNED,
    **{(s, Event.RESOLVE): State.RESOLVED for s in State if s is not State.RESOLVED},
}


class IllegalTransition(BadInput, ValueError):
    """An event that the case's state does not allow (e.g. accepting a case nobody answered)."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"案件当前状态为“{STATE_WORD[state]}”，不能{EVENT_WORD[event]}（{state} → {event}）")
        self.state, self.event = state, event


def transition(state: State | str, event: Event | str) -> State:
    """The state after `event`; IllegalTransition when the state does not allow it."""
    s, e = State(state), Event(event)
    try:
        return _NEXT[(s, e)]
    except KeyError:
        raise IllegalTransition(s, e) from None


def allows(state: State | str, event: Event | str) -> bool:
    return (State(state), Event(event)) in _NEXT


@dataclass(frozen=True)
class NewCase:
    checkpoint: str
    project_code: str
    unit_code: str
    project_name: str
    light: str


def open_cases(results: Iterable[StoredResult]) -> list[NewCase]:
    """A case for every yellow/red project of the results (load_results shape); green, blue, `na` and
    not reported projects open none."""
    return [
        NewCase(r["checkpoint"], r["project_code"], r["unit_code"], r["project_name"], light)
        for r in results
        if (light := r["light"]) is not None and light in WARNED
    ]


@dataclass(frozen=True)
class OpenCase:
    id: int
    checkpoint: str
    project_code: str
    state: str


def resolve(previous_cases: Iterable[OpenCase], results: Sequence[StoredResult]) -> list[int]:
    """The ids of cases from earlier checkpoints, not yet resolved, whose project is green in `results`
    (one later checkpoint's results)."""
    if not results:
        return []
    checkpoint = results[0]["checkpoint"]
    green = {r["project_code"] for r in results if r["light"] in GREEN}
    return [
        c.id
        for c in previous_cases
        if c.checkpoint < checkpoint and c.state != State.RESOLVED and c.project_code in green
    ]


def deadline(
    opened: dt.date, working_days: int, holidays: Iterable[dt.date] = (), extra: Iterable[dt.date] = ()
) -> dt.date:
    """The last day to answer: `working_days` working days after the case opened."""

    return add_working_days(opened, working_days, holidays, extra)


@dataclass(frozen=True)
class Answer:
    cause: str
    explanation: str
    measure: str
    measure_text: str
    expected_date: dt.date


MAX_TEXT = 2000


def parse_answer(form: Mapping[str, str], today: dt.date) -> Answer | list[str]:
    """A unit's form fields validated into an Answer, or every problem as a Chinese sentence."""
    problems: list[str] = []
    cause = form.get("cause", "").strip()
    if cause not in CAUSES:
        problems.append("请选择偏差原因类别（" + "、".join(CAUSES) + "）。")
    explanation = form.get("explanation", "").strip()
    if len(explanation) < 5:
        problems.append("请填写原因说明（至少5个字）。")
    elif len(explanation) > MAX_TEXT:
        problems.append(f"原因说明不能超过{MAX_TEXT}个字。")
    measure = form.get("measure", "").strip()
    if measure not in MEASURES:
        problems.append("请选择纠偏措施（" + "、".join(MEASURES.values()) + "）。")
    measure_text = form.get("measure_text", "").strip()
    if len(measure_text) < 5:
        problems.append("请填写具体纠偏措施（至少5个字）。")
    elif len(measure_text) > MAX_TEXT:
        problems.append(f"具体纠偏措施不能超过{MAX_TEXT}个字。")
    raw = form.get("expected_date", "").strip()
    expected: dt.date | None = None
    try:
        expected = dt.date.fromisoformat(raw)
    except ValueError:
        problems.append("请按 YYYY-MM-DD 格式填写预计完成日期（例如 2025-09-30）。")
    if expected is not None and not today <= expected <= dt.date(today.year + 1, 12, 31):
        problems.append("预计完成日期应在今天至明年年底之间。")
    if problems or expected is None:
        return problems
    return Answer(cause, explanation, measure, measure_text, expected)

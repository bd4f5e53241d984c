"""Follow-up of warnings nobody answered, pure: a checkpoint's cases (with the steps already recorded),
the units, the day and the working-day rule in; a Round out: the messages to queue (a reminder, 催办,
to each unit; an escalation, 督办, to each supervising department and to the bureau) and the step to
record on each case. A step already recorded is never taken again, so a round run twice yields nothing.

A case is unanswered when it is `open` or `returned` (the bureau sent the answer back and the unit has
not answered again). It is followed up only while its warning stands: the project is still yellow or
red in the checkpoint's stored results and not exempted today. No database, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from monitor.cases.deadlines import FollowUpRule
from monitor.cases.rectification import STATE_WORD, WARNED, State
from monitor.core.model import Unit
from monitor.core.wording import light, period
from monitor.core.workdays import chinese_date, is_working_day
from monitor.notify.decide import Notice, Recipient, unit_recipients

UNANSWERED = frozenset({State.OPEN.value, State.RETURNED.value})
REMINDED, ESCALATED = "reminded", "escalated"  # case_event kinds
STEP = {"chase": REMINDED, "escalate": ESCALATED}  # duty kind -> the step it records
ROUND = 1  # the first (and so far only) reminder and escalation of a case


@dataclass(frozen=True)
class Case:
    """A warning case as the follow-up sees it."""

    id: int
    checkpoint: str
    project_code: str
    project_name: str
    unit_code: str
    state: str
    opened_on: dt.date  # the bureau's calendar day the case was opened (the warning was sent)
    light: str | None  # the project's light in the checkpoint's stored results now
    exempt: bool = False  # exempted from warnings today
    reminded_on: dt.date | None = None  # the day a reminder was recorded, if one was
    escalated: bool = False

    @property
    def stands(self) -> bool:
        """Unanswered, and the warning still stands (still yellow/red, not exempted)."""
        return self.state in UNANSWERED and self.light in WARNED and not self.exempt


def due_for_reminder(case: Case, today: dt.date, rule: FollowUpRule) -> bool:
    return case.stands and case.reminded_on is None and today >= rule.chase_day(case.opened_on)


def due_for_escalation(case: Case, today: dt.date, rule: FollowUpRule) -> bool:
    """Unanswered on its escalation day. A reminder is not required first: a unit without an e-mail
    address could not be reminded, and its supervisor and the bureau should hear of it all the more."""
    return case.stands and not case.escalated and today >= rule.escalate_day(case.opened_on)


@dataclass(frozen=True)
class Step:
    """One step to record on a case (a case_event row)."""

    case_id: int
    kind: str  # reminded / escalated
    carrier: int | None  # index in Round.notices of the message that carries it (None: no address)
    detail: str  # in Chinese, as the history shows it


@dataclass(frozen=True)
class Round:
    notices: tuple[Notice, ...] = ()
    steps: tuple[Step, ...] = ()
    waiting: tuple[Case, ...] = ()  # unanswered cases whose day has not come yet

    def __bool__(self) -> bool:
        return bool(self.steps)


@dataclass(frozen=True)
class Bureau:
    name: str
    recipients: tuple[str, ...]


def _case_view(c: Case, rule: FollowUpRule) -> dict[str, Any]:
    return {
        "code": c.project_code,
        "name": c.project_name,
        "light": light(c.light),
        "state_word": STATE_WORD[State(c.state)],
        "deadline": chinese_date(rule.response_deadline(c.opened_on)),
        "opened": chinese_date(c.opened_on),
        "reminded_on": chinese_date(c.reminded_on) if c.reminded_on else "",
    }


def _order(cases: Iterable[Case]) -> list[Case]:
    return sorted(cases, key=lambda c: (c.light != "red", c.project_code))


def _previous_working_day(day: dt.date, rule: FollowUpRule) -> dt.date:
    day -= dt.timedelta(days=1)
    while not is_working_day(day, rule.holidays, rule.extra_workdays):
        day -= dt.timedelta(days=1)
    return day


def reminder_view(
    checkpoint: str,
    unit: Unit,
    cases: Sequence[Case],
    supervisor: Unit | None,
    today: dt.date,
    rule: FollowUpRule,
    bureau: Bureau,
    link: str,
) -> dict[str, Any]:
    """The 催办 message: the unit's unanswered warnings, the deadline it missed, what to do by when."""
    escalate_on = max(today, min(rule.escalate_day(c.opened_on) for c in cases))
    answer_by = _previous_working_day(escalate_on, rule) if escalate_on > today else None
    deadlines = sorted({rule.response_deadline(c.opened_on) for c in cases})
    return {
        "checkpoint": checkpoint,
        "period": period(checkpoint),
        "unit_code": unit.code,
        "unit_name": unit.name,
        "bureau_name": bureau.name,
        "cases": [_case_view(c, rule) for c in _order(cases)],
        "red_count": sum(1 for c in cases if c.light == "red"),
        "yellow_count": sum(1 for c in cases if c.light == "yellow"),
        "missed_deadline": chinese_date(deadlines[0]),
        "response_working_days": rule.response_working_days,
        "answer_by": chinese_date(answer_by) if answer_by and answer_by >= today else "",
        "escalate_on": chinese_date(escalate_on),
        "supervisor_name": supervisor.name if supervisor else "",
        "response_link": link,
    }


def escalation_view(
    checkpoint: str,
    audience: str,
    recipient_name: str,
    by_unit: Mapping[str, Sequence[Case]],
    units: Mapping[str, Unit],
    rule: FollowUpRule,
    bureau: Bureau,
) -> dict[str, Any]:
    """The 督办 message for a supervising department (its units only) or the bureau (every unit)."""
    listed = []
    for code in sorted(by_unit):
        unit = units.get(code)
        sup = _supervisor(unit, units)
        listed.append(
            {
                "code": code,
                "name": unit.name if unit else code,
                "supervisor_name": sup.name if sup else "",
                "cases": [_case_view(c, rule) for c in _order(by_unit[code])],
            }
        )
    cases = [c for cs in by_unit.values() for c in cs]
    return {
        "checkpoint": checkpoint,
        "period": period(checkpoint),
        "audience": audience,  # supervisor / bureau
        "recipient_name": recipient_name,
        "bureau_name": bureau.name,
        "units": listed,
        "unit_count": len(listed),
        "case_count": len(cases),
        "red_count": sum(1 for c in cases if c.light == "red"),
        "yellow_count": sum(1 for c in cases if c.light == "yellow"),
        "response_working_days": rule.response_working_days,
        "escalate_after_working_days": rule.escalate_after_working_days,
    }


def _supervisor(unit: Unit | None, units: Mapping[str, Unit]) -> Unit | None:
    """The unit's supervising department, if it has one other than itself."""
    if unit is None or not unit.supervisor_code or unit.supervisor_code == unit.code:
        return None
    return units.get(unit.supervisor_code)


def _snapshot(step: str, cases: Iterable[Case]) -> dict[str, Any]:
    return {"step": step, "round": ROUND, "cases": sorted(c.project_code for c in cases)}


def _emails(recipients: Sequence[Recipient]) -> str:
    return "、".join(r.email for r in recipients)


def reminders(
    checkpoint: str,
    cases: Sequence[Case],
    units: Mapping[str, Unit],
    today: dt.date,
    rule: FollowUpRule,
    bureau: Bureau,
    link: Callable[[str], str] = lambda _unit: "",
) -> Round:
    """The 催办 round: one message to each unit with unanswered warnings past their reminder day,
    listing them; a `reminded` step on each (recorded without a message if the unit has no address)."""
    due = [c for c in cases if due_for_reminder(c, today, rule)]
    waiting = tuple(c for c in cases if c.stands and c.reminded_on is None and c not in due)
    by_unit: dict[str, list[Case]] = defaultdict(list)
    for c in due:
        by_unit[c.unit_code].append(c)
    notices: list[Notice] = []
    steps: list[Step] = []
    for code in sorted(by_unit):
        unit = units.get(code)
        to = unit_recipients(unit)
        carrier = None
        if unit is not None and to:
            view = reminder_view(
                checkpoint, unit, by_unit[code], _supervisor(unit, units), today, rule, bureau, link(code)
            )
            carrier = len(notices)
            notices.append(
                Notice("case_reminder", "chase", code, to, (), _snapshot(REMINDED, by_unit[code]), view)
            )
            detail = f"逾期未反馈，已向{unit.name}发送催办通知（{_emails(to)}）"
        else:
            detail = "逾期未反馈；该单位没有电子邮箱，未能发送催办通知"
        steps += [Step(c.id, REMINDED, carrier, detail) for c in by_unit[code]]
    return Round(tuple(notices), tuple(steps), waiting)


def escalations(
    checkpoint: str,
    cases: Sequence[Case],
    units: Mapping[str, Unit],
    today: dt.date,
    rule: FollowUpRule,
    bureau: Bureau,
) -> Round:
    """The 督办 round: the warnings still unanswered on their escalation day, one message to each
    supervising department listing its units' (never another department's), one to the bureau listing
    all; an `escalated` step on each case, carried by the bureau's message (else the department's)."""
    due = [c for c in cases if due_for_escalation(c, today, rule)]
    waiting = tuple(c for c in cases if c.stands and not c.escalated and c not in due)
    by_unit: dict[str, list[Case]] = defaultdict(list)
    for c in due:
        by_unit[c.unit_code].append(c)
    by_supervisor: dict[str, dict[str, list[Case]]] = defaultdict(dict)
    for code, cs in by_unit.items():
        sup = _supervisor(units.get(code), units)
        if sup is not None and sup.emails:
            by_supervisor[sup.code][code] = cs
    notices: list[Notice] = []
    told_by: dict[str, tuple[int, str]] = {}  # unit code -> (notice index, the department told)
    for sup_code in sorted(by_supervisor):
        sup = units[sup_code]
        listed = by_supervisor[sup_code]
        view = escalation_view(checkpoint, "supervisor", sup.name, listed, units, rule, bureau)
        snapshot = _snapshot(ESCALATED, (c for cs in listed.values() for c in cs))
        notices.append(
            Notice("case_escalation", "escalate", sup_code, unit_recipients(sup), (), snapshot, view)
        )
        told_by.update({code: (len(notices) - 1, f"主管部门{sup.name}") for code in listed})
    bureau_notice = None
    if by_unit and bureau.recipients:
        to = tuple(Recipient(bureau.name, e) for e in bureau.recipients)
        view = escalation_view(checkpoint, "bureau", bureau.name, by_unit, units, rule, bureau)
        bureau_notice = len(notices)
        notices.append(Notice("case_escalation", "escalate", None, to, (), _snapshot(ESCALATED, due), view))
    steps = []
    for code in sorted(by_unit):
        sup_notice, sup_name = told_by.get(code, (None, ""))
        told = [w for w in (sup_name, bureau.name if bureau_notice is not None else "") if w]
        carrier = bureau_notice if bureau_notice is not None else sup_notice
        detail = (
            f"逾期仍未反馈，已报{'和'.join(told)}督办"
            if told
            else "逾期仍未反馈；没有主管部门或财政局收件人，未能发送督办通知"
        )
        steps += [Step(c.id, ESCALATED, carrier, detail) for c in by_unit[code]]
    return Round(tuple(notices), tuple(steps), waiting)


def plan(
    step: str,
    checkpoint: str,
    cases: Sequence[Case],
    units: Mapping[str, Unit],
    today: dt.date,
    rule: FollowUpRule,
    bureau: Bureau,
    link: Callable[[str], str] = lambda _unit: "",
) -> Round:
    """The round of `step` (chase / escalate)."""
    if step == "chase":
        return reminders(checkpoint, cases, units, today, rule, bureau, link)
    if step == "escalate":
        return escalations(checkpoint, cases, units, today, rule, bureau)
    raise ValueError(f"unknown follow-up step: {step!r}")


def examples() -> dict[str, dict[str, Any]]:
    """A view of each follow-up kind, for rendering the templates in checks and tests."""
    rule = FollowUpRule(10, 0, 5)
    bureau = Bureau("州财政局", ("jxk@example.gov.cn",))
    unit = Unit("301001", "州动物疫病预防控制中心", ("a@example.gov.cn",), "301")
    dept = Unit("301", "州农业农村局", ("b@example.gov.cn",))
    units = {u.code: u for u in (unit, dept)}
    opened = dt.date(2025, 6, 11)
    case = Case(1, "2025-05", "2025-301001-001", "动物疫病强制免疫疫苗采购", "301001", "open", opened, "red")
    returned = Case(
        2, "2025-05", "2025-301001-002", "兽医实验室设备更新", "301001", "returned", opened, "yellow"
    )
    cases = [case, returned]
    reminded = [replace(c, reminded_on=dt.date(2025, 6, 26)) for c in cases]
    return {
        "case_reminder": reminder_view(
            "2025-05",
            unit,
            cases,
            dept,
            dt.date(2025, 6, 26),
            rule,
            bureau,
            "https://jxk.example.gov.cn/u/TOKEN",
        )
        | {"workbook": "", "reply_to": "jxk@example.gov.cn"},  # added by messages.how_to_answer
        "case_escalation": escalation_view(
            "2025-05", "supervisor", dept.name, {unit.code: reminded}, units, rule, bureau
        )
        | {"reply_to": "jxk@example.gov.cn"},
    }

"""Who gets told what, and why: a checkpoint's results, the units, the previous checkpoint's lights
and what was already queued for this checkpoint in; a list of Notices out (unit digests, reminders or
overdue notices, the bureau summary), each with its reason and a snapshot of what it states. Pure: no
I/O, no clock. Re-running a checkpoint whose results did not change yields nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.core.model import Unit
from monitor.core.rows import StoredResult, Unreported
from monitor.notify import views
from monitor.notify.options import Options as Options  # part of decide()'s signature: callers build one

if TYPE_CHECKING:
    from monitor.cases.exemptions import Exemption

SEVERITY = {"green": 0, "blue": 0, "yellow": 1, "red": 2, "exempt": 0}
WARN = ("yellow", "red")
EXEMPT = "exempt"  # a warned project's light in a digest's snapshot while it is exempted
NO_EXEMPTIONS: Mapping[str, Exemption] = {}


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str


@dataclass(frozen=True)
class Notice:
    kind: str  # warning / reminder / overdue / summary / all_clear
    reason: str  # first / escalated / changed / improved / reminder / overdue / summary
    unit_code: str | None
    to: tuple[Recipient, ...]
    cc: tuple[Recipient, ...]
    snapshot: dict[str, Any]
    view: dict[str, Any] = field(compare=False)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.snapshot)


def fingerprint(snapshot: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def unit_recipients(unit: Unit | None) -> tuple[Recipient, ...]:
    return tuple(Recipient(unit.name, e) for e in unit.emails) if unit else ()


def warning_snapshot(
    rows: Sequence[StoredResult], exempt: Mapping[str, Exemption] = NO_EXEMPTIONS
) -> dict[str, Any]:
    """What a digest states: each yellow/red project's lights and its failing indicators; an exempted
    yellow/red project only as exempted (its lights are not a warning)."""
    return {
        r["project_code"]: {"light": EXEMPT}
        if r["project_code"] in exempt
        else {
            "light": r["light"],
            "budget": r["budget_light"],
            "target": r["target_light"],
            "indicators": {i["indicator_code"]: i["light"] for i in r["indicators"] if i["light"] in WARN},
        }
        for r in rows
        if r["light"] in WARN
    }


def warned_part(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A digest snapshot without its exempted projects: what decides whether the unit hears again."""
    return {code: s for code, s in snapshot.items() if s.get("light") != EXEMPT}


def change_reason(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str | None:
    """Why a unit hears again: None if nothing changed; else first / escalated / improved / changed."""
    if before is None:
        return "first" if after else None
    if before == after:
        return None
    codes = set(before) | set(after)
    lights = {
        c: (before.get(c, {}).get("light", "green"), after.get(c, {}).get("light", "green")) for c in codes
    }
    worse = [c for c, (b, a) in lights.items() if SEVERITY[a] > SEVERITY[b]]
    better = [c for c, (b, a) in lights.items() if SEVERITY[a] < SEVERITY[b]]
    if any(lights[c][1] == "red" for c in worse):
        return "escalated"
    if better and not worse:
        return "improved"
    return "changed"


def changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], names: Mapping[str, str]
) -> list[dict[str, str]]:
    """The projects whose light differs from what the unit was last told, for an update message."""
    if before is None:
        return []
    out = []
    for code in sorted(set(before) | set(after)):
        b = before.get(code, {}).get("light", "green")
        a = after.get(code, {}).get("light", "green")
        if b != a or before.get(code) != after.get(code):
            out.append({"project_code": code, "project_name": names.get(code, code), "before": b, "after": a})
    return out


def unreported_notice(
    checkpoint: str,
    unit: Unit | None,
    rows: Sequence[Unreported],
    snapshot: dict[str, Any],
    sent: Mapping[tuple[str, str | None], Mapping[str, Any]],
    options: Options,
) -> list[Notice]:
    """The message to a unit about its unreported projects `rows`: a reminder (催报) naming the report
    deadline while it has not passed, else an overdue notice (逾期未报送) with the consequence and the
    late-report deadline (once per list of projects, whatever round or run finds them late); none if
    that message was already queued with `snapshot`, or the unit has no address. A unit whose deadline
    the bureau extended (延期) is reminded of its own deadline until that has passed."""
    options = options.for_unit(unit.code if unit else None)
    to = unit_recipients(unit)
    kind = "overdue" if options.overdue else "reminder"
    if kind == "overdue":  # late is late whichever round or run says so: told once per list
        snapshot = {"not_reported": snapshot["not_reported"]}
    if not to or not rows or sent.get((kind, unit.code if unit else None)) == snapshot:
        return []
    make = views.overdue if kind == "overdue" else views.reminder
    view = make(checkpoint, unit, rows, options)
    return [Notice(kind, kind, unit.code if unit else None, to, (), snapshot, view)]


def tasks(
    checkpoint: str,
    projects: Sequence[Unreported],
    units: Mapping[str, Unit],
    sent: Mapping[tuple[str, str | None], Mapping[str, Any]],
    options: Options,
) -> list[Notice]:
    """The reporting notices (监控任务通知) when reporting opens: one to each unit with projects, naming
    them and the deadline; none to a unit already sent this notice for exactly these projects."""
    by_unit: dict[str, list[Unreported]] = {}
    for r in projects:
        by_unit.setdefault(r["unit_code"], []).append(r)
    out = []
    for code in sorted(by_unit):
        unit, snap = units.get(code), {"projects": sorted(r["project_code"] for r in by_unit[code])}
        to = unit_recipients(unit)
        if to and sent.get(("task", code)) != snap:
            view = views.task(checkpoint, unit, by_unit[code], options.for_unit(code))
            out.append(Notice("task", "task", code, to, (), snap, view))
    return out


def reminders(
    checkpoint: str,
    unreported: Sequence[Unreported],
    units: Mapping[str, Unit],
    round_key: str,
    sent: Mapping[tuple[str, str | None], Mapping[str, Any]],
    options: Options,
) -> list[Notice]:
    """A reminder round (催报): one message to each unit that still has unreported projects, unless
    this round already told it of exactly these projects (an overdue notice once the round's date is
    after the report deadline: unreported_notice)."""
    by_unit: dict[str, list[Unreported]] = {}
    for r in unreported:
        by_unit.setdefault(r["unit_code"], []).append(r)
    out = []
    for code in sorted(by_unit):
        snap = {"not_reported": sorted(r["project_code"] for r in by_unit[code]), "round": round_key}
        out += unreported_notice(checkpoint, units.get(code), by_unit[code], snap, sent, options)
    return out


def decide(
    checkpoint: str,
    results: Sequence[StoredResult],
    units: Mapping[str, Unit],
    previous: Mapping[str, str | None],
    previous_checkpoint: str | None,
    sent: Mapping[tuple[str, str | None], Mapping[str, Any]],
    options: Options,
    exempt: Mapping[str, Exemption] = NO_EXEMPTIONS,
) -> list[Notice]:
    """Every notice this checkpoint's results call for that was not already queued with the same content
    (`exempt`: the exemptions in force, see unit_notices)."""
    names = {r["project_code"]: r["project_name"] for r in results}
    notices = unit_notices(
        checkpoint, results, units, previous, previous_checkpoint, sent, options, names, exempt
    )
    summary_view = views.summary(checkpoint, results, units, previous, previous_checkpoint, options)
    return notices + summary_notice(summary_view, sent.get(("summary", None)), options)


def unit_notices(
    checkpoint: str,
    results: Sequence[StoredResult],
    units: Mapping[str, Unit],
    previous: Mapping[str, str | None],
    previous_checkpoint: str | None,
    sent: Mapping[tuple[str, str | None], Mapping[str, Any]],
    options: Options,
    names: Mapping[str, str],
    exempt: Mapping[str, Exemption] = NO_EXEMPTIONS,
) -> list[Notice]:
    """The digests (or all-clears) and reminders of the units in `results`, unit by unit in code order.
    `results` must hold every project of each unit in it (a chunk of whole units will do; green and
    unreported projects need no indicators); `previous` and `sent` need only cover those units and
    projects; `names` gives project names for what changed since the unit was last told.

    `exempt` (project code -> exemption in force): an exempted yellow/red project warns nobody. It
    neither starts nor changes a digest, nor copies the supervisor; a digest sent for the unit's
    other warnings (or because a project left the warnings) lists it as exempted."""
    by_unit: dict[str, list[StoredResult]] = {}
    for r in results:
        by_unit.setdefault(r["unit_code"], []).append(r)
    notices: list[Notice] = []
    for code in sorted(by_unit):
        rows = by_unit[code]
        unit = units.get(code)
        to = unit_recipients(unit)
        if not to:
            continue
        snap = warning_snapshot(rows, exempt)
        before = sent.get(("warning", code))
        reason = change_reason(None if before is None else warned_part(before), warned_part(snap))
        if reason:
            red = any(r["light"] == "red" and r["project_code"] not in exempt for r in rows)
            supervisor = units.get(unit.supervisor_code) if unit and unit.supervisor_code else None
            cc = (
                unit_recipients(supervisor)
                if red and options.cc_supervisor_on_red and supervisor is not unit
                else ()
            )
            view = views.warning(
                checkpoint,
                unit,
                rows,
                reason,
                changes(before, snap, names),
                previous,
                previous_checkpoint,
                options,
                exempt,
            )
            view["supervisor_name"] = supervisor.name if cc and supervisor else ""
            notices.append(Notice("warning", reason, code, to, cc, snap, view))
        elif not snap and before is None and options.send_all_clear and ("all_clear", code) not in sent:
            view = views.all_clear(checkpoint, unit, rows, options)
            notices.append(Notice("all_clear", "first", code, to, (), {"green": len(rows)}, view))
        missing = [r for r in rows if r["status"] == "not_reported"]
        snap = {"not_reported": sorted(r["project_code"] for r in missing)}
        notices += unreported_notice(checkpoint, unit, missing, snap, sent, options)
    return notices


def summary_notice(
    summary_view: dict[str, Any], sent: Mapping[str, Any] | None, options: Options
) -> list[Notice]:
    """The bureau summary (views.summary / views.bureau_summary), unless already queued as it stands."""
    summary_snap = summary_view["snapshot"]
    if options.bureau_recipients and sent != summary_snap:
        to = tuple(Recipient(options.bureau_name, e) for e in options.bureau_recipients)
        return [Notice("summary", "summary", None, to, (), summary_snap, summary_view)]
    return []

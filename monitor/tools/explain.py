"""Why one project has its lights: a project code, a checkpoint and a rule source in; the whole chain
out: its inputs (unit, department, budget, carry-over, executed, fund flag, category), the time
progress or seasonal profile used, each rule value with the file:line that set it (default file or
override layer), every ratio and threshold, the lights, and the notifications sent about it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from monitor.cases.exemptions import DEFAULT_ZONE
from monitor.config.yamlfile import Loc
from monitor.core.errors import NotFound
from monitor.core.model import Checkpoint, Direction, Indicator, Inputs, Kind, Project, ProjectResult, Unit
from monitor.core.wording import digits_for, pct_threshold, percent, progress, wan
from monitor.core.workdays import local_time
from monitor.db import history
from monitor.db.engine import OUTBOX
from monitor.db.inputs import load_inputs
from monitor.db.reads import report_provenance
from monitor.evaluate.core import evaluate_project
from monitor.evaluate.lights.registry import infer_kind
from monitor.evaluate.stored import load_results
from monitor.rules.fields import FIELD_PATHS
from monitor.rules.load import Origin
from monitor.rules.policy import Policies
from monitor.rules.sources import RuleSource
from monitor.tools.versions import version_lines


def _has(data: Any, loc: Loc) -> bool:
    for key in loc:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


@dataclass(frozen=True)
class Sent:
    id: int
    kind: str
    reason: str
    status: str
    sent_at: str


@dataclass
class Explanation:
    project_code: str
    checkpoint: Checkpoint
    source: RuleSource
    inputs: Inputs
    result: ProjectResult
    lines: list[str]
    notifications: list[Sent]
    stored_light: str | None  # the stored result's light, if the checkpoint was run ("none" if absent)


def explain(
    engine: Engine, code: str, checkpoint: Checkpoint, source: RuleSource, time_zone: str = DEFAULT_ZONE
) -> Explanation:
    """Re-evaluate one project from its stored inputs with `source` and tell the whole chain (times in
    `time_zone`); raises NotFound (a LookupError) if there is no such project."""
    cp = str(checkpoint)
    with engine.connect() as conn:
        inputs = load_inputs(conn, cp, [code])
        if not inputs.projects:
            raise NotFound(f"no project {code!r} in the database")
        stored = load_results(conn, cp, unit=inputs.projects[0].unit_code)
        sent = notifications(conn, cp, code, inputs.projects[0].unit_code, time_zone)
        origin = report_provenance(conn, cp, code)
        versions = version_lines(history.versions(conn, cp, code), history.last_run(conn, cp), time_zone)
    project = inputs.projects[0]
    unit = inputs.units.get(project.unit_code)
    policies = Policies(source.rules)
    result = evaluate_project(
        policies,
        checkpoint,
        project,
        unit,
        inputs.indicators.get(code, ()),
        inputs.project_reports.get(code),
        inputs.indicator_reports,
    )
    row = next((r for r in stored if r["project_code"] == code), None)
    stored_light = (row["light"] or "not_reported") if row else None
    lines = chain(policies, source, checkpoint, inputs, result)
    if origin is not None:  # which report the numbers are: through which channel, from where, when
        channel, said, at = origin
        via = "the unit's reporting page (web)" if channel == "web" else "monitor import"
        at_local = local_time(at, time_zone) if isinstance(at, dt.datetime) else str(at)
        where = next((i for i, line in enumerate(lines) if line.startswith("  executed")), len(lines) - 1)
        lines.insert(where + 1, f"  reported      through {via}: {said}, at {at_local}")
    if versions:  # every version of the report, and which one the last run used
        where = next((i for i, line in enumerate(lines) if line.startswith("  reported")), len(lines) - 1)
        lines[where + 1 : where + 1] = versions
    return Explanation(code, checkpoint, source, inputs, result, lines, sent, stored_light)


def notifications(
    conn: Any, checkpoint: str, code: str, unit_code: str, time_zone: str = DEFAULT_ZONE
) -> list[Sent]:
    """Outbox rows of `checkpoint` whose snapshot mentions the project (digests by project code,
    reminders, overdue notices and the bureau summary by their lists), plus an all-clear to its unit;
    sent at, in `time_zone`."""
    q = select(OUTBOX).where(OUTBOX.c.checkpoint == checkpoint).order_by(OUTBOX.c.id)
    out = []
    for r in conn.execute(q):
        if mentions(r.kind, json.loads(r.snapshot), code) or (
            r.kind == "all_clear" and r.unit_code == unit_code
        ):
            sent_at = local_time(r.sent_at, time_zone) if r.sent_at else "-"
            out.append(Sent(r.id, r.kind, r.reason, r.status, sent_at))
    return out


def mentions(kind: str, snapshot: Mapping[str, Any], code: str) -> bool:
    if kind == "warning":
        return code in snapshot
    if kind in ("reminder", "overdue"):
        return code in snapshot.get("not_reported", ())
    if kind == "summary":
        return code in snapshot.get("red", ()) or code in snapshot.get("not_reported", ())
    if kind in ("case_reminder", "case_escalation"):
        return code in snapshot.get("cases", ())
    return False


# --- the chain, in words ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chain:
    """Everything the explanation of one project reads."""

    policies: Policies
    source: RuleSource
    checkpoint: Checkpoint
    inputs: Inputs
    result: ProjectResult
    key: tuple[int, ...]  # the matching overrides

    @property
    def project(self) -> Project:
        return self.inputs.projects[0]

    def where(self, level2: str | None = None) -> dict[str, str]:
        """file:line (or override layer) of every setting, for the project or an indicator's 二级: the
        policy's own record (RuleSet.origins and the overrides), the one the reasons name too."""
        p = self.policies
        if level2 is None:
            origins = p.project_policy(self.key).origins
        else:
            origins = p.indicator_policy(self.key, level2).origins
        return {name: str(origins.get(name) or Origin()) for name in FIELD_PATHS}

    def profile_origin(self, name: str | None) -> str:
        for doc in self.source.docs:
            if name and _has(doc.data, ("profiles", name)):
                return f"; profile {name} at {Path(doc.name).name}:{doc.line_of(('profiles', name))}"
        return ""


def chain(
    policies: Policies, source: RuleSource, checkpoint: Checkpoint, inputs: Inputs, result: ProjectResult
) -> list[str]:
    project = inputs.projects[0]
    unit = inputs.units.get(project.unit_code)
    key = policies.project_key(project, unit)
    c = _Chain(policies, source, checkpoint, inputs, result, key)
    mode = policies.project_policy(key).combine
    return [
        *input_lines(inputs, unit, checkpoint),
        "",
        *layer_lines(source, key),
        "",
        *budget_lines(c),
        "",
        *indicator_lines(c),
        "",
        f"lights: budget {result.budget_light or '-'}, target {result.target_light or 'none measurable'}, "
        f"project {result.light or 'not reported'} (combine: {mode}, {c.where()['combine']})",
    ]


def input_lines(inputs: Inputs, unit: Unit | None, checkpoint: Checkpoint) -> list[str]:
    p = inputs.projects[0]
    dept_code = unit.supervisor_code if unit and unit.supervisor_code else p.unit_code
    dept = inputs.units.get(dept_code)
    report = inputs.project_reports.get(p.code)
    executed = f"{wan(report.executed)} (1-{checkpoint.month}月)" if report else "not reported (未报送)"
    return [
        "inputs",
        f"  unit          {p.unit_code} {unit.name if unit else '(unknown unit)'}",
        f"  department    {dept_code} {dept.name if dept else ''}".rstrip(),
        f"  budget        {wan(p.budget)}, carry-over {wan(p.carryover)}",
        f"  executed      {executed}",
        f"  fund flag     {p.fund_flag or '-'}    category {p.category or '-'}    profile {p.profile or '-'}",
    ]


def _target(ind: Indicator) -> str:
    if ind.direction is Direction.QUALITATIVE:
        return f"“{ind.target}” (定性)"
    return f"{ind.direction.value}{ind.target}{ind.measure_unit}"


def _is_zero(text: str) -> bool:
    try:
        return Fraction(text) == 0
    except (ValueError, ZeroDivisionError):
        return False


def _shown(value: Any) -> str:
    return "、".join(str(v) for v in value) if isinstance(value, tuple | list) else str(value)


def layer_lines(source: RuleSource, key: Sequence[int]) -> list[str]:
    rules = source.rules
    files = ", ".join(Path(d.name).name for d in source.docs)
    out = [f"rule layers (rules hash {rules.hash[:12]})", f"  files merged in this order: {files}"]
    if not key:
        return [*out, "  no override matches this project"]
    for i in key:
        src = rules.overrides[i]
        match = src.override.match.model_dump(exclude_none=True)
        crit = ", ".join(f"{k} {_shown(v)}" for k, v in match.items())
        out.append(f"  override “{src.override.name}” ({src.where}) matches: {crit}")
    return out


def budget_lines(c: _Chain) -> list[str]:
    p, policy, where = c.project, c.policies.project_policy(c.key), c.where()
    profile = policy.profile or p.profile
    p_value, note = c.policies.progress(c.checkpoint, profile)
    out = [
        "time progress",
        f"  P = {progress(p_value)} ({note}; time_progress.mode {c.policies.rules.time_progress_mode} "
        f"at {where['time_progress_mode']}{c.profile_origin(profile)})",
    ]
    if policy.profile:
        out.append(f"  profile “{policy.profile}” set by an override (see the layers above)")
    out.append("budget light")
    report = c.inputs.project_reports.get(p.code)
    if report is None:
        return [*out, "  not reported: no budget light, the project is listed as 未报送"]
    base_fen = p.budget + (p.carryover if policy.budget_base == "budget_plus_carryover" else 0)
    e = Fraction(report.executed, base_fen)
    out += [
        f"  base          {policy.budget_base} = {wan(base_fen)} ({where['budget_base']})",
        f"  E = executed / base = {percent(e)}",
    ]
    if p_value:
        digits = digits_for(policy.budget_red, policy.budget_yellow)
        out.append(f"  r = E / P = {percent(e / p_value, digits=digits)}")
    return [
        *out,
        f"  red below     {pct_threshold(policy.budget_red)} ({where['budget_red_below']})",
        f"  yellow below  {pct_threshold(policy.budget_yellow)} ({where['budget_yellow_below']})",
        f"  → {c.result.budget_light}: {c.result.reasons[0]}",
    ]


def indicator_lines(c: _Chain) -> list[str]:
    p = c.project
    indicators = c.inputs.indicators.get(p.code, [])
    if not indicators:
        return ["indicators: none"]
    out = ["indicators"]
    for ind, res in zip(indicators, c.result.indicators, strict=True):
        report = c.inputs.indicator_reports.get((p.code, ind.code))
        kind = infer_kind(ind)
        actual = report.actual if report else None
        shown = "no report row" if report is None else (actual if actual not in (None, "") else "blank")
        out.append(
            f"  {ind.code} {ind.name} [{kind.value}{'' if ind.kind else ', inferred'}; 二级 {ind.level2}] "
            f"target {_target(ind)}, actual {shown}"
        )
        if report is not None and report.possibility:
            out.append(f"      完成目标可能性 {report.possibility}")
        out += [f"      {t}" for t in thresholds(c, ind, kind)]
        if res.ratio is None:
            ratio = ""
        elif kind is Kind.CUMULATIVE:
            ratio = f", ratio {percent(res.ratio)}"
        else:  # a level's deviation from its target, shown as its reason shows it
            ratio = f", deviation {percent(abs(res.ratio), up=res.light.value == 'red')}"
        out.append(f"      → {res.light.value}{ratio}: {res.reason}")
    return out


def thresholds(c: _Chain, ind: Indicator, kind: Kind) -> list[str]:
    """The thresholds an indicator of this kind is judged by, each with where it was set."""
    pol = c.policies.indicator_policy(c.key, ind.level2)
    where = c.where(ind.level2)
    impossible = f"forced red when 完成目标可能性 is {_shown(sorted(pol.impossible))} ({where['impossible']})"
    if kind is Kind.CUMULATIVE:
        profile = ind.profile or pol.profile or c.policies.project_policy(c.key).profile or c.project.profile
        p_value, note = c.policies.progress(c.checkpoint, profile)
        return [
            f"P = {progress(p_value)} ({note}{c.profile_origin(profile)})",
            f"red below {pct_threshold(pol.red)} ({where['cumulative_red_below']}), "
            f"yellow below {pct_threshold(pol.yellow)} ({where['cumulative_yellow_below']}), "
            f"blue from {pct_threshold(pol.blue)} ({where['cumulative_blue_from']})",
            impossible,
        ]
    if kind is Kind.LEVEL:
        band = " (a target of 0 has no band)" if _is_zero(ind.target) else ""
        return [
            f"tolerance {pct_threshold(pol.tolerance)} of the target ({where['level_tolerance']}){band}",
            impossible,
        ]
    if kind is Kind.QUALITATIVE:
        answers = ", ".join(f"{a} → {light}" for a, light in pol.qualitative.items())
        sources = ", ".join(where[f"qualitative_{k}"] for k in ("green", "yellow", "red"))
        return [f"answers: {answers} ({sources})", impossible]
    return [f"due {ind.target}, checkpoint ends {c.checkpoint.end_date.isoformat()}", impossible]


def as_text(e: Explanation) -> list[str]:
    p = e.inputs.projects[0]
    head = [
        f"project {p.code} {p.name} · checkpoint {e.checkpoint} · {e.source.label}",
        "",
        *e.lines,
        "",
    ]
    if e.stored_light is not None and e.stored_light != (e.result.light or "not_reported"):
        head.append(f"note: the stored result of {e.checkpoint} says {e.stored_light} (another rule version)")
    if not e.notifications:
        return [*head, f"notifications about it at {e.checkpoint}: none"]
    out = [*head, f"notifications about it at {e.checkpoint}:"]
    for s in e.notifications:
        out.append(f"  #{s.id}  {s.kind}  reason {s.reason}  status {s.status}  sent {s.sent_at}")
    return out

"""The pure evaluation core: compiled rules, a checkpoint and one checkpoint's inputs in; one
ProjectResult per project out (budget light, target light, project light, indicator lights, and
the reasons). No database, no clock, no I/O: everything it needs is passed in. The rules
themselves live one per module in monitor.evaluate.lights; this module applies them to a project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.core.model import (
    Checkpoint,
    Indicator,
    IndicatorReport,
    IndicatorResult,
    Inputs,
    Kind,
    Light,
    Project,
    ProjectReport,
    ProjectResult,
    Status,
    Unit,
)
from monitor.evaluate.facts import Context, Words
from monitor.evaluate.grounds import grounds
from monitor.evaluate.lights import budget, indicator, not_reported
from monitor.evaluate.lights.combine import ALL_UNMEASURED, combine, worst
from monitor.evaluate.lights.registry import infer_kind
from monitor.evaluate.shapes import one_line
from monitor.rules.policy import Policies


def judge_indicator(
    policies: Policies,
    checkpoint: Checkpoint,
    key: tuple[int, ...],
    project_profile: str | None,
    ind: Indicator,
    report: IndicatorReport | None,
) -> IndicatorResult:
    """One indicator's light and reason under the policy for its project's overrides and its 二级."""
    pol = policies.indicator_policy(key, ind.level2)
    kind = infer_kind(ind)
    p, note = policies.progress(checkpoint, ind.profile or pol.profile or project_profile)
    ctx = Context(checkpoint, p, note, pol)
    j = indicator.judge(ind, kind, report, ctx)
    actual = report.actual if report else None
    said = indicator.words(ind, kind, actual, report is not None, indicator.forced(report, ctx), ctx, j.light)
    return IndicatorResult(
        ind.code,
        ind.name,
        kind,
        j.light,
        j.ratio,
        said.text + grounds(pol.origins, cited(said, kind, bool(ind.profile))),
        ind.target,
        actual,
        ind.measure_unit,
        ind.direction.value,
    )


def cited(said: Words, kind: Kind, own_profile: bool) -> tuple[str, ...]:
    """The rule values an indicator's reason cites: a cumulative light also rests on the profile the
    rules chose (not on one the indicator names itself)."""
    return (*said.uses, "profile") if said.uses and kind is Kind.CUMULATIVE and not own_profile else said.uses


def project_reasons(
    first: str, indicators: Sequence[tuple[str, Light, str]], target: Light | None
) -> tuple[str, ...]:
    """A reported project's reasons: its budget light's (`first`), then its yellow and red
    indicators' (`indicators`: name, light and reason of each)."""
    reasons = [first]
    if target is None and indicators:
        reasons.append(ALL_UNMEASURED)
    warned = (Light.YELLOW, Light.RED)
    reasons += [f"{one_line(name)}：{reason}" for name, light, reason in indicators if light in warned]
    return tuple(reasons)


def evaluate_project(
    policies: Policies,
    checkpoint: Checkpoint,
    project: Project,
    unit: Unit | None,
    indicators: Sequence[Indicator],
    report: ProjectReport | None,
    indicator_reports: Mapping[tuple[str, str], IndicatorReport],
) -> ProjectResult:
    """Evaluate one project at one checkpoint."""
    key = policies.project_key(project, unit)
    policy = policies.project_policy(key)
    profile = policy.profile or project.profile
    p, p_note = policies.progress(checkpoint, profile)
    results = tuple(
        judge_indicator(
            policies, checkpoint, key, profile, ind, indicator_reports.get((project.code, ind.code))
        )
        for ind in indicators
    )
    cp = str(checkpoint)
    if report is None:
        return ProjectResult(
            cp, project.code, project.name, project.unit_code, Status.NOT_REPORTED, project.budget,
            None, None, float(p), None, None, None, (not_reported.project_words(checkpoint),), results,
        )  # fmt: skip
    amount = budget.base(project.budget, project.carryover, policy)
    b_light = budget.judge(report.executed, amount, p, policy)
    b_said = budget.words(report.executed, amount, p, p_note, checkpoint.month, policy, b_light)
    t_light = worst(r.light for r in results)
    light = combine(policy.combine, b_light, t_light)
    named = [(r.name, r.light, r.reason) for r in results]
    reasons = project_reasons(b_said.text + grounds(policy.origins, b_said.uses), named, t_light)
    return ProjectResult(
        cp, project.code, project.name, project.unit_code, Status.REPORTED, project.budget,
        report.executed, report.executed / amount, float(p), b_light, t_light, light, reasons, results,
    )  # fmt: skip


def evaluate(policies: Policies, checkpoint: Checkpoint, inputs: Inputs) -> list[ProjectResult]:
    """Evaluate every project of `inputs` at `checkpoint`, in input order."""
    return [
        evaluate_project(
            policies,
            checkpoint,
            project,
            inputs.units.get(project.unit_code),
            inputs.indicators.get(project.code, ()),
            inputs.project_reports.get(project.code),
            inputs.indicator_reports,
        )
        for project in inputs.projects
    ]

"""The pure evaluation core: compiled rules, a checkpoint and one checkpoint's inputs in; one
ProjectResult per project out (budget light, target light, project light, indicator lights, and
the reasons). No database, no clock, no I/O: everything it needs is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

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
from monitor.core.wording import digits_for, pct_threshold, percent_nd, progress, wan
from monitor.evaluate.kinds import KINDS, Context, Judgement, infer_kind
from monitor.rules.load import Origin
from monitor.rules.policy import Policies, ProjectPolicy

GREEN_LIKE = (Light.GREEN, Light.BLUE)


def worst(lights: Iterable[Light]) -> Light | None:
    """The worst light among measurable ones (blue counts as green); None if none is measurable."""
    out: Light | None = None
    for light in lights:
        if light is Light.NA:
            continue
        light = Light.GREEN if light is Light.BLUE else light
        if out is None or light.severity > out.severity:
            out = light
    return out


def combine(mode: str, budget: Light, target: Light | None) -> Light:
    """Project light from the two lights: `worst` of both, or the `matrix` of domain.md §4."""
    if mode == "matrix":
        if budget is not Light.GREEN:
            return Light.RED
        return Light.GREEN if target in (None, Light.GREEN) else Light.YELLOW
    return worst([budget] if target is None else [budget, target]) or budget


def grounds(origins: Mapping[str, Origin], used: Sequence[str]) -> str:
    """A reason's ending: where each rule value it used was set (`used`: RuleSet fields, or "profile"
    for a seasonal profile an override chose), each source once, the lines of one file together:
    `（依据规则文件 local.yaml 第3行）`, `（依据规则文件 default.yaml 第18、19行）`,
    `（依据覆盖规则“名称”（local.yaml 第12行））`. Empty when it used none (a milestone, 不可测)."""
    files: dict[str, list[int]] = {}
    named: dict[str, None] = {}
    for o in (origins[f] for f in used if f in origins):
        if o.override is None and o.file and o.line:
            lines = files.setdefault(o.file, [])
            if not lines:
                named[o.file] = None  # the file's place among the sources
            if o.line not in lines:
                lines.append(o.line)
        else:
            named[o.words] = None
    words = [
        f"规则文件 {k} 第{'、'.join(str(n) for n in sorted(files[k]))}行" if k in files else k for k in named
    ]
    return f"（依据{'、'.join(words)}）" if words else ""


def budget_light(
    project: Project, executed: int, policy: ProjectPolicy, p: Fraction, p_note: str, month: int
) -> tuple[Light, float, str]:
    """Budget execution light: r = (executed / base) / P against the policy's thresholds, compared
    exactly by integer cross-multiplication (r < t ⟺ executed·P.den·t.den < t.num·P.num·base)."""
    base = project.budget + (project.carryover if policy.budget_base == "budget_plus_carryover" else 0)
    base_word = "预算（含上年结转）" if policy.budget_base == "budget_plus_carryover" else "预算"
    head = (
        f"预算执行率{percent_nd(executed, base)}"
        f"（1-{month}月执行{wan(executed)}/{base_word}{wan(base)}），"
        f"序时进度{progress(p)}（{p_note}）"
    )
    e = executed / base
    pn, pd = p.numerator, p.denominator
    if pn == 0:
        return Light.GREEN, e, f"{head}，本期尚无序时要求 → 绿灯{grounds(policy.origins, ['profile'])}"
    rn, rd = executed * pd, base * pn  # r = rn / rd
    red, yellow = policy.budget_red, policy.budget_yellow
    head += f"，为序时进度的{percent_nd(rn, rd, digits=digits_for(red, yellow))}"
    used: tuple[str, ...]
    if rn * red.denominator < red.numerator * rd:
        light, rule, used = Light.RED, f"低于{pct_threshold(red)}为红灯", ("budget_red_below",)
    elif rn * yellow.denominator < yellow.numerator * rd:
        light, rule = Light.YELLOW, f"不低于{pct_threshold(red)}、低于{pct_threshold(yellow)}为黄灯"
        used = "budget_red_below", "budget_yellow_below"
    else:
        light, rule, used = Light.GREEN, f"达到{pct_threshold(yellow)}为绿灯", ("budget_yellow_below",)
    return light, e, f"{head}（{rule}）→ {light.chinese}灯{grounds(policy.origins, [*used, 'profile'])}"


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
    actual = report.actual if report else None
    if report is not None and report.possibility and report.possibility.strip() in pol.impossible:
        j = Judgement(
            Light.RED, None, f"单位填报完成目标可能性为“{report.possibility.strip()}” → 红灯", ("impossible",)
        )
    elif report is None and kind is not Kind.MILESTONE:
        j = Judgement(Light.NA, None, "未填报该指标执行情况，本期不可测")
    else:
        profile = ind.profile or pol.profile or project_profile
        p, note = policies.progress(checkpoint, profile)
        j = KINDS[kind].judge(ind, actual, Context(checkpoint, p, note, pol))
    used = (*j.uses, "profile") if j.uses and kind is Kind.CUMULATIVE and not ind.profile else j.uses
    reason = j.reason + grounds(pol.origins, used)
    return IndicatorResult(
        ind.code,
        ind.name,
        kind,
        j.light,
        j.ratio,
        reason,
        ind.target,
        actual,
        ind.measure_unit,
        ind.direction.value,
    )


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
            cp,
            project.code,
            project.name,
            project.unit_code,
            Status.NOT_REPORTED,
            project.budget,
            None,
            None,
            float(p),
            None,
            None,
            None,
            (f"未报送1-{checkpoint.month}月预算执行数据（未报送），请尽快报送",),
            results,
        )
    b_light, e, b_reason = budget_light(project, report.executed, policy, p, p_note, checkpoint.month)
    t_light = worst(r.light for r in results)
    light = combine(policy.combine, b_light, t_light)
    reasons = [b_reason]
    if t_light is None and results:
        reasons.append("全部绩效指标本期不可测，项目灯按预算执行灯确定")
    reasons += [f"{r.name}：{r.reason}" for r in results if r.light in (Light.YELLOW, Light.RED)]
    return ProjectResult(
        cp,
        project.code,
        project.name,
        project.unit_code,
        Status.REPORTED,
        project.budget,
        report.executed,
        float(e),
        float(p),
        b_light,
        t_light,
        light,
        tuple(reasons),
        results,
    )


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

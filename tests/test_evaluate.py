"""The pure evaluation core against domain.md §4: every boundary, every kind, combination modes,
profiles, day-based progress and overrides; plus invariants checked with hypothesis."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.model import (
    FEN_PER_WAN,
    Checkpoint,
    Direction,
    Indicator,
    IndicatorReport,
    Kind,
    Light,
    Project,
    ProjectReport,
    ProjectResult,
    Status,
    Unit,
)
from monitor.evaluate.core import evaluate_project
from monitor.evaluate.lights.registry import infer_kind
from monitor.rules.load import load_rules
from monitor.rules.policy import Policies

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = Policies(load_rules(ROOT / "rules"))
MAY, AUG = Checkpoint(2025, 5), Checkpoint(2025, 8)
G, Y, R, B, NA = Light.GREEN, Light.YELLOW, Light.RED, Light.BLUE, Light.NA


def fen(wan: str) -> int:
    return int(Decimal(wan) * FEN_PER_WAN)


def project(budget: str = "100", **kw: object) -> Project:
    return Project("P1", "测试项目", "U1", fen(budget), **kw)  # type: ignore[arg-type]


def indicator(
    target: str, direction: str = "≥", unit: str = "", level2: str = "数量", **kw: object
) -> Indicator:
    return Indicator("P1", "I1", "产出指标", level2, "指标", Direction(direction), target, unit, **kw)  # type: ignore[arg-type]


def evaluate(
    p: Project,
    executed: str | None,
    cp: Checkpoint = MAY,
    inds: tuple[Indicator, ...] = (),
    actuals: dict[str, str | None] | None = None,
    possibility: str | None = None,
    policies: Policies = DEFAULT,
    unit: Unit | None = None,
) -> ProjectResult:
    report = ProjectReport(str(cp), p.code, fen(executed)) if executed is not None else None
    reps = {
        (p.code, code): IndicatorReport(str(cp), p.code, code, actual, possibility=possibility)
        for code, actual in (actuals or {}).items()
    }
    return evaluate_project(policies, cp, p, unit, inds, report, reps)


def light_of(
    target: str,
    actual: str | None,
    direction: str = "≥",
    unit: str = "",
    level2: str = "数量",
    cp: Checkpoint = MAY,
    **kw: object,
) -> Light:
    r = evaluate(project(), "100", cp, (indicator(target, direction, unit, level2, **kw),), {"I1": actual})
    return r.indicators[0].light


# --- budget execution light (domain.md §4 and the worked examples of §6) ---------------------------


@pytest.mark.parametrize(
    ("budget", "executed", "cp", "expected"),
    [
        ("1180", "708", MAY, G),
        ("1180", "944", AUG, G),  # 动物疫病强制免疫疫苗采购
        ("300", "30", MAY, R),
        ("300", "150", AUG, Y),  # 葡萄酒产业宣传推介
        ("380", "0", MAY, R),
        ("380", "95", AUG, R),  # 森林草原防灭火专项经费
        ("100", "25", MAY, Y),
        ("100", "40", AUG, Y),  # r = 0.60 exactly lands on yellow
        ("100", "24.99", MAY, R),
        ("100", "39.99", AUG, R),
        ("100", "24.999999", MAY, R),  # one fen below the boundary
        ("12", "4", MAY, G),  # E = 1/3, r = 0.80 exactly lands on green
        ("100", "33.333333", MAY, Y),
        ("100", "33.333334", MAY, G),
        ("100", "53.333333", AUG, Y),
        ("100", "53.333334", AUG, G),
        ("300", "75", MAY, Y),  # r = 0.6 with a non-round budget
        ("0.03", "0.0075", MAY, Y),  # tiny amounts stay exact
    ],
)
def test_budget_light_boundaries(budget: str, executed: str, cp: Checkpoint, expected: Light) -> None:
    assert evaluate(project(budget), executed, cp).budget_light is expected


def test_zero_execution_in_may_is_red() -> None:
    r = evaluate(project("380"), "0", MAY)
    assert r.budget_light is R and r.light is R


def test_budget_reason_states_rate_progress_ratio_and_threshold() -> None:
    r = evaluate(project("100"), "25", MAY)
    assert r.reasons[0].startswith("预算执行率25.0%")
    assert "序时进度41.7%" in r.reasons[0]
    assert "为序时进度的60.0%" in r.reasons[0] and "低于80%为黄灯" in r.reasons[0]


def test_ratio_just_below_a_threshold_never_reads_as_the_threshold() -> None:
    r = evaluate(project("100"), "24.99", MAY)
    assert "为序时进度的59.9%" in r.reasons[0] and r.budget_light is R


def test_not_reported_project_gets_no_colour() -> None:
    r = evaluate(project(), None, MAY, (indicator("120000", unit="头"),), {"I1": "50000"})
    assert r.status is Status.NOT_REPORTED
    assert (r.light, r.budget_light, r.target_light) == (None, None, None)
    assert "未报送" in r.reasons[0]


def test_carryover_counts_in_the_base_only_when_configured(tmp_path: Path) -> None:
    p = project("100", carryover=fen("50"))
    assert evaluate(p, "30", MAY).budget_light is Y  # 30/100 / (5/12) = 0.72
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("budget: {base: budget_plus_carryover}\n", encoding="utf-8")
    assert evaluate(p, "30", MAY, policies=Policies(load_rules(rules))).budget_light is R  # 0.2/0.4167 = 0.48


# --- indicator kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "expected"),
    [("30000", Y), ("29999", R), ("40000", G), ("39999", Y), ("60000", B), ("59999", G), ("0", R)],
)
def test_cumulative_boundaries_in_may(actual: str, expected: Light) -> None:
    # 免疫注射牲畜 ≥ 120,000 头: May expects 50,000; 30,000 is 60 % of schedule → yellow.
    assert light_of("120000", actual, unit="头") is expected


@pytest.mark.parametrize(
    ("target", "direction", "actual", "expected"),
    [
        ("90", "≥", "90", G),
        ("90", "≥", "86", Y),
        ("90", "≥", "84", R),  # 群体免疫密度
        ("90", "≥", "85.5", Y),
        ("90", "≥", "85.49", R),  # missed by exactly 5 % → yellow
        ("24", "≤", "31", R),
        ("24", "≤", "24", G),
        ("24", "≤", "25.2", Y),
        ("24", "≤", "25.21", R),  # 路灯修复时长
        ("0", "=", "0", G),
        ("0", "=", "1", R),
        ("0", "≤", "0.01", R),  # target 0 has no tolerance band
        ("100", "=", "100", G),
        ("100", "=", "95", Y),
        ("100", "=", "105", Y),
        ("100", "=", "105.01", R),
        ("90", ">", "90", Y),
        ("90", ">", "90.1", G),
        ("24", "<", "24", Y),
        ("24", "<", "23", G),
        ("98", "≥", "98.6", G),  # a rate is judged on its level, never "236 % of schedule"
    ],
)
def test_level_indicator_boundaries(target: str, direction: str, actual: str, expected: Light) -> None:
    assert light_of(target, actual, direction, unit="%", level2="质量") is expected


def test_level_reason_states_deviation_and_tolerance() -> None:
    r = evaluate(project(), "100", MAY, (indicator("90", unit="%", level2="质量"),), {"I1": "86"})
    assert "偏离目标值4.4%" in r.indicators[0].reason and "不超过5%为黄灯" in r.indicators[0].reason
    r = evaluate(project(), "100", MAY, (indicator("90", unit="%", level2="质量"),), {"I1": "84"})
    assert "偏离目标值6.7%" in r.indicators[0].reason and "超过5%为红灯" in r.indicators[0].reason


@pytest.mark.parametrize(
    ("due", "actual", "cp", "expected"),
    [
        ("2025-06-30", None, MAY, G),  # 项目开工时间: not started at end of May → not yet due
        ("2025-06-30", None, AUG, R),  # not started at end of August → overdue
        ("2025-05-31", None, MAY, G),  # due on the checkpoint's end date is not yet overdue
        ("2025-05-30", None, MAY, R),
        ("2025-06-30", "2025-06-30", AUG, G),
        ("2025-06-30", "2025-07-01", AUG, R),  # done late
        ("2025-06-30", "2025-04-01", MAY, G),
    ],
)
def test_milestone(due: str, actual: str | None, cp: Checkpoint, expected: Light) -> None:
    assert light_of(due, actual, "≤", level2="时效", cp=cp) is expected


def test_milestone_without_a_report_row_is_judged_not_done() -> None:
    r = evaluate(project(), "100", AUG, (indicator("2025-06-30", "≤", level2="时效"),), {})
    assert r.indicators[0].light is R


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("达成目标", G),
        ("部分达成目标并具有一定效果", Y),
        ("未达成目标且效果较差", R),
        ("还行", NA),
        (None, NA),
    ],
)
def test_qualitative(answer: str | None, expected: Light) -> None:
    assert light_of("有效提升", answer, "定性", level2="社会效益") is expected


def test_impossible_declaration_makes_the_indicator_red_whatever_the_numbers() -> None:
    r = evaluate(
        project(), "100", MAY, (indicator("120000", unit="头"),), {"I1": "90000"}, possibility="完全不可能"
    )
    assert r.indicators[0].light is R and r.light is R
    r = evaluate(project(), "100", MAY, (indicator("90", unit="%"),), {"I1": None}, possibility="完全不可能")
    assert r.indicators[0].light is R


def test_indicator_without_actual_or_row_is_not_measurable() -> None:
    inds = (indicator("90", unit="%", level2="服务对象满意度"),)
    assert evaluate(project(), "100", MAY, inds, {"I1": None}).indicators[0].light is NA
    assert evaluate(project(), "100", MAY, inds, {}).indicators[0].light is NA


def test_all_indicators_not_measurable_takes_the_budget_light_alone() -> None:
    r = evaluate(project(), "30", MAY, (indicator("90", unit="%"),), {"I1": None})
    assert r.target_light is None and r.light is r.budget_light is Y


@pytest.mark.parametrize(
    ("target", "direction", "unit", "level2", "kind"),
    [
        ("有效提升", "定性", "", "社会效益", Kind.QUALITATIVE),
        ("明显改善", "≥", "", "社会效益", Kind.QUALITATIVE),  # a text target
        ("2025-06-30", "≤", "", "时效", Kind.MILESTONE),
        ("120000", "≥", "头", "数量", Kind.CUMULATIVE),
        ("50", ">", "场次", "数量", Kind.CUMULATIVE),
        ("95", "≥", "%", "数量", Kind.LEVEL),  # a rate under 数量 is still a level
        ("24", "≤", "小时", "数量", Kind.LEVEL),
        ("300", "≤", "元/人", "成本", Kind.LEVEL),
    ],
)
def test_kind_is_inferred_when_not_given(
    target: str, direction: str, unit: str, level2: str, kind: Kind
) -> None:
    assert infer_kind(indicator(target, direction, unit, level2)) is kind


def test_explicit_kind_wins_over_inference() -> None:
    # A 数量 quantity declared as a level is judged met/missed, not against the schedule.
    assert light_of("120000", "30000", unit="头", kind=Kind.LEVEL) is R
    assert light_of("120000", "30000", unit="头") is Y


# --- combination ---------------------------------------------------------------------------------


def test_project_light_is_the_worse_of_budget_and_target() -> None:
    inds = (indicator("120000", unit="头"),)
    assert evaluate(project(), "100", MAY, inds, {"I1": "29999"}).light is R  # budget green, target red
    assert evaluate(project(), "30", MAY, inds, {"I1": "60000"}).light is Y  # budget yellow, target blue
    r = evaluate(project(), "100", MAY, inds, {"I1": "60000"})
    assert (r.target_light, r.light, r.indicators[0].light) == (G, G, B)  # blue counts as green


def _rules(tmp_path: Path, text: str) -> Policies:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / "default.yaml").write_text(
        (ROOT / "rules" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (d / "zz_local.yaml").write_text(text, encoding="utf-8")
    return Policies(load_rules(d))


def test_matrix_mode(tmp_path: Path) -> None:
    pol = _rules(tmp_path, "combine: matrix\n")
    inds = (indicator("120000", unit="头"),)
    assert evaluate(project(), "100", MAY, inds, {"I1": "50000"}, policies=pol).light is G
    assert evaluate(project(), "100", MAY, inds, {"I1": "35000"}, policies=pol).light is Y  # targets not fine
    assert evaluate(project(), "100", MAY, inds, {"I1": "29999"}, policies=pol).light is Y
    assert evaluate(project(), "30", MAY, inds, {"I1": "50000"}, policies=pol).light is R  # budget not fine
    assert evaluate(project(), "100", MAY, inds, {"I1": None}, policies=pol).light is G


# --- time progress --------------------------------------------------------------------------------


def test_day_based_progress(tmp_path: Path) -> None:
    pol = _rules(tmp_path, "time_progress: {mode: day}\n")
    # 2025-05-31 is day 151 of 365: r = 0.60 exactly at 0.6 × 151/365 × 365 万 = 90.6 万.
    assert evaluate(project("365"), "90.6", MAY, policies=pol).budget_light is Y
    assert evaluate(project("365"), "90.599999", MAY, policies=pol).budget_light is R
    assert (
        evaluate(project("365"), "90.6", MAY).budget_light is R
    )  # month-based P = 5/12 asks more: r = 0.596


def test_seasonal_profile_gives_time_progress() -> None:
    p = project("100", profile="spring_autumn")  # May share 0.45
    assert evaluate(p, "27", MAY).budget_light is Y
    assert evaluate(p, "26.999999", MAY).budget_light is R
    assert "季节曲线“春秋两季集中免疫”5月末累计占比" in evaluate(p, "27", MAY).reasons[0]


def test_indicator_profile_applies_to_cumulative_indicators() -> None:
    inds = (indicator("1000", unit="人次", profile="autumn_construction"),)  # May share 0.16 → 160 expected
    assert evaluate(project(), "100", MAY, inds, {"I1": "96"}).indicators[0].light is Y
    assert evaluate(project(), "100", MAY, inds, {"I1": "95"}).indicators[0].light is R


# --- overrides --------------------------------------------------------------------------------------

OVERRIDES = """
overrides:
  - name: 直达资金从严
    match: {fund_flag: ["01"]}
    budget: {red_below: 0.70, yellow_below: 0.90}
  - name: 质量时效成本按达标与否
    match: {level2: [质量, 时效, 成本]}
    indicators: {level: {tolerance: 0}}
  - name: 大额项目
    match: {budget_min: 200, department: ["D1"]}
    budget: {yellow_below: 0.95}
"""


def test_override_on_fund_flag_is_stricter_and_named_in_the_reason(tmp_path: Path) -> None:
    pol = _rules(tmp_path, OVERRIDES)
    direct = project("100", fund_flag="01")
    assert evaluate(project("100"), "29", MAY, policies=pol).budget_light is Y  # r = 0.696
    r = evaluate(direct, "29", MAY, policies=pol)
    assert r.budget_light is R
    assert "直达资金从严" in r.reasons[0] and "zz_local.yaml 第3行" in r.reasons[0]


def test_override_on_level2_changes_only_those_indicators(tmp_path: Path) -> None:
    pol = _rules(tmp_path, OVERRIDES)
    quality = (indicator("90", unit="%", level2="质量"),)
    social = (indicator("90", unit="%", level2="社会效益"),)
    assert evaluate(project(), "100", MAY, quality, {"I1": "86"}, policies=pol).indicators[0].light is R
    assert evaluate(project(), "100", MAY, social, {"I1": "86"}, policies=pol).indicators[0].light is Y


def test_override_on_department_and_amount(tmp_path: Path) -> None:
    pol = _rules(tmp_path, OVERRIDES)
    unit = Unit("U1", "某单位", ("a@example.gov.cn",), "D1")
    big = project("200")
    assert evaluate(big, "80", MAY, unit=unit, policies=pol).budget_light is G  # r = 0.96 ≥ 0.95
    assert evaluate(big, "78", MAY, unit=unit, policies=pol).budget_light is Y  # r = 0.936 < 0.95
    assert evaluate(big, "78", MAY, policies=pol).budget_light is G  # no department → no override
    assert evaluate(project("199.99"), "78", MAY, unit=unit, policies=pol).budget_light is G


# --- invariants ------------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**12)


@given(budget=st.integers(min_value=1, max_value=10**12), a=amounts, b=amounts, month=st.integers(1, 12))
def test_more_execution_never_gives_a_worse_budget_light(budget: int, a: int, b: int, month: int) -> None:
    lo, hi = sorted((min(a, budget), min(b, budget)))
    p = Project("P1", "x", "U1", budget)
    cp = Checkpoint(2025, month)
    r_lo = evaluate_project(DEFAULT, cp, p, None, (), ProjectReport(str(cp), "P1", lo), {})
    r_hi = evaluate_project(DEFAULT, cp, p, None, (), ProjectReport(str(cp), "P1", hi), {})
    assert r_hi.budget_light is not None and r_lo.budget_light is not None
    assert r_hi.budget_light.severity <= r_lo.budget_light.severity


@given(
    target=st.integers(min_value=1, max_value=10**9),
    a=st.integers(min_value=0, max_value=10**10),
    b=st.integers(min_value=0, max_value=10**10),
    direction=st.sampled_from(["≥", "≤"]),
    unit=st.sampled_from(["头", "%"]),
)
def test_a_better_indicator_value_never_gets_a_worse_light(
    target: int, a: int, b: int, direction: str, unit: str
) -> None:
    lo, hi = sorted((a, b))
    better, worse = (hi, lo) if direction == "≥" else (lo, hi)
    l_better = light_of(str(target), str(better), direction, unit)
    l_worse = light_of(str(target), str(worse), direction, unit)
    assert l_better.severity <= l_worse.severity

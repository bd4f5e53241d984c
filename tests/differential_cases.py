"""Random cases for the differential test (tests/test_differential.py): a rule file the loader accepts
and a small dataset whose reported values sit exactly on, and one unit in the last digit beside, the
thresholds in force for each project and indicator at each checkpoint. The rows are table rows (the
columns of monitor.db.tables), written straight into the database like tests/test_compiled.py does."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from monitor.core.model import FEN_PER_WAN, Checkpoint, Direction, Project, Unit
from monitor.rules.load import rules_from_content
from monitor.rules.policy import Policies

ROOT = Path(__file__).resolve().parent.parent
AMOUNT_MAX = 100_000_000  # 万元: the largest budget bound a rule file may name
CHECKPOINTS = (Checkpoint(2025, 5), Checkpoint(2025, 8))
VARIANT = "zz_variant.yaml"  # after default.yaml: its values win, its overrides come last
Row = dict[str, Any]

FUND_FLAGS = [None, "01", "02", "09"]
CATEGORIES = [None, "一般性项目", "专项资金", "基本建设"]
LEVEL2 = ["数量", "质量", "时效", "成本", "满意度", "社会效益"]
# profiles of rules/default.yaml, two a case may define, and a name no rule file defines
SHIPPED_PROFILES = ["spring_autumn", "semester"]
NEW_PROFILES = ["pa", "p'b"]  # a quote in a name: SQL literals must escape it
UNDEFINED_PROFILE = "未定义曲线"
ANSWERS = [
    "达成目标",
    "部分达成目标并具有一定效果",
    "未达成目标且效果较差",
    "基本达成",
    "完成率100%",
    "达成'目标",
    "说不清",
]
# whitespace the core removes
SPOKEN = ["达成 目标", "达成\u3000目标\t", "达成\u3000目标\n", " 基本达成", "", None]
POSSIBILITIES = [None, None, None, "", "确定能", "有可能", "完全不可能", " 完全不可能 ", "不可能"]
# texts an import would canonicalise or refuse, written straight into the tables
AWKWARD = [
    "0",
    "-5",
    "-0.5",
    "1e3",
    " 20 ",
    "８",
    "abc",
    "",
    "0.000000000001",
    "2025-02-29",
    "20250630",
]
BEYOND_A_DOUBLE = "1" + "0" * 400  # beyond a double: no float ratio, the light decided exactly
THIRTY_DIGITS = "123456789012345678901234567890"
DATES = ["2025-04-30", "2025-05-30", "2025-05-31", "2025-06-01", "2025-08-31", "2025-09-01", "2024-02-29"]
# every P of the rule sets drawn here has a denominator dividing this (months, days of 2025, shares
# with three decimals): budgets that are multiples of it put t × P × budget on a whole fen
ALIGN = 12 * 365 * 1000
# a target that is a multiple of this puts t × P × target on a terminating decimal
TARGET_ALIGN = 3 * 73


@dataclass(frozen=True)
class Case:
    rules: str  # the text of rules/zz_variant.yaml
    units: list[Row]
    projects: list[Row]
    indicators: list[Row]
    project_reports: list[Row]
    indicator_reports: list[Row]


# --- numbers ------------------------------------------------------------------------------------


def decimals(lo: int, hi: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals lo..hi (in units of 10^-places) written with `places` decimals."""
    return st.integers(lo, hi).map(lambda n: Decimal(n).scaleb(-places))


def thresholds() -> st.SearchStrategy[Decimal]:
    """Ratio thresholds as an admin writes them: mostly near the defaults, few digits."""
    common = st.sampled_from(["0", "0.5", "0.55", "0.6", "0.65", "0.75", "0.8", "0.85", "1", "1.2", "1.5"])
    return st.one_of(common.map(Decimal), decimals(0, 300, 2), decimals(0, 3000, 3))


def tolerances() -> st.SearchStrategy[Decimal]:
    common = st.sampled_from(["0", "0.05", "0.07", "0.1", "0.125", "0.333"]).map(Decimal)
    return st.one_of(common, decimals(0, 999, 3))


def text_of(n: int, places: int) -> str:
    """n × 10^-places as a decimal text with exactly `places` decimals."""
    sign, digits = ("-" if n < 0 else ""), str(abs(n)).rjust(places + 1, "0")
    return sign + (f"{digits[:-places]}.{digits[-places:]}" if places else digits)


def terminating_places(x: Fraction) -> int | None:
    """The decimals x needs when written exactly, None if it does not terminate."""
    d = x.denominator
    twos = fives = 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    return max(twos, fives) if d == 1 else None


@st.composite
def beside(draw: st.DrawFn, x: Fraction) -> str:
    """x written exactly when it terminates (else rounded to a few decimals), or one unit in its last
    digit below or above."""
    exact = terminating_places(x)
    places = draw(st.integers(0, 3)) + (exact if exact is not None else draw(st.integers(0, 6)))
    n = round(x * 10**places)
    return text_of(n + draw(st.sampled_from([0, 0, -1, 1])), places)


# --- the rule file ------------------------------------------------------------------------------


def flow(value: Any) -> str:
    """A value as YAML flow text: strings quoted (JSON strings are YAML), decimals as written."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(value)


@st.composite
def ordered(draw: st.DrawFn, names: list[str], full: bool) -> dict[str, Decimal]:
    """Thresholds in order (red_below ≤ yellow_below ≤ blue_from), all of `names` or a subset."""
    chosen = names if full else [n for n in names if draw(st.booleans())]
    values = sorted(draw(st.lists(thresholds(), min_size=len(chosen), max_size=len(chosen))))
    return dict(zip(chosen, values, strict=True))


@st.composite
def indicator_settings(draw: st.DrawFn, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["cumulative"] = draw(ordered(["red_below", "yellow_below", "blue_from"], full))
    if draw(st.booleans()):
        out["level"] = {"tolerance": draw(tolerances())}
    if draw(st.integers(0, 3)) == 0:  # an answer may sit in two lists: the later one wins
        words = ANSWERS[:6]
        out["qualitative"] = {
            light: draw(st.lists(st.sampled_from(words), min_size=1, max_size=3, unique=True))
            for light in ("green", "yellow", "red")
            if draw(st.booleans())
        }
    if draw(st.integers(0, 3)) == 0:
        out["impossible"] = draw(st.lists(st.sampled_from(["完全不可能", "不可能"]), max_size=2, unique=True))
    return {k: v for k, v in out.items() if v != {}}


@st.composite
def profile(draw: st.DrawFn) -> list[Decimal]:
    """Twelve non-decreasing cumulative shares ending at 1 (a May or August share may be 0)."""
    shares = sorted(
        draw(
            st.lists(
                st.one_of(decimals(0, 20, 2).map(lambda d: d * 5), decimals(0, 1000, 3)),
                min_size=11,
                max_size=11,
            )
        )
    )
    return [*shares, Decimal(1)]


@st.composite
def match(draw: st.DrawFn, pools: dict[str, list[Any]], level2: bool) -> dict[str, Any]:
    """1–3 criteria with values from the dataset (a list may be empty, or name what nobody has)."""
    names = ["fund_flag", "unit", "department", "project", "category", "budget_min", "budget_max"]
    chosen = draw(st.lists(st.sampled_from(names), min_size=0 if level2 else 1, max_size=3, unique=True))
    out: dict[str, Any] = {}
    for name in chosen:
        pool = pools[name]
        if name.startswith("budget") or draw(st.booleans()):
            out[name] = draw(st.sampled_from(pool))
        else:
            out[name] = draw(st.lists(st.sampled_from(pool), max_size=2, unique=True))
    if level2:
        out["level2"] = draw(st.lists(st.sampled_from(LEVEL2), min_size=1, max_size=2, unique=True))
    return out


@st.composite
def override(draw: st.DrawFn, n: int, pools: dict[str, list[Any]], profiles: list[str]) -> dict[str, Any]:
    on_level2 = draw(st.integers(0, 3)) == 0
    out: dict[str, Any] = {"name": f"覆盖{n}", "match": draw(match(pools, on_level2))}
    while len(out) == 2:  # an override must change something
        if not on_level2 and draw(st.booleans()):
            budget: dict[str, Any] = draw(ordered(["red_below", "yellow_below"], full=False))
            if draw(st.booleans()):
                budget["base"] = draw(st.sampled_from(["budget", "budget_plus_carryover"]))
            out["budget"] = budget
        if draw(st.booleans()):
            out["indicators"] = draw(indicator_settings(full=False))
        if not on_level2 and draw(st.booleans()):
            out["combine"] = draw(st.sampled_from(["worst", "matrix"]))
        if draw(st.booleans()):
            out["profile"] = draw(st.sampled_from(profiles))
        out = {k: v for k, v in out.items() if v != {}}
    return out


@st.composite
def rule_file(draw: st.DrawFn, pools: dict[str, list[Any]]) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"time_progress: {{mode: {draw(st.sampled_from(['month', 'day']))}}}")
    if draw(st.booleans()):
        budget: dict[str, Any] = draw(ordered(["red_below", "yellow_below"], full=True))
        budget["base"] = draw(st.sampled_from(["budget", "budget_plus_carryover"]))
        lines.append(f"budget: {flow(budget)}")
    if settings := draw(indicator_settings(full=True)):
        lines.append(f"indicators: {flow(settings)}")
    if draw(st.booleans()):
        lines.append(f"combine: {draw(st.sampled_from(['worst', 'matrix']))}")
    new = draw(st.lists(st.sampled_from(NEW_PROFILES), max_size=2, unique=True))
    if new:
        lines.append("profiles:")
        lines += [f"  {flow(name)}: {flow(draw(profile()))}" for name in new]
        lines.append(f"profile_names: {flow({name: '曲线' + name for name in new})}")
    profiles = SHIPPED_PROFILES + new
    overrides = [draw(override(n, pools, profiles)) for n in range(draw(st.integers(0, 4)))]
    lines.append("overrides:" + ("" if overrides else " []"))
    lines += [f"  - {flow(ov)}" for ov in overrides]
    return "\n".join(lines) + "\n"


# --- the dataset --------------------------------------------------------------------------------


@st.composite
def units(draw: st.DrawFn) -> list[Row]:
    codes = [f"U{n}" for n in range(1, draw(st.integers(1, 4)) + 1)]
    bosses = st.sampled_from([None, "D1", "D2", *codes])
    return [
        {"code": c, "name": f"单位{c}", "email": f"{c.lower()}@example.org", "supervisor_code": draw(bosses)}
        for c in codes
    ]


def amounts() -> st.SearchStrategy[int]:
    """Budgets in fen: multiples of ALIGN (exact boundaries), any amount, or near the import's limit."""
    return st.one_of(
        st.integers(1, 2000).map(lambda k: k * ALIGN),
        st.integers(1, 10**13),
        st.integers(10**17, 5 * 10**17),  # the import refuses 10^18 fen and more
    )


@st.composite
def projects(draw: st.DrawFn, unit_rows: list[Row]) -> list[Row]:
    out = []
    for n in range(1, draw(st.integers(5, 30)) + 1):
        budget = draw(amounts())
        carryover = draw(st.sampled_from([0, 0, budget, ALIGN * 7, budget // 3]))
        out.append(
            {
                "code": f"P{n:02d}",
                "name": f"项目{n}",
                "unit_code": draw(st.sampled_from(unit_rows))["code"],
                "budget": budget,
                "carryover": carryover,
                "fund_flag": draw(st.sampled_from(FUND_FLAGS)),
                "category": draw(st.sampled_from(CATEGORIES)),
                "profile": draw(
                    st.sampled_from([None, None, None, UNDEFINED_PROFILE, *SHIPPED_PROFILES, *NEW_PROFILES])
                ),
            }
        )
    return out


def targets() -> st.SearchStrategy[str]:
    """Positive targets: aligned (exact boundaries in every P), plain, or with decimals."""
    return st.one_of(
        st.integers(1, 50).map(lambda k: str(k * TARGET_ALIGN)),
        st.sampled_from(["12", "7", "13", "1000", "0.5", "95", "100", "2.5"]),
        decimals(1, 10**6, 2).map(lambda d: format(d, "f")),
    )


@st.composite
def indicator(draw: st.DrawFn, project: str, n: int) -> Row:
    shape = draw(st.sampled_from(["cumulative", "level", "milestone", "qualitative", "awkward"]))
    row: Row = {
        "project_code": project,
        "code": f"I{n}",
        "level1": "产出指标",
        "name": f"指标{n}",
        "measure_unit": "",
        "kind": None,
        "profile": None,
    }
    if shape == "cumulative":
        row |= {
            "level2": "数量",
            "direction": draw(st.sampled_from(["≥", ">"])),
            "target": draw(targets()),
            "measure_unit": draw(st.sampled_from(["个", "人次", "万亩"])),
            "kind": draw(st.sampled_from([None, None, "cumulative"])),
        }
    elif shape == "level":
        row |= {
            "level2": draw(st.sampled_from(LEVEL2)),
            "direction": draw(st.sampled_from(["≥", ">", "=", "≤", "<"])),
            "target": draw(st.one_of(targets(), st.sampled_from(["0", "-5", "-0.5"]))),
            "measure_unit": draw(st.sampled_from(["%", "元/人", "小时", "个"])),
            "kind": draw(st.sampled_from([None, None, "level"])),
        }
    elif shape == "milestone":
        row |= {
            "level2": "时效",
            "direction": "≤",
            "target": draw(st.sampled_from([*DATES, "2025-02-29", "20250630"])),
            "kind": draw(st.sampled_from([None, None, "milestone"])),
        }
    elif shape == "qualitative":
        row |= {
            "level2": draw(st.sampled_from(LEVEL2)),
            "direction": draw(st.sampled_from(["定性", "≥"])),
            "target": "达到预期",
            "kind": draw(st.sampled_from([None, None, "qualitative"])),
        }
    else:
        row |= {
            "level2": draw(st.sampled_from(LEVEL2)),
            "direction": draw(st.sampled_from([d.value for d in Direction])),
            "target": draw(st.sampled_from([*AWKWARD, BEYOND_A_DOUBLE, THIRTY_DIGITS])),
            "measure_unit": draw(st.sampled_from(["", "%", "个"])),
            "kind": draw(st.sampled_from([None, "cumulative", "level", "milestone", "qualitative"])),
        }
    if draw(st.integers(0, 4)) == 0:
        row["profile"] = draw(st.sampled_from([UNDEFINED_PROFILE, *SHIPPED_PROFILES, *NEW_PROFILES]))
    return row


def pools(unit_rows: list[Row], project_rows: list[Row]) -> dict[str, list[Any]]:
    """What override criteria may name: the dataset's values, and one nobody has."""
    wan = sorted(
        {Decimal(p["budget"]).scaleb(-6) for p in project_rows if p["budget"] <= AMOUNT_MAX * FEN_PER_WAN}
    )
    return {
        "fund_flag": [*sorted({p["fund_flag"] for p in project_rows if p["fund_flag"]}), "99"],
        "unit": [u["code"] for u in unit_rows] + ["UX"],
        "department": sorted(
            {u["supervisor_code"] or "DX" for u in unit_rows} | {u["code"] for u in unit_rows}
        ),
        "project": [p["code"] for p in project_rows[:8]],
        "category": [*sorted({p["category"] for p in project_rows if p["category"]}), "其他"],
        "budget_min": [*wan, Decimal(0), Decimal("0.000001")],
        "budget_max": [*wan, Decimal(AMOUNT_MAX)],
    }


# --- reports on the thresholds in force -------------------------------------------------------


def policies_of(rules: str) -> Policies:
    """The rules as the test's workdir will load them: the shipped files, then the variant."""
    texts = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "rules").glob("*.yaml")}
    return Policies(rules_from_content(json.dumps({**texts, VARIANT: rules})))


def project_model(row: Row) -> Project:
    return Project(
        row["code"],
        row["name"],
        row["unit_code"],
        row["budget"],
        row["carryover"],
        row["fund_flag"],
        row["category"],
        row["profile"],
    )


@st.composite
def executed(draw: st.DrawFn, pol: Policies, cp: Checkpoint, p: Row, unit: Unit | None) -> int:
    """Executed fen on, or one fen beside, t × P × base for the project's budget thresholds t."""
    key = pol.project_key(project_model(p), unit)
    policy = pol.project_policy(key)
    share, _ = pol.progress(cp, policy.profile or p["profile"])
    base = p["budget"] + (p["carryover"] if policy.budget_base == "budget_plus_carryover" else 0)
    t = draw(st.sampled_from([policy.budget_red, policy.budget_yellow]))
    exact = t * share * base
    choice = draw(st.sampled_from(["on", "on", "on", "zero", "all", "any"]))
    most: int = p["budget"] + p["carryover"]  # the import refuses more
    if choice == "zero":
        return 0
    if choice == "all":
        return most
    if choice == "any":
        return draw(st.integers(0, most))
    near: int = draw(st.sampled_from([math.floor(exact), math.ceil(exact)]))
    value = near + draw(st.sampled_from([0, -1, 1]))
    return min(max(value, 0), most)


@st.composite
def actual(draw: st.DrawFn, pol: Policies, cp: Checkpoint, p: Row, unit: Unit | None, ind: Row) -> str | None:
    """An actual on, or one unit in the last digit beside, a boundary of the indicator's kind."""
    key = pol.project_key(project_model(p), unit)
    ipol = pol.indicator_policy(key, ind["level2"])
    profile = ind["profile"] or ipol.profile or pol.project_policy(key).profile or p["profile"]
    share, _ = pol.progress(cp, profile)
    try:
        target = Fraction(Decimal(ind["target"]))
    except ArithmeticError:
        target = None
    if draw(st.integers(0, 5)) == 0 or target is None or abs(target) > 10**30:
        return draw(st.sampled_from([*AWKWARD, THIRTY_DIGITS, BEYOND_A_DOUBLE, *ANSWERS, *SPOKEN, *DATES]))
    if ind["level2"] == "数量" and ind["direction"] in ("≥", ">"):
        t = draw(st.sampled_from([ipol.red, ipol.yellow, ipol.blue]))
        return draw(beside(t * target * share))
    tol = draw(st.sampled_from([Fraction(0), ipol.tolerance, -ipol.tolerance]))
    return draw(beside(target * (1 + tol)))


@st.composite
def reports(
    draw: st.DrawFn, pol: Policies, unit_rows: list[Row], project_rows: list[Row], indicator_rows: list[Row]
) -> tuple[list[Row], list[Row]]:
    by_code = {u["code"]: Unit(u["code"], u["name"], (u["email"],), u["supervisor_code"]) for u in unit_rows}
    projects_by_code = {p["code"]: p for p in project_rows}
    project_reports, indicator_reports = [], []
    for cp in CHECKPOINTS:
        for p in project_rows:
            if draw(st.integers(0, 7)):
                spent = draw(executed(pol, cp, p, by_code.get(p["unit_code"])))
                project_reports.append(
                    {
                        "checkpoint": str(cp),
                        "project_code": p["code"],
                        "executed": spent,
                        "forecast_executed": None,
                    }
                )
        for ind in indicator_rows:
            if not draw(st.integers(0, 6)):
                continue  # no report row: not measurable (a milestone: not done)
            p = projects_by_code[ind["project_code"]]
            if ind["target"] in DATES or ind["direction"] == "定性" or ind["target"] == "达到预期":
                value = draw(st.sampled_from([*DATES, *ANSWERS, *SPOKEN, "abc"]))
            else:
                value = draw(actual(pol, cp, p, by_code.get(p["unit_code"]), ind))
            indicator_reports.append(
                {
                    "checkpoint": str(cp),
                    "project_code": p["code"],
                    "indicator_code": ind["code"],
                    "actual": value,
                    "forecast": None,
                    "possibility": draw(st.sampled_from(POSSIBILITIES)),
                    "causes": None,
                    "cause_text": None,
                    "measures": None,
                }
            )
    return project_reports, indicator_reports


@st.composite
def cases(draw: st.DrawFn) -> Case:
    unit_rows = draw(units())
    project_rows = draw(projects(unit_rows))
    indicator_rows = [
        draw(indicator(p["code"], n)) for p in project_rows for n in range(1, draw(st.integers(0, 6)) + 1)
    ]
    rules = draw(rule_file(pools(unit_rows, project_rows)))
    project_reports, indicator_reports = draw(
        reports(policies_of(rules), unit_rows, project_rows, indicator_rows)
    )
    return Case(rules, unit_rows, project_rows, indicator_rows, project_reports, indicator_reports)

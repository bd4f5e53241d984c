"""The compiled evaluation (rules turned into SQL) against the pure core, row for row: the same
lights, kinds, statuses and (to the last float bit that matters) ratios for every project and
indicator of a sample, with rule sets that use every override criterion, profiles, the matrix
combination, day-based time progress and carry-over; and indicator rows written straight into the
database with the awkward texts an import never produces (exact boundaries, huge numbers, 29
February, full-width digits, whitespace inside answers). Reasons read back are the pure core's words."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.core.rows import StoredResult
from monitor.db.engine import INDICATOR, INDICATOR_REPORT
from monitor.db.upserts import upsert
from monitor.evaluate.stored import load_results
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.tools.sample import write_sample

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {
    "default": "",
    "overrides": """
budget: {base: budget_plus_carryover}
overrides:
  - name: 专项资金从严
    match: {category: 专项资金}
    budget: {red_below: 0.65, yellow_below: 0.85}
    combine: matrix
  - name: 大额项目
    match: {budget_min: 200, budget_max: 5000}
    budget: {yellow_below: 0.9}
  - name: 09号资金
    match: {fund_flag: "09"}
    profile: semester
  - name: 农业农村局系统
    match: {department: "101001"}
    indicators: {cumulative: {red_below: 0.5, blue_from: 1.5}, level: {tolerance: 0.1}}
  - name: 数量指标
    match: {level2: 数量, category: [一般性项目, 基本建设]}
    indicators: {cumulative: {yellow_below: 0.75}}
    profile: spring_autumn
  - name: 质量指标
    match: {level2: 质量}
    indicators:
      qualitative:
        green: [达成目标, 基本达成, "完成率100%"]
        yellow: [部分达成目标并具有一定效果]
        red: [未达成目标且效果较差]
      impossible: [完全不可能, 不可能]
""",
    "day": """
time_progress: {mode: day}
combine: matrix
indicators: {cumulative: {red_below: 0.55, yellow_below: 0.85, blue_from: 1.25}, level: {tolerance: 0.07}}
""",
}

# (target, direction, level2, unit, kind, actual, possibility): texts the importer would canonicalise
# or refuse, written straight into the tables
AWKWARD = [
    ("12", "≥", "数量", "个", None, "3", None),  # r = 0.6 exactly in May (P = 5/12)
    ("12", "≥", "数量", "个", None, "4", None),  # 0.8
    ("12", "≥", "数量", "个", None, "6", None),  # 1.2: blue
    ("123456789012.5", "≥", "数量", "元", None, "30864197253.125", None),  # 0.6 with huge numbers
    ("123456789012.5", "≥", "数量", "元", None, "30864197253.124", None),  # just below
    ("98765432109876", "≥", "数量", "元", None, "41152263379115", None),
    ("95", "≥", "质量", "%", None, "90.25", None),  # level: 5 % below exactly
    ("95", "≥", "质量", "%", None, "90.24999999", None),
    ("9999999999.99", "≤", "成本", "元", None, "10499999999.9895", None),  # tolerance edge, big
    ("0", "≤", "成本", "元", None, "0.5", None),  # target 0: no band
    ("-5", "≥", "数量", "个", None, "-4", None),  # negative target, cumulative falls back to level
    ("100", "=", "质量", "%", None, "100.0", None),  # equal, not the same text
    ("100", "<", "质量", "%", None, "100", None),
    ("８", "≥", "数量", "个", None, "４", None),  # full-width digits (a Decimal all the same)
    ("1e3", "≥", "数量", "个", None, "500", None),
    (" 20 ", "≥", "数量", "个", None, "8", None),
    ("2025-06-30", "≤", "时效", "", None, "2025-06-30", None),
    ("2025-04-30", "≤", "时效", "", None, None, None),
    ("2024-02-29", "≤", "时效", "", None, "2024-02-29", None),
    ("2025-02-29", "≤", "时效", "", None, "2025-01-01", None),  # not a date: qualitative text
    ("20250630", "≤", "时效", "", "milestone", "2025-07-01", None),
    ("2025-05-31", "≤", "时效", "", None, "2025-06-01", None),
    ("达到预期", "定性", "质量", "", None, "达成 目标", None),
    ("达到预期", "定性", "质量", "", None, "达成\u3000目标\n", None),
    ("达到预期", "定性", "质量", "", None, "基本达成", None),
    ("达到预期", "定性", "质量", "", None, "完成率100%", None),  # a '%' in a literal of the statement
    ("达到预期", "定性", "质量", "", None, "部分达成目标并具有一定效果", None),
    ("达到预期", "定性", "社会效益", "", None, "说不清", None),
    ("群众满意", "≥", "满意度", "", None, "", None),
    ("90", "≥", "满意度", "%", "qualitative", "达成目标", None),
    ("OK", "≥", "质量", "", None, "OK", None),
    ("30", "≥", "数量", "场", "cumulative", "12.5", " 完全不可能 "),
    ("30", "≥", "数量", "场", None, "12.5", "不可能"),
    ("30", "≥", "数量", "场", None, "abc", None),
    ("30", "≥", "数量", "场", None, "0", None),
    ("1" + "0" * 400, "≥", "数量", "个", None, "5", None),  # beyond a double
    ("123456789012345678901234567890", "≤", "成本", "元", None, "123456789012345678901234567891", None),
]


def _snapshot(app: App, cp: str) -> tuple[dict[str, Any], dict[Any, Any], list[StoredResult]]:
    with app.engine.connect() as conn:
        projects = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                text(
                    "SELECT project_code, status, budget_light, target_light, light, execution_rate,"
                    " time_progress FROM project_result WHERE checkpoint = :cp"
                ),
                {"cp": cp},
            )
        }
        indicators = {
            (r[0], r[1]): tuple(r[2:])
            for r in conn.execute(
                text(
                    "SELECT project_code, indicator_code, kind, light, ratio FROM indicator_result"
                    " WHERE checkpoint = :cp"
                ),
                {"cp": cp},
            )
        }
        results = load_results(conn, cp)
    return projects, indicators, results


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1e-300)


def _words(result: StoredResult) -> dict[str, Any]:
    """A stored result without its floats (compared above within rounding)."""
    floats = ("execution_rate", "time_progress", "ratio")
    out = {k: v for k, v in result.items() if k not in floats}
    out["indicators"] = [{k: v for k, v in i.items() if k not in floats} for i in result["indicators"]]
    return out


def _add_awkward(app: App, seed: int) -> None:
    rng = random.Random(seed)
    with app.engine.begin() as conn:
        projects = [r[0] for r in conn.execute(text("SELECT code FROM project ORDER BY code LIMIT 60"))]
        inds, reps = [], []
        for n, (target, direction, level2, unit, kind, actual, possibility) in enumerate(AWKWARD):
            code = projects[n % len(projects)]
            ind = f"X{n:02d}"
            inds.append(
                {
                    "project_code": code,
                    "code": ind,
                    "level1": "产出指标",
                    "level2": level2,
                    "name": f"边界{n}",
                    "direction": direction,
                    "target": target,
                    "measure_unit": unit,
                    "kind": kind,
                    "profile": None,
                }
            )
            for cp in ("2025-05", "2025-08"):
                reps.append(
                    {
                        "checkpoint": cp,
                        "project_code": code,
                        "indicator_code": ind,
                        "actual": actual,
                        "forecast": None,
                        "possibility": possibility,
                        "causes": None,
                        "cause_text": None,
                        "measures": None,
                    }
                )
        # random cumulative indicators whose actual often lands exactly on a threshold
        for n in range(300):
            code = rng.choice(projects)
            goal = rng.choice([12, 24, 60, 120, 7, 13, 1000, 0.5])
            share = rng.choice(["0.6", "0.8", "1.2", "0.45", "0.52", "0.55", "0.85", "1.25", "1.5", "0.75"])
            month = rng.choice([5, 8])
            reached = goal * float(share) * month / 12 + rng.choice([0, 0, 0, 1e-9, -1e-9, 0.01])
            inds.append(
                {
                    "project_code": code,
                    "code": f"R{n:03d}",
                    "level1": "产出指标",
                    "level2": rng.choice(["数量", "质量"]),
                    "name": f"随机{n}",
                    "direction": rng.choice(["≥", "≥", ">", "≤"]),
                    "target": str(goal),
                    "measure_unit": "个",
                    "kind": None,
                    "profile": rng.choice([None, None, "semester"]),
                }
            )
            reps.append(
                {
                    "checkpoint": f"2025-{month:02d}",
                    "project_code": code,
                    "indicator_code": f"R{n:03d}",
                    "actual": repr(round(reached, 12)).removesuffix(".0"),
                    "forecast": None,
                    "possibility": None,
                    "causes": None,
                    "cause_text": None,
                    "measures": None,
                }
            )
        upsert(conn, INDICATOR, inds)
        upsert(conn, INDICATOR_REPORT, reps)
        # a budget light on its threshold with amounts too large for exact SQL arithmetic (core decides)
        conn.execute(
            text("UPDATE project SET budget = :b, carryover = 0 WHERE code = :c"),
            {"b": 1 << 42, "c": projects[2]},
        )
        conn.execute(
            text(
                "UPDATE project_report SET executed = :e WHERE checkpoint = '2025-05' AND project_code = :c"
            ),
            {"e": 1 << 40, "c": projects[2]},
        )
        # a budget light exactly on its threshold: executed / budget = 0.25 = 0.6 × 5/12 in May
        conn.execute(
            text("UPDATE project SET budget = 1200000, carryover = 0 WHERE code = :c"), {"c": projects[1]}
        )
        conn.execute(
            text(
                "UPDATE project_report SET executed = 300000"
                " WHERE checkpoint = '2025-05' AND project_code = :c"
            ),
            {"c": projects[1]},
        )


@pytest.mark.parametrize("split", [False, True], ids=["one-piece", "halves"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compiled_evaluation_agrees_with_the_pure_core(variant: str, split: bool, workdir: Path) -> None:
    """`split`: the indicator and project statements in two halves on two connections
    (monitor.evaluate.halves; SQLite files only, PostgreSQL evaluates in one piece either way)."""
    (workdir / "rules" / "zz_variant.yaml").write_text(VARIANTS[variant], encoding="utf-8")
    app = App(load_settings(workdir / "config.yaml"))
    app.import_paths(list(write_sample(workdir / "data", projects=300).values()))
    _add_awkward(app, seed=len(variant))
    rules = app.rules()
    for checkpoint in (Checkpoint(2025, 5), Checkpoint(2025, 8)):
        cp = str(checkpoint)
        _, py_summary = evaluate_checkpoint(app.engine, rules, checkpoint, app.clock, method="python")
        py_projects, py_indicators, py_results = _snapshot(app, cp)
        _, summary = evaluate_checkpoint(app.engine, rules, checkpoint, app.clock, method="sql", split=split)
        sql_projects, sql_indicators, sql_results = _snapshot(app, cp)
        assert summary == py_summary and list(summary.units) == list(py_summary.units)

        assert py_projects.keys() == sql_projects.keys() and py_indicators.keys() == sql_indicators.keys()
        for code, want in py_projects.items():
            got = sql_projects[code]
            assert got[:4] == want[:4], (cp, code, want, got)
            assert _close(got[4], want[4]) and _close(got[5], want[5]), (cp, code, want, got)
        for key, want in py_indicators.items():
            got = sql_indicators[key]
            assert got[:2] == want[:2], (cp, key, want, got)
            assert _close(got[2], want[2]) or abs(got[2] - want[2]) < 1e-15, (cp, key, want, got)
        # the reasons, rendered on reading, are the pure core's
        assert [_words(r) for r in sql_results] == [_words(r) for r in py_results]
        assert summary.run_counts()["projects"] == len(py_projects)
        lights = {w[0] for w in py_indicators.values()} | {w[1] for w in py_indicators.values()}
        assert {"red", "yellow", "green", "blue", "na"} <= lights


def test_reasons_say_so_when_the_data_changed_after_the_run(workdir: Path) -> None:
    app = App(load_settings(workdir / "config.yaml"))
    app.import_paths(list(write_sample(workdir / "data", projects=60).values()))
    cp = Checkpoint(2025, 5)
    evaluate_checkpoint(app.engine, app.rules(), cp, app.clock)
    with app.engine.begin() as conn:
        red = conn.execute(
            text("SELECT project_code FROM project_result WHERE checkpoint = '2025-05' AND light = 'red'")
        ).first()
        assert red is not None
        conn.execute(
            text(
                "UPDATE project_report SET executed = (SELECT budget FROM project WHERE code = :c)"
                " WHERE checkpoint = '2025-05' AND project_code = :c"
            ),
            {"c": red[0]},
        )
        conn.execute(
            text("UPDATE indicator_report SET possibility = NULL, actual = NULL WHERE project_code = :c"),
            {"c": red[0]},
        )
    with app.engine.connect() as conn:
        (changed,) = [r for r in load_results(conn, str(cp)) if r["project_code"] == red[0]]
    assert changed["light"] == "red" and changed["reasons"][0].startswith("注意：本期评价后基础数据已变更")
    assert len(changed["reasons"]) > 1

"""Cases tests/test_differential.py found (minimal, by hand-checked shrinking), failing on today's code.
Not committed: for the engineer rewriting monitor/evaluate/ and monitor/db/results.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from differential_cases import CHECKPOINTS, VARIANT, Case
from test_differential import snapshot, store, words

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.rules.load import load_rules


@pytest.fixture
def app(workdir: Path) -> App:
    return App(load_settings(workdir / "config.yaml"))


UNIT = {"code": "U1", "name": "单位U1", "email": "u1@example.org", "supervisor_code": None}
PROJECT = {
    "code": "P01",
    "name": "项目1",
    "unit_code": "U1",
    "budget": 12_000_000,
    "carryover": 0,
    "fund_flag": None,
    "category": None,
    "profile": None,
}
SPENT = {"checkpoint": "2025-05", "project_code": "P01", "executed": 5_000_000, "forecast_executed": None}


def indicator(level2: str, direction: str, target: str, kind: str | None = None) -> dict[str, object]:
    return {
        "project_code": "P01",
        "code": "I1",
        "level1": "产出指标",
        "name": "指标1",
        "level2": level2,
        "direction": direction,
        "target": target,
        "measure_unit": "",
        "kind": kind,
        "profile": None,
    }


def report(actual: str) -> dict[str, object]:
    return {
        "checkpoint": "2025-05",
        "project_code": "P01",
        "indicator_code": "I1",
        "actual": actual,
        "forecast": None,
        "possibility": None,
        "causes": None,
        "cause_text": None,
        "measures": None,
    }


def both(app: App, workdir: Path, case: Case) -> None:
    (workdir / "rules" / VARIANT).write_text(case.rules, encoding="utf-8")
    rules = load_rules(workdir / "rules")
    store(app, case)
    cp = CHECKPOINTS[0]
    evaluate_checkpoint(app.engine, rules, cp, app.clock, method="python")
    want = snapshot(app, str(cp))
    evaluate_checkpoint(app.engine, rules, cp, app.clock, method="sql", split=False)
    got = snapshot(app, str(cp))
    assert [words(r) for r in got[2]] == [words(r) for r in want[2]]


def test_a_newline_in_an_actual_splits_the_reason_the_python_method_stores(app: App, workdir: Path) -> None:
    """A qualitative answer with a newline (whitespace the core ignores: it maps to 达成目标) that the
    rules make red: the core's project reason is one line, `指标1：目标“达到预期”，自评“达成\u3000目标\\n”
    → 红灯（…）`; read back after method="python" it is two reasons (split at the newline), after
    method="sql" it is one."""
    case = Case(
        'indicators: {"qualitative": {"red": ["达成目标"]}}\noverrides: []\n',
        [UNIT],
        [PROJECT],
        [indicator("时效", "定性", "达到预期", "qualitative")],
        [SPENT],
        [report("达成\u3000目标\n")],
    )
    both(app, workdir, case)


def test_an_actual_beyond_a_double_is_judged(app: App, workdir: Path) -> None:
    """A cumulative indicator (数量 ≥ 12) whose actual is 10^400 (canonical digits, which
    monitor.core.numeric.number_or_none lets through): both methods raise OverflowError ('integer
    division result too large for a float', lights/cumulative.py `rn / rd`; level.py `(a - t) / abs(t)`
    likewise) instead of a blue light with an unbounded ratio."""
    case = Case(
        "overrides: []\n",
        [UNIT],
        [PROJECT],
        [indicator("数量", "≥", "12")],
        [SPENT],
        [report("1" + "0" * 400)],
    )
    both(app, workdir, case)


def test_a_cumulative_target_of_thirty_digits_is_judged_as_cumulative(app: App, workdir: Path) -> None:
    """数量 ≥ 123456789012345678901234567890 个 (cumulative, inferred), actual
    82304526008230452600823045260 in May (r = 1.6, P = 5/12, default rules): the core says blue
    (target light green, project light green); the SQL form judges it as a level (actual below target,
    ratio −0.33 → red: target light red, project red). With actual 0 both say red, but the SQL ratio is
    −1.0 (a level's) instead of 0.0."""
    ind = indicator("数量", "≥", "123456789012345678901234567890") | {"measure_unit": "个"}
    case = Case(
        "overrides: []\n", [UNIT], [PROJECT], [ind], [SPENT], [report("82304526008230452600823045260")]
    )
    both(app, workdir, case)

"""Property-based differential test: the set-based evaluation (the rules compiled into SQL, in one
piece and, on SQLite files, in two halves) stores what the pure core (monitor.evaluate.core) stores, for
random rule files (thresholds with few digits, 0–4 overrides matching the dataset's own fund flags,
units, departments, projects, categories, 二级 and budget bounds, seasonal profiles defined and chosen
by overrides, worst or matrix, month or day time progress, the carry-over base) and random small
datasets whose executed amounts and actual values sit exactly on each threshold in force or one unit
in the last digit beside it, with missing reports, empty actuals, 完全不可能, explicit and mismatched
kinds, and texts an import never lets through (huge, negative, zero targets, full-width digits).
Per project: status, budget light, target light, light, execution rate and time progress; per
indicator: kind, light and ratio (floats equal or within 1e-12 relative); and the reasons read back.
Cases come from tests/differential_cases.py; a failure prints the case and its reproduction blob.
What it found is kept as plain tests in tests/test_differential_found.py."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from differential_cases import CHECKPOINTS, VARIANT, Case, cases
from hypothesis import HealthCheck, given, settings
from sqlalchemy import delete, select

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.db.engine import (
    INDICATOR,
    INDICATOR_REPORT,
    INDICATOR_RESULT,
    PROJECT,
    PROJECT_REPORT,
    PROJECT_RESULT,
    UNIT,
)
from monitor.db.upserts import upsert
from monitor.evaluate.stored import load_results
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.rules.load import load_rules

EXAMPLES = 100
Rows = dict[str, tuple[Any, ...]]
Snapshot = tuple[Rows, dict[tuple[str, str], tuple[Any, ...]], Sequence[Mapping[str, Any]]]


@pytest.fixture
def app(workdir: Path) -> Iterator[App]:
    """One database for all the examples of a test, emptied before each."""
    app = App(load_settings(workdir / "config.yaml"))
    yield app
    app.engine.dispose()


def store(app: App, case: Case) -> None:
    """Replace every input row by the case's, and drop the results (runs stay: their ids are not reused)."""
    with app.engine.begin() as conn:
        for tbl in (
            INDICATOR_RESULT,
            PROJECT_RESULT,
            INDICATOR_REPORT,
            PROJECT_REPORT,
            INDICATOR,
            PROJECT,
            UNIT,
        ):
            conn.execute(delete(tbl))
        upsert(conn, UNIT, case.units)
        upsert(conn, PROJECT, case.projects)
        upsert(conn, INDICATOR, case.indicators)
        upsert(conn, PROJECT_REPORT, case.project_reports)
        upsert(conn, INDICATOR_REPORT, case.indicator_reports)


def snapshot(app: App, cp: str) -> Snapshot:
    p, i = PROJECT_RESULT.c, INDICATOR_RESULT.c
    with app.engine.connect() as conn:
        projects = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                select(
                    p.project_code,
                    p.status,
                    p.budget_light,
                    p.target_light,
                    p.light,
                    p.execution_rate,
                    p.time_progress,
                ).where(p.checkpoint == cp)
            )
        }
        indicators = {
            (r[0], r[1]): tuple(r[2:])
            for r in conn.execute(
                select(i.project_code, i.indicator_code, i.kind, i.light, i.ratio).where(i.checkpoint == cp)
            )
        }
        return projects, indicators, load_results(conn, cp)


def close(a: float | None, b: float | None) -> bool:
    """Equal, or within 1e-12 of each other relatively, or 1e-15 absolutely as tests/test_compiled.py
    allows: a level ratio (actual − target) / |target| near 0 is computed in floating point by the SQL
    form, exactly by the core (both None, or neither)."""
    if a is None or b is None:
        return a is b
    return a == b or abs(a - b) <= max(1e-12 * max(abs(a), abs(b)), 1e-15)


def words(result: Mapping[str, Any]) -> dict[str, Any]:
    """A stored result read back without its floats (compared within rounding)."""
    floats = ("execution_rate", "time_progress", "ratio")
    out = {k: v for k, v in result.items() if k not in floats}
    out["indicators"] = [{k: v for k, v in i.items() if k not in floats} for i in result["indicators"]]
    return out


def assert_same(cp: str, how: str, want: Snapshot, got: Snapshot) -> None:
    (want_p, want_i, want_r), (got_p, got_i, got_r) = want, got
    assert got_p.keys() == want_p.keys() and got_i.keys() == want_i.keys(), (cp, how)
    for code, w in want_p.items():
        g = got_p[code]
        assert g[:4] == w[:4] and close(g[4], w[4]) and close(g[5], w[5]), (cp, how, code, w, g)
    for key, w in want_i.items():
        g = got_i[key]
        assert g[:2] == w[:2] and close(g[2], w[2]), (cp, how, key, w, g)
    assert [words(r) for r in got_r] == [words(r) for r in want_r], (cp, how)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=cases())
def test_set_based_evaluation_equals_the_pure_core(case: Case, app: App, workdir: Path) -> None:
    (workdir / "rules" / VARIANT).write_text(case.rules, encoding="utf-8")
    rules = load_rules(workdir / "rules")
    store(app, case)
    # PostgreSQL evaluates in one piece whatever `split` says: halves only where they exist
    splits = [False, True] if app.engine.dialect.name == "sqlite" else [False]
    for checkpoint in CHECKPOINTS:
        cp = str(checkpoint)
        _, want_summary = evaluate_checkpoint(app.engine, rules, checkpoint, app.clock, method="python")
        want = snapshot(app, cp)
        assert len(want[0]) == len(case.projects)
        for split in splits:
            _, summary = evaluate_checkpoint(
                app.engine, rules, checkpoint, app.clock, method="sql", split=split
            )
            assert summary == want_summary, (cp, split)
            assert_same(cp, "halves" if split else "one piece", want, snapshot(app, cp))

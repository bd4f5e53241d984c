"""Results carry their reasons (issue 19): the SQL form stores each light with the facts its reason
is formatted from, so every reader formats stored results and never evaluates again, needs neither
the rules of the run nor the inputs as they were, and says so when the inputs it states changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.evaluate.reasons import UNKNOWN
from monitor.evaluate.stored import load_results
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.tools.sample import write_sample

CP = Checkpoint(2025, 8)


def _app(workdir: Path, projects: int = 80) -> App:
    app = App(load_settings(workdir / "config.yaml"))
    app.import_paths(list(write_sample(workdir / "data", projects=projects).values()))
    return app


def _reasons(app: App) -> list[tuple[Any, ...]]:
    with app.engine.connect() as conn:
        return [
            (
                r["project_code"],
                tuple(r["reasons"]),
                tuple((i["indicator_code"], i["reason"]) for i in r["indicators"]),
            )
            for r in load_results(conn, str(CP))
        ]


def _forbid_evaluating(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a reader evaluated a light again")

    for name in (
        "monitor.evaluate.core.evaluate",
        "monitor.evaluate.core.evaluate_project",
        "monitor.evaluate.core.judge_indicator",
        "monitor.evaluate.lights.budget.judge",
        "monitor.evaluate.lights.indicator.judge",
    ):
        monkeypatch.setattr(name, refuse)


def test_readers_format_the_stored_facts_and_never_evaluate_again(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: every reader re-ran the pure core on the stored results (reasons.fill called
    evaluate()), so this failed with 'a reader evaluated a light again'."""
    app = _app(workdir)
    evaluate_checkpoint(app.engine, app.rules(), CP, app.clock, method="python")
    by_core = _reasons(app)  # the core's own words, stored as text
    evaluate_checkpoint(app.engine, app.rules(), CP, app.clock, method="sql", split=False)
    with app.engine.connect() as conn:
        empty = conn.execute(text("SELECT count(*) FROM indicator_result WHERE reason = ''")).scalar_one()
    assert empty > 0  # the SQL form stored facts, not words
    _forbid_evaluating(monkeypatch)
    assert _reasons(app) == by_core
    # the CLI's results table and JSON read the same way
    out = CliRunner().invoke(
        main,
        ["results", "--checkpoint", str(CP), "--format", "json", "--config", str(workdir / "config.yaml")],
    )
    assert out.exit_code == 0, out.output
    assert "预算执行率" in out.output and UNKNOWN not in out.output


def test_reasons_need_neither_the_run_rules_nor_the_rule_files(workdir: Path) -> None:
    """Before: reasons were rendered with the rules stored for the run (rule_version), and a reader
    without them raised "the rules of 2025-08's stored results were not stored"."""
    app = _app(workdir, projects=40)
    evaluate_checkpoint(app.engine, app.rules(), CP, app.clock, method="python")
    by_core = _reasons(app)
    evaluate_checkpoint(app.engine, app.rules(), CP, app.clock, method="sql", split=False)
    with app.engine.begin() as conn:
        conn.execute(text("DELETE FROM rule_version"))
    for f in (workdir / "rules").glob("*.yaml"):
        f.write_text("budget: {red_below: 0.1, yellow_below: 0.2}\n", encoding="utf-8")
    assert _reasons(app) == by_core


def test_results_stored_without_their_facts_say_to_run_again(workdir: Path) -> None:
    """Results an earlier version stored (SQL form, reasons left empty, no facts) say how to get
    their reasons instead of showing none."""
    app = _app(workdir, projects=30)
    evaluate_checkpoint(app.engine, app.rules(), CP, app.clock, method="sql", split=False)
    with app.engine.begin() as conn:
        conn.execute(text("UPDATE project_result SET policy = NULL WHERE status = 'reported'"))
        conn.execute(text("UPDATE indicator_result SET policy = NULL"))
    with app.engine.connect() as conn:
        results = load_results(conn, str(CP))
    reported = [r for r in results if r["status"] == "reported"]
    assert reported and all(r["reasons"] == [UNKNOWN] for r in reported)
    assert all(i["reason"] == UNKNOWN for r in reported for i in r["indicators"])

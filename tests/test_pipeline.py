"""The user's path end to end through the CLI: import CSV → run a checkpoint → read results, on the
worked examples of domain.md §6, with re-runs, run records, filters and output formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.cli.main import main
from monitor.db.engine import RULE_VERSION, make_engine
from monitor.db.results import runs as stored_runs

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture
def loaded(workdir: Path) -> Path:
    res = cli(workdir, "import", str(EXAMPLES))
    assert res.exit_code == 0, res.output
    return workdir


def results(workdir: Path, cp: str, *extra: str) -> list[dict[str, Any]]:
    res = cli(workdir, "results", "--checkpoint", cp, "--format", "json", *extra)
    assert res.exit_code == 0, res.output
    data: list[dict[str, Any]] = json.loads(res.output)
    return data


def lights(rows: list[dict[str, Any]]) -> dict[str, tuple[str | None, ...]]:
    return {
        r["project_code"]: (
            r["budget_light"],
            r["target_light"],
            r["light"],
            *(i["light"] for i in r["indicators"]),
        )
        for r in rows
    }


def test_worked_examples_from_csv_give_the_lights_of_the_domain_brief(loaded: Path) -> None:
    for cp in ("2025-05", "2025-08"):
        res = cli(loaded, "run", "--checkpoint", cp)
        assert res.exit_code == 0, res.output
    assert lights(results(loaded, "2025-05")) == {
        "2025-301001-001": (
            "green",
            "yellow",
            "yellow",
            "yellow",
            "yellow",
        ),  # 30,000 头 = 60 % of schedule; 86 %
        "2025-302-001": ("red", None, "red"),
        "2025-303-001": ("red", "green", "red", "green"),  # zero execution; 开工 not yet due
        "2025-304-001": ("yellow", "red", "red", "red"),  # r = 0.60 exactly; 31 小时 vs ≤ 24
        "2025-304-002": ("red", None, "red"),  # 24.99 %
    }
    assert lights(results(loaded, "2025-08")) == {
        "2025-301001-001": ("green", "red", "red", "green", "red"),  # 84 % is 6.7 % short
        "2025-302-001": ("yellow", None, "yellow"),
        "2025-303-001": ("red", "red", "red", "red"),  # 开工 overdue at end of August
        "2025-304-001": ("yellow", "green", "yellow", "green"),  # r = 0.60 exactly
        "2025-304-002": ("red", None, "red"),
    }


def test_results_json_has_the_stable_field_names(loaded: Path) -> None:
    cli(loaded, "run", "--checkpoint", "2025-05")
    row = next(r for r in results(loaded, "2025-05") if r["project_code"] == "2025-304-001")
    assert list(row) == [
        "project_code",
        "project_name",
        "unit_code",
        "checkpoint",
        "status",
        "budget_light",
        "target_light",
        "light",
        "execution_rate",
        "time_progress",
        "reasons",
        "indicators",
    ]
    assert row["status"] == "reported" and row["execution_rate"] == 0.25
    assert abs(row["time_progress"] - 5 / 12) < 1e-12
    assert "为序时进度的60.0%" in row["reasons"][0]
    assert list(row["indicators"][0]) == ["indicator_code", "name", "kind", "light", "ratio", "reason"]
    assert row["indicators"][0]["kind"] == "level" and row["indicators"][0]["light"] == "red"


def test_not_reported_project_is_listed_without_a_light(loaded: Path) -> None:
    extra = loaded / "late.csv"
    extra.write_text(
        "project_code,project_name,unit_code,budget\n2025-304-003,路灯新增项目,304,50\n", encoding="utf-8"
    )
    assert cli(loaded, "import", str(extra)).exit_code == 0
    res = cli(loaded, "run", "--checkpoint", "2025-05")
    assert "未报送" in res.output
    row = next(r for r in results(loaded, "2025-05") if r["project_code"] == "2025-304-003")
    assert (row["status"], row["light"], row["budget_light"]) == ("not_reported", None, None)


def test_rerun_replaces_results_and_keeps_a_record_of_each_run(loaded: Path, db_url: str) -> None:
    cli(loaded, "run", "--checkpoint", "2025-05")
    corrected = loaded / "corrected.csv"
    corrected.write_text("checkpoint,project_code,executed\n2025-05,2025-302-001,150\n", encoding="utf-8")
    assert cli(loaded, "import", str(corrected)).exit_code == 0
    cli(loaded, "run", "--checkpoint", "2025-05")
    rows = results(loaded, "2025-05")
    assert len(rows) == 5
    assert next(r for r in rows if r["project_code"] == "2025-302-001")["light"] == "green"
    engine = make_engine(db_url)
    with engine.connect() as conn:
        runs = stored_runs(conn, "2025-05")
        versions = list(conn.execute(select(RULE_VERSION.c.hash)))
    engine.dispose()
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[0]["red"] == 4 and runs[1]["red"] == 3
    assert len({r["rules_hash"] for r in runs}) == 1 and [v[0] for v in versions] == [runs[0]["rules_hash"]]


def test_results_filter_by_unit_and_light(loaded: Path) -> None:
    cli(loaded, "run", "--checkpoint", "2025-05")
    assert {r["project_code"] for r in results(loaded, "2025-05", "--unit", "304")} == {
        "2025-304-001",
        "2025-304-002",
    }
    assert {r["project_code"] for r in results(loaded, "2025-05", "--light", "yellow")} == {"2025-301001-001"}


def test_results_csv_opens_in_excel_with_a_bom(loaded: Path) -> None:
    cli(loaded, "run", "--checkpoint", "2025-08")
    out = loaded / "results.csv"
    res = cli(loaded, "results", "--checkpoint", "2025-08", "--format", "csv", "--out", str(out))
    assert res.exit_code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 5 and rows[0]["project_code"] == "2025-301001-001" and rows[0]["light"] == "red"


def test_results_table_shows_the_chinese_light_words(loaded: Path) -> None:
    cli(loaded, "run", "--checkpoint", "2025-05")
    res = cli(loaded, "results", "--checkpoint", "2025-05")
    assert res.exit_code == 0 and "葡萄酒产业宣传推介" in res.output and "红" in res.output


def test_results_of_a_checkpoint_never_run_is_a_clear_error(loaded: Path) -> None:
    res = cli(loaded, "results", "--checkpoint", "2025-08")
    assert res.exit_code == 1 and "monitor run --checkpoint 2025-08" in res.output


def test_invalid_checkpoint_is_a_usage_error(loaded: Path) -> None:
    res = cli(loaded, "run", "--checkpoint", "2025-13")
    assert res.exit_code == 2 and "YYYY-MM" in res.output


def test_run_with_a_broken_rule_file_stops_with_file_line_errors(loaded: Path) -> None:
    (loaded / "rules" / "local.yaml").write_text("budget:\n  red_below: lots\n", encoding="utf-8")
    res = cli(loaded, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 1 and "local.yaml:2: budget.red_below" in res.output


def test_demo_runs_the_main_job_on_a_small_sample(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)  # the demo writes its reports into ./reports
    res = cli(workdir, "demo", "--out", str(workdir / "demo"), "--projects", "60")
    assert res.exit_code == 0, res.output
    assert "检查点 2025-05" in res.output and "检查点 2025-08" in res.output
    assert len(results(workdir, "2025-08")) == 60


def test_rerun_with_the_rules_a_run_used_ignores_later_rule_changes(loaded: Path) -> None:
    cli(loaded, "run", "--checkpoint", "2025-05")
    (loaded / "rules" / "zz_local.yaml").write_text(
        "budget: {red_below: 0.10, yellow_below: 0.20}\n", encoding="utf-8"
    )
    cli(loaded, "run", "--checkpoint", "2025-05", "--rules-version", "used")
    assert results(loaded, "2025-05")[1]["budget_light"] == "red"  # 葡萄酒: r = 0.24, red by the old rules
    cli(loaded, "run", "--checkpoint", "2025-05")
    assert results(loaded, "2025-05")[1]["budget_light"] == "green"  # the new rules: 0.24 ≥ 0.20
    res = cli(loaded, "run", "--checkpoint", "2025-08", "--rules-version", "used")
    assert res.exit_code == 1 and "no run of 2025-08" in res.output

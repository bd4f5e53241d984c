"""The sample generator: deterministic, well-formed, consistent and realistic enough to demo and benchmark."""

from __future__ import annotations

import csv
import datetime as dt
import re
import statistics
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from monitor.tools.sample import sample_summary, write_sample
from monitor.tools.sample_rows import HEADERS

Rows = dict[str, list[dict[str, str]]]
MONEY = re.compile(r"^\d+\.\d\d$")


def read(paths: dict[str, Path]) -> Rows:
    rows: Rows = {}
    for kind, path in paths.items():
        with path.open(encoding="utf-8", newline="") as f:
            rows[kind] = list(csv.DictReader(f))
    return rows


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample(tmp_path_factory.mktemp("prefecture"))


@pytest.fixture(scope="module")
def rows(paths: dict[str, Path]) -> Rows:
    return read(paths)


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = write_sample(tmp_path / "a", projects=300, seed=7)
    second = write_sample(tmp_path / "b", projects=300, seed=7)
    other = write_sample(tmp_path / "c", projects=300, seed=8)
    assert all(first[k].read_bytes() == second[k].read_bytes() for k in HEADERS)
    assert first["projects"].read_bytes() != other["projects"].read_bytes()


def test_files_have_the_canonical_headers_in_order(paths: dict[str, Path]) -> None:
    assert set(paths) == set(HEADERS)
    for kind, path in paths.items():
        assert path.name == f"{kind}.csv"
        with path.open(encoding="utf-8", newline="") as f:
            assert tuple(next(csv.reader(f))) == HEADERS[kind]


def test_one_unit_per_2_9_projects_and_a_prefecture_of_about_40_departments_with_counties(rows: Rows) -> None:
    assert len(rows["projects"]) == 2450
    assert abs(len(rows["units"]) - 2450 / 2.9) <= 2
    departments = [u for u in rows["units"] if not u["supervisor_code"]]
    prefecture = [u for u in departments if u["unit_name"].startswith("州")]
    assert 35 <= len(prefecture) <= 45
    assert {"州农业农村局", "州教育局", "州卫生健康委员会"} <= {u["unit_name"] for u in prefecture}
    counties = {u["unit_name"][:3] for u in departments} - {u["unit_name"][:3] for u in prefecture}
    assert 2 <= len(counties) <= 5  # and a few counties' bureaus (青山县农业农村局 …)
    assert 3 <= (len(rows["units"]) - len(departments)) / len(departments) <= 10


def test_every_project_has_3_to_12_indicators_averaging_5_to_7(rows: Rows) -> None:
    per_project: dict[str, list[str]] = {p["project_code"]: [] for p in rows["projects"]}
    for indicator in rows["indicators"]:
        per_project[indicator["project_code"]].append(indicator["indicator_code"])
    counts = [len(codes) for codes in per_project.values()]
    assert min(counts) >= 3 and max(counts) <= 12
    assert 5 <= statistics.mean(counts) <= 7
    assert all(codes == [f"I{i:02d}" for i in range(1, len(codes) + 1)] for codes in per_project.values())


def test_budgets_are_lognormal_with_median_near_80_and_mean_near_330(rows: Rows) -> None:
    assert all(MONEY.match(p["budget"]) for p in rows["projects"])
    budgets = [float(p["budget"]) for p in rows["projects"]]
    assert min(budgets) >= 1.0
    assert 60 <= statistics.median(budgets) <= 105
    assert 240 <= statistics.mean(budgets) <= 440
    carried = [p for p in rows["projects"] if p["carryover"]]
    assert 0.05 <= len(carried) / len(budgets) <= 0.15
    assert all(MONEY.match(p["carryover"]) for p in carried)


def test_executed_never_exceeds_budget_plus_carryover_and_never_falls_from_may_to_august(rows: Rows) -> None:
    cap = {
        p["project_code"]: Fraction(p["budget"]) + Fraction(p["carryover"] or "0") for p in rows["projects"]
    }
    executed: dict[tuple[str, str], Fraction] = {}
    for report in rows["project_reports"]:
        assert MONEY.match(report["executed"])
        amount = Fraction(report["executed"])
        assert 0 <= amount <= cap[report["project_code"]]
        executed[report["checkpoint"], report["project_code"]] = amount
    for (checkpoint, code), amount in executed.items():
        if checkpoint == "2025-08" and ("2025-05", code) in executed:
            assert amount >= executed["2025-05", code]


def test_project_codes_are_unique_and_at_most_21_characters(rows: Rows) -> None:
    codes = [p["project_code"] for p in rows["projects"]]
    assert len(set(codes)) == len(codes)
    assert all(code.isdigit() and len(code) <= 21 for code in codes)
    units = [u["unit_code"] for u in rows["units"]]
    assert len(set(units)) == len(units) and all(code.isdigit() for code in units)


def test_every_reference_points_at_an_existing_unit_or_project(rows: Rows) -> None:
    units = {u["unit_code"] for u in rows["units"]}
    projects = {p["project_code"] for p in rows["projects"]}
    indicators = {(i["project_code"], i["indicator_code"]) for i in rows["indicators"]}
    assert all(p["unit_code"] in units for p in rows["projects"])
    assert {i["project_code"] for i in rows["indicators"]} == projects
    assert all(r["project_code"] in projects for r in rows["project_reports"])
    assert all((r["project_code"], r["indicator_code"]) in indicators for r in rows["indicator_reports"])


def test_every_supervisor_is_a_department(rows: Rows) -> None:
    departments = {u["unit_code"] for u in rows["units"] if not u["supervisor_code"]}
    subordinates = [u for u in rows["units"] if u["supervisor_code"]]
    assert subordinates
    assert all(u["supervisor_code"] in departments for u in subordinates)


def test_units_have_addresses_and_some_have_two(rows: Rows) -> None:
    emails = [u["email"].split(";") for u in rows["units"]]
    assert all(all("@" in address for address in unit) for unit in emails)
    assert 0.02 <= sum(len(unit) == 2 for unit in emails) / len(emails) <= 0.08


def test_some_projects_are_not_reported_at_each_checkpoint(rows: Rows) -> None:
    projects = {p["project_code"] for p in rows["projects"]}
    for checkpoint in ("2025-05", "2025-08"):
        reported = {r["project_code"] for r in rows["project_reports"] if r["checkpoint"] == checkpoint}
        missing = projects - reported
        assert 0 < len(missing) <= 0.03 * len(projects)
        indicator_reports = {
            r["project_code"] for r in rows["indicator_reports"] if r["checkpoint"] == checkpoint
        }
        assert not indicator_reports & missing


def test_may_budget_lights_are_mostly_green_with_some_yellow_and_red(rows: Rows) -> None:
    budget = {p["project_code"]: Fraction(p["budget"]) for p in rows["projects"]}
    progress = Fraction(5, 12)
    lights: Counter[str] = Counter()
    for report in rows["project_reports"]:
        if report["checkpoint"] == "2025-05":
            ratio = Fraction(report["executed"]) / budget[report["project_code"]] / progress
            lights["red" if ratio < Fraction(3, 5) else "yellow" if ratio < Fraction(4, 5) else "green"] += 1
    total = sum(lights.values())
    assert lights["green"] / total > 0.6
    assert 0.05 < lights["yellow"] / total < 0.3
    assert 0.05 < lights["red"] / total < 0.25
    assert any(r["executed"] == "0.00" for r in rows["project_reports"] if r["checkpoint"] == "2025-05")


def test_explicit_kinds_agree_with_the_kind_the_engine_would_infer(rows: Rows) -> None:
    def inferred(row: dict[str, str]) -> str:
        if row["direction"] == "定性":
            return "qualitative"
        if re.match(r"^\d{4}-\d\d-\d\d$", row["target"]):
            return "milestone"
        if row["level2"] == "数量" and row["direction"] in "≥>" and row["measure_unit"] != "%":
            return "cumulative"
        return "level"

    kinds = Counter(inferred(row) for row in rows["indicators"])
    assert all(kinds[kind] > 0 for kind in ("cumulative", "level", "milestone", "qualitative"))
    explicit = [row for row in rows["indicators"] if row["kind"]]
    assert 0.02 <= len(explicit) / len(rows["indicators"]) <= 0.08
    assert all(row["kind"] == inferred(row) for row in explicit)
    for row in rows["indicators"]:
        if inferred(row) == "milestone":
            assert dt.date.fromisoformat(row["target"]).year == 2025 and row["measure_unit"] == ""


def test_satisfaction_is_not_measured_in_may(rows: Rows) -> None:
    satisfaction = {
        (i["project_code"], i["indicator_code"]) for i in rows["indicators"] if i["level1"] == "满意度指标"
    }
    may = [r for r in rows["indicator_reports"] if r["checkpoint"] == "2025-05"]
    assert all(r["actual"] == "" for r in may if (r["project_code"], r["indicator_code"]) in satisfaction)


def test_units_explain_only_the_indicators_that_are_behind(rows: Rows) -> None:
    reports = rows["indicator_reports"]
    assert {r["possibility"] for r in reports} <= {"", "确定能", "有可能", "完全不可能"}
    assert 0 < sum(r["possibility"] == "完全不可能" for r in reports) < 0.01 * len(reports)
    causes = {"经费保障", "制度保障", "人员保障", "硬件条件保障", "其他"}
    explained = [r for r in reports if r["causes"]]
    assert explained and all(r["causes"] in causes and r["cause_text"] and r["measures"] for r in explained)
    assert all(not r["cause_text"] for r in reports if not r["causes"])


def test_summary_counts_the_data_rows_of_each_file(paths: dict[str, Path], rows: Rows) -> None:
    assert sample_summary(paths) == {kind: len(rows[kind]) for kind in HEADERS}


def test_a_single_project_still_gets_three_units(tmp_path: Path) -> None:
    counts = sample_summary(write_sample(tmp_path, projects=1))
    assert counts["units"] == 3 and counts["projects"] == 1


def test_zero_projects_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        write_sample(tmp_path, projects=0)


def test_sample_seasonal_progress_matches_the_shipped_profiles() -> None:
    from monitor.rules.load import load_rules
    from monitor.tools.sample import _PROGRESS

    profiles = load_rules(Path(__file__).resolve().parent.parent / "rules").profiles
    for name, (may, aug) in _PROGRESS.items():
        if name:
            assert (float(profiles[name][4]), float(profiles[name][7])) == (may, aug), name


def test_may_only_writes_the_same_rows_without_the_august_reports(
    tmp_path: Path, paths: dict[str, Path]
) -> None:
    from click.testing import CliRunner

    from monitor.cli.main import main

    out = tmp_path / "may"
    result = CliRunner().invoke(main, ["sample", "--out", str(out), "--may-only"])
    assert result.exit_code == 0, result.output
    full, may = read(paths), read({k: out / p.name for k, p in paths.items()})
    for kind in ("units", "projects", "indicators"):
        assert may[kind] == full[kind]
    for kind in ("project_reports", "indicator_reports"):
        assert {r["checkpoint"] for r in may[kind]} == {"2025-05"}
        assert may[kind] == [r for r in full[kind] if r["checkpoint"] == "2025-05"]

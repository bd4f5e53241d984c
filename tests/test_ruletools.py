"""Rule tooling for admins, end to end through the CLI on sample data: rule tests (shipped and
failing ones), `monitor check` over rules/tests, preview of a threshold change against an exact
independent computation, explain with override file:line, and rule versions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.cli.main import main
from monitor.db.engine import OUTBOX, PROJECT, PROJECT_REPORT, PROJECT_RESULT, RUN, count_rows, make_engine
from monitor.db.results import runs
from monitor.rules.load import load_rules

DATA = Path(__file__).resolve().parent / "data" / "ruletests"
CP = "2025-05"
OVERRIDE = """# stricter on central direct funds
overrides:
  - name: 直达资金从严
    match: {fund_flag: "01"}
    budget: {red_below: 0.70, yellow_below: 0.90}
"""


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def ok(workdir: Path, *args: str) -> Result:
    res = cli(workdir, *args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture
def sampled(workdir: Path) -> Path:
    """300 sample projects imported and the May checkpoint run (messages queued, not sent)."""
    res = CliRunner().invoke(main, ["sample", "--out", str(workdir / "data"), "--projects", "300"])
    assert res.exit_code == 0, res.output
    ok(workdir, "import", str(workdir / "data"))
    ok(workdir, "run", "--checkpoint", CP, "--no-send")
    return workdir


@contextmanager
def connect(workdir: Path) -> Iterator[Connection]:
    """A connection to the test database, its engine disposed after (PostgreSQL drops it after the test)."""
    from monitor.config.settings import load_settings

    eng = make_engine(load_settings(workdir / "config.yaml").database_url)
    try:
        with eng.connect() as conn:
            yield conn
    finally:
        eng.dispose()


# --- rule tests -----------------------------------------------------------------------------------


def test_shipped_rule_tests_pass(workdir: Path) -> None:
    res = ok(workdir, "test-rules")
    assert "FAIL" not in res.output and " 0 failed (4 file(s))" in res.output
    assert res.output.count("PASS") >= 60


def test_a_failing_rule_test_shows_its_difference_and_exits_non_zero(workdir: Path) -> None:
    res = cli(workdir, "test-rules", str(DATA / "wrong_expectation.yaml"))
    assert res.exit_code == 1
    lines = res.output.splitlines()
    fail_at = lines.index("  FAIL  wrong_expectation.yaml:4  30/100 in May expected green (wrong on purpose)")
    assert lines[fail_at + 1].strip() == "P1 budget light: expected green, got yellow"
    assert lines[fail_at + 2].strip() == "P1 reasons: none contains “为序时进度的80.0%”"
    assert "为序时进度的72.0%（不低于60%、低于80%为黄灯）" in res.output  # the reasons say why
    assert "  PASS  wrong_expectation.yaml:9  50/100 in May is green" in lines
    assert lines[-1] == "1 passed, 1 failed (1 file(s))"


def test_rule_test_mistakes_are_file_line_errors_in_check_and_test_rules(workdir: Path) -> None:
    bad = workdir / "rules" / "tests" / "mistakes.bad.yaml"
    shutil.copy(DATA / "mistakes.bad.yaml", bad)
    res = cli(workdir, "check")
    assert res.exit_code == 1
    errors = [line for line in res.output.splitlines() if line.startswith(str(bad))]
    assert [e.split(": ", 2)[:2] for e in errors] == [
        [f"{bad}:3", "cases[0].checkpoint"],
        [f"{bad}:9", "cases[1].projects[0].expcet"],
        [f"{bad}:10", "cases[1].projects[1].budget"],
        [f"{bad}:12", "cases[2].checkpoint"],
        [f"{bad}:18", "cases[3].rules.budget.yelow_below"],
        [f"{bad}:22", "cases[3].projects[0].expect.indicators.I09"],
    ]
    assert f"{workdir / 'rules' / 'tests' / 'budget.yaml'}: syntax OK" in res.output
    res = cli(workdir, "test-rules", str(bad))
    assert (
        res.exit_code == 1 and f"ERROR {bad}:18: cases[3].rules.budget.yelow_below: unknown key" in res.output
    )


def test_shipped_rule_tests_follow_the_rules_in_force(workdir: Path) -> None:
    (workdir / "rules" / "local.yaml").write_text("budget: {red_below: 0.5}\n", encoding="utf-8")
    res = cli(workdir, "test-rules")
    assert res.exit_code == 1
    assert "P1 budget light: expected red, got yellow" in res.output  # 24.99/100 in May is now yellow


# --- preview --------------------------------------------------------------------------------------


def budget_ratios(workdir: Path) -> dict[str, Fraction]:
    """r = (executed / budget) / P of every reported project, computed here from the stored inputs."""
    profiles = load_rules(workdir / "rules").profiles
    with connect(workdir) as conn:
        projects = {r.code: (r.budget, r.profile) for r in conn.execute(select(PROJECT))}
        executed = dict(
            conn.execute(
                select(PROJECT_REPORT.c.project_code, PROJECT_REPORT.c.executed).where(
                    PROJECT_REPORT.c.checkpoint == CP
                )
            ).all()
        )
    out = {}
    for code, spent in executed.items():
        budget, profile = projects[code]
        p = Fraction(profiles[profile][4]) if profile in profiles else Fraction(5, 12)
        out[code] = Fraction(spent, budget) / p
    return out


def stored_target_lights(workdir: Path) -> dict[str, str | None]:
    return {
        r["project_code"]: r["target_light"]
        for r in json.loads(ok(workdir, "results", "--checkpoint", CP, "--format", "json").stdout)
    }


def counts(workdir: Path) -> list[int]:
    """Rows in the tables a run writes: outbox, run, project_result."""
    with connect(workdir) as conn:
        return [count_rows(conn, t) for t in (OUTBOX, RUN, PROJECT_RESULT)]


def test_preview_of_a_lower_yellow_threshold_turns_exactly_the_projects_between_them_green(
    sampled: Path,
) -> None:
    ratios = budget_ratios(sampled)
    targets = stored_target_lights(sampled)
    between = {c for c, r in ratios.items() if Fraction(7, 10) <= r < Fraction(8, 10)}
    must_turn_green = {c for c in between if targets[c] in ("green", None)}  # targets keep the others lit
    assert must_turn_green and between - must_turn_green
    candidate = sampled / "candidate.yaml"
    candidate.write_text("budget: {yellow_below: 0.70}\n", encoding="utf-8")
    before = counts(sampled)

    data = json.loads(
        ok(sampled, "preview", "--rules", str(candidate), "--checkpoint", CP, "--format", "json").stdout
    )

    turned = {
        c["project_code"]
        for c in data["changed"]
        if (c["before"]["light"], c["after"]["light"]) == ("yellow", "green")
    }
    assert turned == must_turn_green
    budget_turned = {
        c["project_code"]
        for c in data["changed"]
        if (c["before"]["budget_light"], c["after"]["budget_light"]) == ("yellow", "green")
    }
    assert budget_turned == between
    assert data["transitions"] == [{"from": "yellow", "to": "green", "count": len(must_turn_green)}]
    assert data["matrix"]["yellow"]["green"] == len(must_turn_green)
    assert counts(sampled) == before  # nothing written
    table = ok(sampled, "preview", "--rules", str(candidate), "--checkpoint", CP).output
    assert f"project lights that change: yellow→green {len(must_turn_green)}" in table


def test_preview_tells_which_units_get_a_different_email_and_how_many_messages(sampled: Path) -> None:
    candidate = sampled / "candidate.yaml"
    candidate.write_text("budget: {yellow_below: 0.70}\n", encoding="utf-8")
    data = json.loads(
        ok(sampled, "preview", "--rules", str(candidate), "--checkpoint", CP, "--format", "json").stdout
    )
    changed = {c["project_code"]: c for c in data["changed"]}
    results = json.loads(ok(sampled, "results", "--checkpoint", CP, "--format", "json").stdout)
    warned: dict[str, set[str]] = {}
    for r in results:
        if r["light"] in ("yellow", "red"):
            warned.setdefault(r["unit_code"], set()).add(r["project_code"])
    gone = {m["unit_code"] for m in data["mail"] if m["kind"] == "warning" and m["change"] == "gone"}
    expected_gone = {
        u
        for u, codes in warned.items()
        if all(changed.get(c, {}).get("after", {}).get("light") == "green" for c in codes)
    }
    assert gone == expected_gone and gone
    assert not [m for m in data["mail"] if m["change"] == "new"]
    touched = {
        r["unit_code"] for r in results if r["project_code"] in changed and r["light"] in ("yellow", "red")
    }
    digests = {m["unit_code"] for m in data["mail"] if m["kind"] == "warning"}
    assert digests == touched
    assert data["messages"]["difference"] == -len(gone)


def test_preview_against_the_rules_a_run_used_sees_an_edit_made_in_place(sampled: Path) -> None:
    (sampled / "rules" / "local.yaml").write_text("budget: {yellow_below: 0.70}\n", encoding="utf-8")
    rules = str(sampled / "rules")
    data = json.loads(
        ok(
            sampled, "preview", "--rules", rules, "--checkpoint", CP, "--against", "used", "--format", "json"
        ).stdout
    )
    assert data["before"]["rules"] == f"rules used by run 1 of {CP}"
    assert [(t["from"], t["to"]) for t in data["transitions"]] == [("yellow", "green")]
    same = json.loads(ok(sampled, "preview", "--rules", rules, "--checkpoint", CP, "--format", "json").stdout)
    assert same["transitions"] == [] and same["changed"] == []


def test_preview_of_an_invalid_candidate_names_its_file_line_and_field(sampled: Path) -> None:
    candidate = sampled / "candidate.yaml"
    candidate.write_text("# typo\nbudget: {yelow_below: 0.70}\n", encoding="utf-8")
    res = cli(sampled, "preview", "--rules", str(candidate), "--checkpoint", CP)
    assert res.exit_code == 1
    assert f"{candidate}:2: budget.yelow_below: unknown key (got 'yelow_below')" in res.output


# --- explain --------------------------------------------------------------------------------------


def a_project(workdir: Path, **where: str) -> str:
    rows = json.loads(ok(workdir, "results", "--checkpoint", CP, "--format", "json").stdout)
    with connect(workdir) as conn:
        flags = dict(conn.execute(select(PROJECT.c.code, PROJECT.c.fund_flag)).all())
    for r in rows:
        if r["status"] == "reported" and all(
            (flags[r["project_code"]] if k == "fund_flag" else r[k]) == v for k, v in where.items()
        ):
            return str(r["project_code"])
    raise AssertionError(f"no project with {where}")


def test_explain_names_the_override_that_applied_with_its_file_line(sampled: Path) -> None:
    (sampled / "rules" / "local.yaml").write_text(OVERRIDE, encoding="utf-8")
    code = a_project(sampled, fund_flag="01")
    out = ok(sampled, "explain", code, "--checkpoint", CP).output
    assert "files merged in this order: default.yaml, local.yaml" in out
    assert "override “直达资金从严” (local.yaml:3) matches: fund_flag 01" in out
    assert "red below     70% (覆盖规则“直达资金从严”（local.yaml:3）)" in out
    assert "yellow below  90% (覆盖规则“直达资金从严”（local.yaml:3）)" in out
    assert "依据覆盖规则“直达资金从严”（local.yaml 第3行）" in out  # the budget reason names it too
    assert "fund flag     01" in out and "time progress" in out and "indicators" in out
    used = ok(sampled, "explain", code, "--checkpoint", CP, "--rules-version", "used").output
    assert "no override matches this project" in used and "red below     60% (default.yaml:18)" in used


def test_explain_lists_the_notifications_sent_about_the_project(sampled: Path) -> None:
    code = a_project(sampled, light="red")
    with connect(sampled) as conn:
        ids = [
            r.id
            for r in conn.execute(select(OUTBOX).where(OUTBOX.c.checkpoint == CP).order_by(OUTBOX.c.id))
            if r.kind in ("warning", "summary") and code in r.snapshot
        ]
    out = ok(sampled, "explain", code, "--checkpoint", CP).output
    listed = [line for line in out.splitlines() if line.startswith("  #")]
    assert [int(line.split()[0][1:]) for line in listed] == ids and len(ids) == 2
    assert "warning  reason first  status pending" in listed[0]


def test_explain_of_an_unknown_project_names_it(sampled: Path) -> None:
    res = cli(sampled, "explain", "NO-SUCH", "--checkpoint", CP)
    assert res.exit_code == 1 and "no project 'NO-SUCH' in the database" in res.output


# --- rule versions ----------------------------------------------------------------------------------


def test_rules_history_lists_two_versions_after_a_rule_change_and_a_second_run(sampled: Path) -> None:
    (sampled / "rules" / "local.yaml").write_text(OVERRIDE, encoding="utf-8")
    ok(sampled, "run", "--checkpoint", CP, "--no-send")
    with connect(sampled) as conn:
        hashes = [r["rules_hash"] for r in runs(conn)]
    assert len(set(hashes)) == 2
    lines = ok(sampled, "rules", "history").output.splitlines()
    versions = [line for line in lines if line.startswith("version ")]
    assert len(versions) == 2
    assert versions[0].startswith(f"version 1  {hashes[0][:12]}") and "files: default.yaml" in versions[0]
    assert (
        versions[1].startswith(f"version 2  {hashes[1][:12]}")
        and "files: default.yaml, local.yaml" in versions[1]
    )
    assert versions[1].endswith("← the rules folder now")
    assert lines[1].startswith(f"    run 1  {CP}") and lines[3].startswith(f"    run 2  {CP}")


# --- the README ---------------------------------------------------------------------------------------

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_rule_test_example_passes(workdir: Path) -> None:
    section = README.split("### Rule test format", 1)[1].split("\n## ", 1)[0]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = workdir / "example.yaml"
    path.write_text(example, encoding="utf-8")
    res = ok(workdir, "test-rules", str(path))
    assert res.output.splitlines()[-1] == "3 passed, 0 failed (1 file(s))"


def test_the_readme_walkthrough_checks_tests_and_previews_a_candidate_folder(sampled: Path) -> None:
    candidate = sampled / "candidate"
    shutil.copytree(sampled / "rules", candidate)
    (candidate / "local.yaml").write_text("budget: {yellow_below: 0.70}\n", encoding="utf-8")
    check = ok(sampled, "check", "--rules", str(candidate))
    assert (
        f"{candidate / 'local.yaml'}: OK" in check.output
        and f"{candidate / 'tests' / 'budget.yaml'}: syntax OK" in check.output
    )
    tests = cli(sampled, "test-rules", "--rules", str(candidate))
    assert tests.exit_code == 1 and "P1 budget light: expected yellow, got green" in tests.output  # r = 0.75
    table = ok(sampled, "preview", "--rules", str(candidate), "--checkpoint", CP).output
    assert "project lights that change: yellow→green" in table and "messages for this checkpoint:" in table

"""Hostile and careless rule and config files (issue 17): alias bombs, deep nesting, oversized files,
bytes YAML refuses, values its constructors refuse, and numbers that are not finite or out of range.
Each gives the clear `file:line: field: message (got VALUE)` error through `monitor check` (and the
service's reload keeps the rules in force), never a traceback, a hang or gigabytes of memory."""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.cli.main import main
from monitor.config.yamlfile import MAX_BYTES
from monitor.db.engine import SERVICE_EVENT
from monitor.service.runner import Service, fixed_start_clock


def bomb(levels: int, width: int = 9) -> str:
    """The "billion laughs" file: each level a list of `width` aliases of the level below."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"budget: *a{levels}")
    return "\n".join(lines) + "\n"


def check(workdir: Path) -> Result:
    return CliRunner().invoke(main, ["check", "--config", str(workdir / "config.yaml")])


def capped_memory() -> None:
    """In the child: at most 1.5 GB of address space, so the bomb fails fast instead of taking the host."""
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_an_alias_bomb_in_a_rule_file_is_refused_at_once_with_its_line(workdir: Path) -> None:
    (workdir / "rules" / "bomb.yaml").write_text(bomb(9), encoding="utf-8")
    started = time.monotonic()
    try:  # a real process with its memory capped: before the fix it ran out of memory or time
        res = subprocess.run(
            [sys.executable, "-m", "monitor", "check", "--config", str(workdir / "config.yaml")],
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=60,
            preexec_fn=capped_memory,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"monitor check still running after {time.monotonic() - started:.0f} s") from exc
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert f"{workdir / 'rules' / 'bomb.yaml'}:2: a1[0]: YAML aliases (*a0) are not allowed" in res.stdout
    # the same through the command in this process: within a second
    started = time.monotonic()
    again = check(workdir)
    assert again.exit_code == 1 and "bomb.yaml:2: a1[0]: YAML aliases (*a0)" in again.output
    assert time.monotonic() - started < 1.0


def test_aliases_and_merge_keys_are_refused_in_config_yaml(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    base = cfg.read_text(encoding="utf-8")
    cfg.write_text(
        base + "mail:\n  bureau_recipients: &who [jxk@czj.example.gov.cn]\n  admin_recipients: *who\n",
        encoding="utf-8",
    )
    res = check(workdir)
    assert res.exit_code == 1, res.output
    assert f"{cfg}:7: mail.admin_recipients: YAML aliases (*who) are not allowed" in res.output
    cfg.write_text(base + "x: &x {a: 1}\nmail:\n  <<: *x\n", encoding="utf-8")
    res = check(workdir)
    assert res.exit_code == 1 and f"{cfg}:7: mail: YAML merge keys (<<) are not allowed" in res.output


def test_deep_nesting_is_an_error_with_its_line_not_a_recursion_error(workdir: Path) -> None:
    deep = workdir / "rules" / "deep.yaml"
    deep.write_text("budget:\n  red_below: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", encoding="utf-8")
    res = check(workdir)
    assert isinstance(res.exception, SystemExit) and res.exit_code == 1, res.output
    assert f"{deep}:2: budget.red_below" in res.output and "nested deeper than 32 levels" in res.output
    flow = workdir / "rules" / "flow.yaml"
    deep.unlink()
    flow.write_text("\n" + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    res = check(workdir)
    assert isinstance(res.exception, SystemExit) and res.exit_code == 1, res.output
    assert f"{flow}:2" in res.output


def test_a_rule_file_over_one_mib_is_refused(workdir: Path) -> None:
    big = workdir / "rules" / "local.yaml"
    padding = "# " + "注释" * 40 + "\n"
    big.write_text(
        "budget: {red_below: 0.55}\n" + padding * (MAX_BYTES // len(padding.encode()) + 1), "utf-8"
    )
    assert big.stat().st_size > MAX_BYTES
    res = check(workdir)
    assert res.exit_code == 1, res.output
    assert f"{big}: file too large: {big.stat().st_size} bytes (at most 1048576 bytes, 1 MiB)" in res.output


def test_bytes_and_values_yaml_refuses_are_errors_with_their_lines(workdir: Path) -> None:
    rules = workdir / "rules"
    (rules / "a_nul.yaml").write_bytes(b"budget:\n  red_below: 0.5\x00\n")
    (rules / "b_latin1.yaml").write_bytes(
        "budget:\n  # 说明\n  red_below: 0.5 # é\n".encode("latin-1", "replace")
    )
    (rules / "c_gbk.yaml").write_bytes("budget:\n  red_below: 0.5\n# 红灯阈值\n".encode("gbk"))
    (rules / "d_values.yaml").write_text(
        "budget:\n  red_below: " + "9" * 5000 + "\nprofiles:\n  p: 2025-13-45\n", encoding="utf-8"
    )
    (rules / "e_tags.yaml").write_text("budget:\n  red_below: !!bool maybe\n", encoding="utf-8")
    res = check(workdir)
    assert isinstance(res.exception, SystemExit) and res.exit_code == 1, res.output
    out = res.output
    assert f"{rules / 'a_nul.yaml'}:2: character U+0000 is not allowed in a YAML file" in out
    assert f"{rules / 'c_gbk.yaml'}:3: not UTF-8 text: byte 0x" in out and "save the file as UTF-8" in out
    assert f"{rules / 'd_values.yaml'}:2: budget.red_below: cannot read this value: Exceeds the limit" in out
    assert f"{rules / 'd_values.yaml'}:4: profiles.p: cannot read this value: month must be in 1..12" in out
    assert "(got '2025-13-45')" in out and "(got '" + "9" * 190 in out and "9" * 300 not in out
    assert f"{rules / 'e_tags.yaml'}:2: budget.red_below: cannot read this value" in out


def test_thresholds_must_be_finite_and_in_range(workdir: Path) -> None:
    local = workdir / "rules" / "local.yaml"
    local.write_text(
        "budget:\n"
        "  red_below: 1e309\n"  # 2
        "  yellow_below: .inf\n"  # 3
        "indicators:\n"
        "  cumulative:\n"
        "    blue_from: 1e-999999999\n"  # 6
        "  level:\n"
        "    tolerance: .nan\n"  # 8
        "profiles:\n"
        "  p: [.nan, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1e309]\n"  # 10
        "overrides:\n"
        "  - name: big\n"
        "    match: {budget_min: 1e309}\n"  # 13
        "    budget: {red_below: 11}\n",  # 14
        encoding="utf-8",
    )
    res = check(workdir)
    assert res.exit_code == 1, res.output
    for expected in [
        ":2: budget.red_below: Input should be less than or equal to 10 (got '1e309')",
        ":3: budget.yellow_below: Input should be a finite number (got inf)",
        ":6: indicators.cumulative.blue_from: at most 12 decimal places (got '1e-999999999')",
        ":8: indicators.level.tolerance: Input should be a finite number (got nan)",
        ":10: profiles.p[0]: Input should be a finite number (got nan)",
        ":13: overrides[0].match.budget_min: Input should be less than or equal to 100000000 (got '1e309')",
        ":14: overrides[0].budget.red_below: Input should be less than or equal to 10 (got 11)",
    ]:
        assert f"{local}{expected}" in res.output, (expected, res.output)


def test_config_numbers_must_be_finite_and_in_range(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")  # 4 lines
        + "schedule:\n"
        "  lease_seconds: .inf\n"  # 6
        "  reconcile_seconds: 1e309\n"  # 7
        "  catch_up_days: 99999999999999\n"  # 8
        "  watch_seconds: .nan\n"  # 9
        "  checkpoints:\n"
        "    - {month: 5, run_time: 10:30, reminder_days_before_deadline: [3, 100000000000]}\n"  # 11
        "notifications:\n"
        "  holidays: [20251001]\n"  # 13
        "results_application:\n"
        "  key_budget_min: 1e-99\n"  # 15
        "  key_rate_below: .inf\n",  # 16
        encoding="utf-8",
    )
    res = check(workdir)
    assert res.exit_code == 1, res.output
    for expected in [
        ":6: schedule.lease_seconds: Input should be a finite number (got inf)",
        ":7: schedule.reconcile_seconds: Input should be a finite number (got '1e309')",
        ":8: schedule.catch_up_days: Input should be less than or equal to 366 (got 99999999999999)",
        ":9: schedule.watch_seconds: Input should be a finite number (got nan)",
        ':11: schedule.checkpoints[0].run_time: a time of day is written as "09:30" (in quotes), not as a'
        " number (got 630)",
        ":11: schedule.checkpoints[0].reminder_days_before_deadline[1]: Input should be less than or equal"
        " to 60 (got 100000000000)",
        ':13: notifications.holidays[0]: a date is written as "2025-10-01" (in quotes), not as a number'
        " (got 20251001)",
        ":15: results_application.key_budget_min: at most 6 decimal places (got '1e-99')",
        ":16: results_application.key_rate_below: Input should be a finite number (got inf)",
    ]:
        assert f"{cfg}{expected}" in res.output, (expected, res.output)


def test_the_service_reload_refuses_a_bomb_and_keeps_the_rules_in_force(workdir: Path) -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    svc = Service(workdir / "config.yaml", None, fixed_start_clock(start), instance="test")
    before = svc.state.rules.hash
    try:
        (workdir / "rules" / "zz_local.yaml").write_text(bomb(6), encoding="utf-8")  # 531,441 leaves
        started = time.monotonic()
        assert svc.reload("test") is False
        assert time.monotonic() - started < 1.0
        assert svc.state.rules.hash == before
        with svc.state.app.engine.connect() as conn:
            rows = conn.execute(
                select(SERVICE_EVENT.c.ok, SERVICE_EVENT.c.detail).where(SERVICE_EVENT.c.kind == "reload")
            ).all()
        assert [r.ok for r in rows] == [False]
        assert "zz_local.yaml:2: a1[0]: YAML aliases (*a0) are not allowed" in rows[0].detail
    finally:
        svc.shutdown()


def test_the_login_window_is_bounded(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + "web:\n  login_window_minutes: 99999999999999\n", encoding="utf-8"
    )
    res = check(workdir)
    assert res.exit_code == 1 and f"{cfg}:6: web.login_window_minutes" in res.output, res.output

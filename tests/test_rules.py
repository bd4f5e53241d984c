"""Rule files and config.yaml: every mistake reported at once with file:line, through `monitor check`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config.settings import load_settings
from monitor.config.yamlfile import Invalid
from monitor.rules.load import load_rules

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "data" / "rules"


def check(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(workdir / "config.yaml"), *args],
        capture_output=True,
        text=True,
        cwd=workdir,
    )


def with_rule_file(workdir: Path, name: str) -> Path:
    shutil.copy(BAD / name, workdir / "rules" / name)
    return workdir / "rules" / name


def test_shipped_rules_and_config_check_ok(workdir: Path) -> None:
    res = check(workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "default.yaml: OK" in res.stdout and "config.yaml: OK" in res.stdout


def test_check_reports_three_mistakes_as_three_file_line_errors(workdir: Path) -> None:
    path = with_rule_file(workdir, "three_mistakes.bad.yaml")
    res = check(workdir)
    assert res.returncode == 1
    errors = [line for line in res.stdout.splitlines() if line.startswith(str(path))]
    assert len(errors) == 3, res.stdout
    order = "thresholds out of order: must not be below red_below (0.80) (got 0.60)"
    assert errors[0] == f"{path}:4: budget.yellow_below: {order}"
    assert errors[1] == f"{path}:7: indicators.level.tolerence: unknown key (got 'tolerence')"
    assert errors[2].startswith(f"{path}:9: profiles.late[11]: the December share must be 1 (got 0.99)")
    assert "default.yaml: OK" in res.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "override_names_nothing.bad.yaml",
            [(3, "override matches nothing"), (5, "override changes nothing")],
        ),
        ("profile_decreasing.bad.yaml", [(2, "month 3: shares must not decrease"), (3, "needs 12 monthly")]),
        ("wrong_types.bad.yaml", [(2, "budget.red_below"), (3, "combine"), (5, "time_progress.mode")]),
        ("yaml_syntax.bad.yaml", [(3, "YAML syntax error")]),
    ],
)
def test_each_bad_rule_file_names_every_line(
    workdir: Path, name: str, expected: list[tuple[int, str]]
) -> None:
    path = with_rule_file(workdir, name)
    res = check(workdir)
    assert res.returncode == 1
    errors = [line for line in res.stdout.splitlines() if line.startswith(str(path))]
    assert len(errors) == len(expected), res.stdout
    for line, (number, fragment) in zip(errors, expected, strict=True):
        assert re.match(rf"{re.escape(str(path))}:{number}: ", line), line
        assert fragment in line


def test_override_naming_an_unknown_profile_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "rules" / "local.yaml").write_text(
        "overrides:\n  - name: x\n    match: {category: 基本建设}\n    profile: nope\n", encoding="utf-8"
    )
    with pytest.raises(Invalid) as exc:
        load_rules(tmp_path / "rules")
    assert [str(p) for p in exc.value.problems] == [
        f"{tmp_path / 'rules' / 'local.yaml'}:2: overrides.profile: unknown profile (got 'nope')"
    ]


def test_later_rule_file_overrides_and_changes_the_hash(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    before = load_rules(tmp_path / "rules")
    (tmp_path / "rules" / "zz_local.yaml").write_text("budget: {yellow_below: 0.85}\n", encoding="utf-8")
    after = load_rules(tmp_path / "rules")
    assert str(before.budget_yellow_below) == "0.80" and str(after.budget_yellow_below) == "0.85"
    assert before.hash != after.hash and len(after.hash) == 64


def test_unknown_config_key_is_reported_with_its_line(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + "databse: {}\ntime_zone: Mars/Olympus\n", encoding="utf-8"
    )
    with pytest.raises(Invalid) as exc:
        load_settings(cfg)
    assert str(exc.value.problems[0]) == f"{cfg}:5: databse: unknown key (got 'databse')"
    res = check(workdir)
    assert res.returncode == 1 and "databse: unknown key" in res.stderr


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "database: {path: data/m.db}\nrules_dir: myrules\n", encoding="utf-8"
    )
    s = load_settings(tmp_path / "config.yaml", env={})
    assert s.database_url == f"sqlite:///{tmp_path / 'data' / 'm.db'}"
    assert s.rules_dir == tmp_path / "myrules"


def test_database_url_from_the_environment_wins_and_hides_the_password(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database: {url: 'sqlite:///x.db'}\n", encoding="utf-8")
    env = {"MONITOR_DATABASE_URL": "postgresql+psycopg://monitor:s3cret@127.0.0.1/monitor"}
    s = load_settings(tmp_path / "config.yaml", env=env)
    assert s.database_url == env["MONITOR_DATABASE_URL"]
    assert "s3cret" not in s.redacted_url() and "***" in s.redacted_url()


def test_mail_settings_can_be_overridden_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "mail: {mode: file, smtp: {host: mail.local, port: 25}}\n", encoding="utf-8"
    )
    env = {"MONITOR_MAIL_MODE": "smtp", "MONITOR_SMTP_HOST": "127.0.0.1", "MONITOR_SMTP_PORT": "2525"}
    s = load_settings(tmp_path / "config.yaml", env={**env, "MONITOR_SMTP_PASSWORD": "s3cret"})
    assert (s.mail.mode, s.mail.smtp.host, s.mail.smtp.port) == ("smtp", "127.0.0.1", 2525)
    assert s.smtp_password == "s3cret" and "s3cret" not in repr(s)
    with pytest.raises(Invalid) as exc:
        load_settings(tmp_path / "config.yaml", env={"MONITOR_SMTP_PORT": "smtp"})
    assert str(exc.value.problems[0]) == "MONITOR_SMTP_PORT: must be a port number 1..65535 (got 'smtp')"

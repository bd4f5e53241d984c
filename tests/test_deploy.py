"""The files in deploy/ stay true: the production config passes `monitor check` when installed the way
README's Operations section says (config, rules and templates in /etc/budget-monitor), and the unit and
the env example name only what the program reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli.main import main
from monitor.config.settings import ENV_VARS

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def test_production_config_passes_check_in_the_installed_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    etc = tmp_path / "etc" / "budget-monitor"  # what the README's install steps make
    etc.mkdir(parents=True)
    shutil.copy(DEPLOY / "config.production.yaml", etc / "config.yaml")
    shutil.copytree(ROOT / "rules", etc / "rules")
    shutil.copytree(ROOT / "templates", etc / "templates")
    res = CliRunner().invoke(main, ["check", "--config", str(etc / "config.yaml")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"{etc / 'config.yaml'}: OK" in res.output


def test_env_example_sets_only_variables_the_program_reads() -> None:
    lines = (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines()
    names = {line.lstrip("#").split("=", 1)[0] for line in lines if "=" in line and " " not in line}
    assert names == {
        "MONITOR_SMTP_PASSWORD",
        "MONITOR_DATABASE_URL",
        "MONITOR_MAIL_MODE",
        "MONITOR_WEB_SECRET",
    }
    assert names <= set(ENV_VARS)


def test_unit_runs_serve_with_the_installed_config_as_an_unprivileged_user() -> None:
    unit = dict(
        line.split("=", 1)
        for line in (DEPLOY / "budget-monitor.service").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert unit["ExecStart"] == (
        "/opt/budget-monitor/.venv/bin/monitor serve --config /etc/budget-monitor/config.yaml"
    )
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["User"] == unit["Group"] == "budget-monitor"
    assert unit["EnvironmentFile"] == "/etc/budget-monitor/env"
    assert unit["NoNewPrivileges"] == "yes" and unit["ProtectSystem"] == "strict"


def test_unit_hardening_is_rated_below_two_by_systemd_analyze_security() -> None:
    """systemd's own rating of the unit (offline): 3.2 before the system call filter, /proc and IPC
    settings; at most 2.0 now (lower is safer)."""
    unit = str(DEPLOY / "budget-monitor.service")
    rated = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rated.returncode == 0, rated.stdout[-600:] + rated.stderr
    assert "Overall exposure level for budget-monitor.service: 1." in rated.stdout

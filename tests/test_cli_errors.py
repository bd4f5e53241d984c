"""The CLI's error taxonomy, through the command line: bad input (a MonitorError) exits 1 printing only
its message(s); a bug (any other exception) exits 3 with its traceback on stderr, even where the
command once caught LookupError broadly and called a KeyError "bad input"; a usage error stays 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from monitor.cli.main import main

CP = "2025-05"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def planted_bug(*_args: object, **_kwargs: object) -> None:
    raise KeyError("planted-bug-key")


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("monitor.tools.explain.explain", ("explain", "P001", "--checkpoint", CP)),
        ("monitor.app.App.rules_used", ("run", "--checkpoint", CP, "--rules-version", "used", "--no-send")),
        ("monitor.cases.exemptions.revoke", ("exempt", "revoke", "1")),
        ("monitor.app.App.results", ("results", "--checkpoint", CP)),
    ],
)
def test_a_bug_exits_3_with_its_traceback_not_1_as_bad_input(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, target: str, args: tuple[str, ...]
) -> None:
    monkeypatch.setattr(target, planted_bug)
    res = cli(workdir, *args)
    assert res.exit_code == 3, res.output
    assert "Traceback (most recent call last)" in res.stderr
    assert "KeyError: 'planted-bug-key'" in res.stderr
    assert "a bug" in res.stderr


def test_explain_with_the_rules_used_on_an_empty_database_is_bad_input(workdir: Path) -> None:
    res = cli(workdir, "explain", "P001", "--checkpoint", CP, "--rules-version", "used")
    assert res.exit_code == 1
    assert res.stderr == f"no run of {CP}: run `monitor run --checkpoint {CP}` first\n"
    assert res.stdout == ""


def test_an_unknown_project_and_an_unknown_exemption_are_bad_input(workdir: Path) -> None:
    res = cli(workdir, "explain", "NOPE", "--checkpoint", CP)
    assert (res.exit_code, res.stderr) == (1, "no project 'NOPE' in the database\n")
    res = cli(workdir, "exempt", "revoke", "7")
    assert (res.exit_code, res.stderr) == (1, "没有编号为 7 的豁免（no exemption 7）\n")


def test_bad_rules_are_bad_input_with_every_problem(workdir: Path) -> None:
    (workdir / "rules" / "zz-broken.yaml").write_text("budget: [\n", encoding="utf-8")
    res = cli(workdir, "run", "--checkpoint", CP, "--no-send")
    assert res.exit_code == 1
    assert "zz-broken.yaml:" in res.stderr and "YAML syntax error" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_usage_error_still_exits_2(workdir: Path) -> None:
    res = cli(workdir, "run", "--checkpoint", "May")
    assert res.exit_code == 2
    assert "checkpoint must be a month YYYY-MM" in res.stderr


def commands(help_text: str) -> list[str]:
    """The command names `--help` lists (a wrapped description's next lines are indented further)."""
    listing = help_text.split("Commands:\n", 1)[1].splitlines()
    return [line.split()[0] for line in listing if line.startswith("  ") and line[2] != " "]


def test_python_m_monitor_and_the_console_script_list_the_same_commands() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "monitor", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert commands(listed) == commands(CliRunner().invoke(main, ["--help"]).stdout)
    for command in ("import", "run", "send", "outbox", "serve", "explain", "exempt", "chase", "web"):
        assert command in commands(listed)


def test_web_without_its_secret_is_bad_input(workdir: Path) -> None:
    res = CliRunner(env={"MONITOR_WEB_SECRET": None}).invoke(
        main, ["web", "--config", str(workdir / "config.yaml")], catch_exceptions=False
    )
    assert res.exit_code == 1
    assert "MONITOR_WEB_SECRET" in res.stderr and "Traceback" not in res.stderr

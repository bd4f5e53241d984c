"""Working days follow the State Council's calendar (the `chinesecalendar` package): a warning sent on
Friday 26 September 2025 asks for an answer within 10 working days, and National Day (1–8 October)
and the weekends worked in lieu (Sunday 28 September, Saturday 11 October) move that day; the
config's `holidays` and `extra_workdays` still override it, for a local holiday."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from mailserver import body_text

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
FRIDAY = dt.datetime(2025, 9, 26, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def answer_by(workdir: Path, extra_config: str = "") -> set[str]:
    """The answer deadlines the warnings of a run on FRIDAY state, read from the .eml files."""
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "mail: {mode: file, file_dir: sent}\n" + extra_config)
    res = CliRunner().invoke(main, ["import", str(EXAMPLES), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    App(load_settings(cfg), lambda: FRIDAY).run(Checkpoint(2025, 8))
    found = set()
    for path in sorted((workdir / "sent").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        if msg["X-Monitor-Kind"] != "warning":
            continue
        text = body_text(msg)
        found |= {line.split("请于 ")[1].split(" 前")[0] for line in text.splitlines() if "请于 " in line}
    assert found, "no warning stated an answer deadline"
    return found


def test_the_answer_deadline_skips_national_day_and_counts_the_weekends_worked_in_lieu(workdir: Path) -> None:
    # 28 Sep (Sun, worked), 29, 30, 9 Oct, 10, 11 (Sat, worked), 13, 14, 15, 16: the tenth working day.
    # Monday to Friday alone would give 10 October, inside no holiday at all.
    assert answer_by(workdir) == {"2025年10月16日"}


def test_the_config_still_adds_a_local_holiday(workdir: Path) -> None:
    # 13 Oct a local holiday: 28, 29, 30, 9, 10, 11, 14, 15, 16, 17
    assert answer_by(workdir, 'notifications:\n  holidays: ["2025-10-13"]\n') == {"2025年10月17日"}


def test_the_config_still_adds_a_local_working_day(workdir: Path) -> None:
    # 4 Oct (a holiday on the official calendar) worked locally: 28, 29, 30, 4, 9, 10, 11, 13, 14, 15
    assert answer_by(workdir, 'notifications:\n  extra_workdays: ["2025-10-04"]\n') == {"2025年10月15日"}

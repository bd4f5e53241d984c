"""Message templates: `monitor check` compiles and renders every one (errors at file:line), admins
override a template by a file of the same name, and `monitor preview-mail` writes messages
without queueing anything."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from click.testing import CliRunner, Result
from mailserver import body_text

from monitor.cli.main import main

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def test_check_reports_a_template_syntax_error_with_its_line(workdir: Path) -> None:
    path = workdir / "templates" / "reminder.body.txt"
    path.write_text("第一行\n{% for p in projects %}\n{{ p.code }\n", encoding="utf-8")
    res = cli(workdir, "check")
    assert res.exit_code == 1
    assert f"{path}:3:" in res.output


def test_check_reports_an_unknown_variable_with_its_line(workdir: Path) -> None:
    path = workdir / "templates" / "warning.subject.txt"
    path.write_text("{{ period }}\n{{ no_such_field }}\n", encoding="utf-8")
    res = cli(workdir, "check")
    assert res.exit_code == 1
    assert f"{path}:2: 'no_such_field' is undefined" in res.output


def override(workdir: Path) -> Path:
    folder = workdir / "my_templates"
    folder.mkdir()
    (folder / "warning.subject.txt").write_text(
        "【本局定制】{{ unit_name }} {{ period }}\n", encoding="utf-8"
    )
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + "notifications: {template_override_dir: my_templates}\n"
        "mail: {mode: file, file_dir: sent}\n",
        encoding="utf-8",
    )
    return folder


def test_admin_template_of_the_same_name_wins_and_the_rest_stay(workdir: Path) -> None:
    override(workdir)
    assert cli(workdir, "check").exit_code == 0
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05").exit_code == 0
    files = sorted((workdir / "sent").glob("*-warning-302.eml"))
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "【本局定制】市商务局 2025年1-5月"
    assert "葡萄酒产业宣传推介" in body_text(msg)  # shipped body template


def test_preview_mail_writes_eml_and_html_without_queueing(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    out = workdir / "preview"
    res = cli(workdir, "preview-mail", "--checkpoint", "2025-05", "--unit", "301001", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["0001-warning-301001.eml", "0001-warning-301001.html"]
    assert "免疫注射牲畜" in (out / "0001-warning-301001.html").read_text(encoding="utf-8")
    listed = cli(workdir, "outbox")
    assert "5 message(s)" in listed.output  # only what the run queued: 4 digests and the summary

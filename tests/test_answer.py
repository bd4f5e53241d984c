"""Every warning tells the unit how to answer. With the web part configured (a signing secret) the e-mail
carries the unit's link, and the Quick start's `monitor demo` configures it: its e-mails carry links that
the web part, started with the command the demo prints, opens on the unit's page. Without a secret (the
shipped config.yaml) the warning has a Reply-To mailbox (mail.reply_to, default the bureau's first
recipient) and the unit's answer workbook attached (the one `monitor responses template` writes), its body
says to reply with it and its footer no longer says not to reply; the 催办 and 督办 have the Reply-To too."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import httpx
import openpyxl
import pytest
from click.testing import CliRunner, Result
from mailserver import body_text
from sqlalchemy import update

from monitor.cases.exemptions import local_day
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.db.engine import WARNING_CASE, make_engine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOT_TO_REPLY = "请勿直接回复"
ENV_NO_SECRET = {"MONITOR_WEB_SECRET": None, "MONITOR_CONFIG": None}


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner(env=ENV_NO_SECRET).invoke(
        main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False
    )


def mails(folder: Path, kind: str) -> dict[tuple[str, str], EmailMessage]:
    """The .eml files of `kind` in `folder`, parsed strictly, by (checkpoint, unit)."""
    found = {}
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        if msg["X-Monitor-Kind"] == kind:
            found[(str(msg["X-Monitor-Checkpoint"]), str(msg["X-Monitor-Unit"]))] = msg
    return found


def text(msg: EmailMessage) -> str:
    return body_text(msg)


def html(msg: EmailMessage) -> str:
    return body_text(msg, "html")


# --- with the web part: the demo ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_mails_carry_links_that_the_web_part_it_names_opens(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)  # the demo writes its reports into ./reports
    res = cli(workdir, "demo", "--out", str(workdir / "demo"), "--projects", "60")
    assert res.exit_code == 0, res.output
    secret_file = workdir / "demo" / "web-secret"
    secret = secret_file.read_text(encoding="ascii").strip()
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret not in res.output  # never printed: the command reads it from the file
    command = re.search(r"^web pages \(units answer their warnings there\): (.+)$", res.output, re.M)
    shown = re.search(
        r"then open unit (\S+)'s link from its e-mail: (http://127\.0\.0\.1:8650/u/\S+)$", res.output, re.M
    )
    assert command and shown, res.output
    assert command[1] == (
        f'MONITOR_WEB_SECRET="$(cat {secret_file})" monitor web --config {workdir / "config.yaml"}'
    )
    unit, printed = shown[1], shown[2]

    warnings = mails(workdir / "outbox", "warning")
    msg = warnings[("2025-08", unit)]
    links = re.findall(r"http://127\.0\.0\.1:8650/u/[A-Za-z0-9_.\-]+", text(msg))
    assert len(links) == 1 and f'href="{links[0]}"' in html(msg)
    # written out as well, for a mail client that shows no button: the HTML's visible text holds it
    assert links[0] in re.sub(r"<[^>]+>", " ", html(msg)).replace("&amp;", "&")
    assert all(re.search(r"/u/[A-Za-z0-9_.\-]+", text(m)) for m in warnings.values())
    assert not list(msg.iter_attachments())  # the link is the way to answer: no workbook
    name = text(msg).split("（单位编码", 1)[0]

    # the web part started as the demo says (in a shell, `monitor` on the PATH), on a free port
    port = free_port()
    log = workdir / "web.log"
    env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_WEB_SECRET", "MONITOR_CONFIG")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", f"{command[1]} --port {port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
            try:
                httpx.get(base + "/login", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text(encoding="utf-8", errors="replace")
                time.sleep(0.1)
        for url in (links[0], printed):
            page = httpx.get(url.replace("http://127.0.0.1:8650", base), timeout=10)
            assert page.status_code == 200, page.text
            assert name in page.text and "本单位项目监控结果" in page.text
            assert 'name="measure"' in page.text  # the form to answer its warnings
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # bash and the web part it started
            proc.wait(timeout=15)
    assert secret not in log.read_text(encoding="utf-8", errors="replace")


def test_the_demo_keeps_its_secret_private_and_reuses_it(workdir: Path, tmp_path: Path) -> None:
    from monitor.tools.demoweb import local_web

    settings = load_settings(workdir / "config.yaml", env={})
    first = local_web(settings, tmp_path / "demo")
    assert first.settings.web.base_url == "http://127.0.0.1:8650" and first.secret_file is not None
    assert local_web(settings, tmp_path / "demo").settings.web_secret == first.settings.web_secret
    first.secret_file.chmod(0o644)  # readable by others: not trusted, a new one is made, private
    again = local_web(settings, tmp_path / "demo")
    assert again.settings.web_secret != first.settings.web_secret
    assert first.secret_file.stat().st_mode & 0o777 == 0o600
    mine = load_settings(
        workdir / "config.yaml", env={"MONITOR_WEB_SECRET": "x" * 20 + "Ab3-Zq9_Lm2Wc7Rt5Yp0Vn8Ks4"}
    )
    assert local_web(mine, tmp_path / "other").secret_file is None  # the environment's secret is used
    assert not (tmp_path / "other").exists()


# --- without it: the shipped config ---------------------------------------------------------------


@pytest.fixture
def shipped(workdir: Path, db_url: str) -> Path:
    """The shipped config.yaml (its database on the test's), the worked examples run for 2025-05 without
    a signing secret, mail written to outbox/."""
    cfg = (ROOT / "config.yaml").read_text(encoding="utf-8")
    assert "  path: monitor.db\n" in cfg
    (workdir / "config.yaml").write_text(cfg.replace("  path: monitor.db\n", f"  url: {db_url}\n"), "utf-8")
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    res = cli(workdir, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    return workdir


def sheet_values(data: bytes) -> tuple[list[tuple[Any, ...]], list[tuple[str, str | None, str]]]:
    ws = openpyxl.load_workbook(io.BytesIO(data))["整改反馈"]
    checks = sorted((str(d.sqref), d.formula1, d.type) for d in ws.data_validations.dataValidation)
    return list(ws.iter_rows(values_only=True)), checks


def test_without_a_secret_the_warning_has_reply_to_and_the_units_workbook_attached(
    shipped: Path, tmp_path: Path
) -> None:
    msg = mails(shipped / "outbox", "warning")[("2025-05", "304")]
    assert msg["Reply-To"] == "jxk@czj.example.gov.cn"  # the bureau's first recipient
    body, page = text(msg), html(msg)
    assert "/u/" not in body
    assert NOT_TO_REPLY not in body and NOT_TO_REPLY not in page
    assert "请填写本邮件所附反馈表（反馈表-304-2025-05.xlsx：" in body
    assert "填好后作为附件直接回复本邮件（回复将送达 jxk@czj.example.gov.cn）" in body
    assert "反馈表-304-2025-05.xlsx" in page and "直接回复本邮件" in page
    (part,) = list(msg.iter_attachments())
    assert part.get_content_type() == XLSX
    assert part.get_filename() == "反馈表-304-2025-05.xlsx"
    (raw,) = [p.read_bytes() for p in (shipped / "outbox").glob("*-warning-304.eml")]
    assert b"filename*=utf-8''%E5%8F%8D%E9%A6%88%E8%A1%A8-304-2025-05.xlsx" in raw  # RFC 2231
    attached = cast(bytes, part.get_content())

    # it is the unit's response template, as `monitor responses template --unit 304` writes it
    out = tmp_path / "304.xlsx"
    res = cli(shipped, "responses", "template", "--checkpoint", "2025-05", "--unit", "304", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert sheet_values(attached) == sheet_values(out.read_bytes())
    rows, _ = sheet_values(attached)
    assert [r[3] for r in rows[3:]] == ["2025-304-001", "2025-304-002"]

    # filled in and sent back, it imports
    wb = openpyxl.load_workbook(io.BytesIO(attached))
    ws = wb["整改反馈"]
    header = [c.value for c in ws[3]]
    due = (local_day(dt.datetime.now(dt.UTC)) + dt.timedelta(days=60)).isoformat()
    for row in (4, 5):
        for column, value in (
            ("偏差原因类别", "硬件条件保障"),
            ("原因说明", "路灯更换器材到货延迟"),
            ("纠偏措施", "继续实施"),
            ("措施说明", "督促供货商7月前到货"),
            ("预计完成时间", due),
        ):
            ws.cell(row, header.index(column) + 1, value)
    back = tmp_path / "反馈表-304-2025-05.xlsx"
    wb.save(back)
    res = cli(shipped, "import", str(back))
    assert res.exit_code == 0, res.output
    assert "responses 2" in res.output


def test_the_chase_and_the_escalation_have_reply_to_and_say_how_to_answer(shipped: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:  # the cases opened forty days ago: both steps are due
        before = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
        conn.execute(update(WARNING_CASE).values(opened_at=before))
    engine.dispose()
    assert cli(shipped, "chase", "--checkpoint", "2025-05").exit_code == 0
    assert cli(shipped, "chase", "--checkpoint", "2025-05", "--escalate").exit_code == 0
    reminder = mails(shipped / "outbox", "case_reminder")[("2025-05", "304")]
    assert reminder["Reply-To"] == "jxk@czj.example.gov.cn"
    body = text(reminder)
    assert "请填写预警通知所附反馈表（反馈表-304-2025-05.xlsx），作为附件直接回复本邮件" in body
    assert NOT_TO_REPLY not in body and NOT_TO_REPLY not in html(reminder)
    escalations = list(mails(shipped / "outbox", "case_escalation").values())
    assert escalations
    for msg in escalations:
        assert msg["Reply-To"] == "jxk@czj.example.gov.cn"
        assert NOT_TO_REPLY not in text(msg) and NOT_TO_REPLY not in html(msg)


def test_reply_to_is_configured_and_checked_as_an_address(shipped: Path) -> None:
    cfg = shipped / "config.yaml"
    shipped_text = cfg.read_text(encoding="utf-8")
    cfg.write_text(shipped_text.replace("  from_name:", "  reply_to: 绩效科@example\n  from_name:"), "utf-8")
    res = cli(shipped, "check")
    assert res.exit_code == 1
    line = shipped_text.splitlines().index("  from_name: 州财政局预算绩效管理科") + 1
    assert f"config.yaml:{line}: mail.reply_to:" in res.output and "not a valid e-mail address" in res.output
    cfg.write_text(
        shipped_text.replace("  from_name:", "  reply_to: fk@czj.example.gov.cn\n  from_name:"), "utf-8"
    )
    shutil.rmtree(shipped / "outbox")
    assert cli(shipped, "run", "--checkpoint", "2025-08").exit_code == 0
    assert {m["Reply-To"] for m in mails(shipped / "outbox", "warning").values()} == {"fk@czj.example.gov.cn"}

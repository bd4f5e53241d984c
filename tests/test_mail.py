"""Warning e-mails end to end against a real SMTP server (aiosmtpd on 127.0.0.1): one digest per
unit, CC to the supervising department for red, the bureau summary, nothing twice, and delivery
faults (451, 550, server down, a sender killed mid-send) with nothing lost."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from mailserver import MailServer, attachments, body_text
from sqlalchemy import select

from monitor.cli.main import main
from monitor.core.rows import OutboxEntry
from monitor.db.engine import DELIVERY_ATTEMPT, make_engine
from monitor.db.inputs import load_units
from monitor.deliver import outbox
from monitor.notify.render import Rendered, build_message

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def smtp_config(workdir: Path, port: int, backoff: float = 0.05, inline_wait: float = 5) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"""mail:
  mode: smtp
  from_address: jxk@czj.example.gov.cn
  bureau_recipients: [jxk@czj.example.gov.cn, leader@czj.example.gov.cn]
  smtp: {{host: 127.0.0.1, port: {port}, connections: 2}}
  retry: {{backoff_seconds: {backoff}, inline_wait_seconds: {inline_wait}, max_attempts: 5}}
""",
        encoding="utf-8",
    )


@pytest.fixture
def server() -> Iterator[MailServer]:
    with MailServer() as s:
        yield s


@pytest.fixture
def examples(workdir: Path, server: MailServer) -> Path:
    smtp_config(workdir, server.port)
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    return workdir


def rows(db_url: str) -> list[OutboxEntry]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        out = outbox.messages(conn)
    engine.dispose()
    return out


def by_kind(server: MailServer, kind: str) -> list[EmailMessage]:
    return [m.message for m in server.messages if m.message["X-Monitor-Kind"] == kind]


def test_checkpoint_run_on_sample_data_sends_one_digest_per_warned_unit(
    workdir: Path, server: MailServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workdir)  # the demo writes its reports into ./reports
    smtp_config(workdir, server.port)
    res = cli(workdir, "demo", "--out", str(workdir / "data"), "--projects", "150")
    assert res.exit_code == 0, res.output
    engine = make_engine(db_url)
    with engine.connect() as conn:
        supervised = {code for code, u in load_units(conn).items() if u.supervisor_code}
    engine.dispose()
    for cp in ("2025-05", "2025-08"):
        results = store_results(workdir, cp)
        warned = {r["unit_code"] for r in results if r["light"] in ("yellow", "red")}
        digests = [m for m in by_kind(server, "warning") if m["X-Monitor-Checkpoint"] == cp]
        assert sorted(m["X-Monitor-Unit"] for m in digests) == sorted(warned)  # exactly one each
        for m in digests:
            unit = m["X-Monitor-Unit"]
            red = any(r["light"] == "red" for r in results if r["unit_code"] == unit)
            assert bool(m["Cc"]) == (red and unit in supervised), (unit, m["Cc"])
            assert m["Subject"].startswith("【预算绩效监控预警】")
            assert m.get_body(("plain",)) is not None and m.get_body(("html",)) is not None
        summaries = [m for m in by_kind(server, "summary") if m["X-Monitor-Checkpoint"] == cp]
        assert len(summaries) == 1 and "leader@czj.example.gov.cn" in summaries[0]["To"]
    before = len(server.messages)
    again = cli(workdir, "run", "--checkpoint", "2025-08")
    assert again.exit_code == 0 and "none new" in again.output
    assert len(server.messages) == before


def store_results(workdir: Path, cp: str) -> list[dict[str, Any]]:
    import json

    res = cli(workdir, "results", "--checkpoint", cp, "--format", "json")
    data: list[dict[str, Any]] = json.loads(res.output)
    return data


def test_digest_content_decodes_in_chinese_with_numbers_and_reasons(
    examples: Path, server: MailServer
) -> None:
    assert cli(examples, "run", "--checkpoint", "2025-05").exit_code == 0
    (msg,) = [m for m in by_kind(server, "warning") if m["X-Monitor-Unit"] == "301001"]
    assert msg["Subject"] == (
        "【预算绩效监控预警】2025年1-5月 市动物疫病预防控制中心：红灯项目0个、黄灯项目1个，"
        f"请于{body_text(msg).split('请于 ')[1].split(' 前')[0]}前反馈"
    )
    assert "=?utf-8?" in server.messages[0].raw.decode("ascii").split("\r\n\r\n")[0]  # RFC 2047 on the wire
    text = body_text(msg)
    assert "动物疫病强制免疫疫苗采购" in text and "1,180.00 万元" in text and "执行率 60.0%" in text
    assert (
        "免疫注射牲畜" in text and "序时完成60.0%" in text and "群体免疫密度" in text and "偏离4.4%" in text
    )
    assert "经费保障／制度保障／人员保障／硬件条件保障／其他" in text
    html = body_text(msg, "html")
    assert "黄灯" in html and "#fff1c2" in html  # the colour always carries the word too
    assert [str(a.addr_spec) for a in msg["To"].addresses] == ["dwyf@example.gov.cn", "nyj-cw@example.gov.cn"]
    assert msg["To"].addresses[0].display_name == "市动物疫病预防控制中心"
    assert not msg["Cc"]  # only yellow


def test_red_digest_is_copied_to_the_supervising_department(examples: Path, server: MailServer) -> None:
    assert cli(examples, "run", "--checkpoint", "2025-08").exit_code == 0
    (msg,) = [m for m in by_kind(server, "warning") if m["X-Monitor-Unit"] == "301001"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["nyj@example.gov.cn"]
    (received,) = [r for r in server.messages if r.message["Message-ID"] == msg["Message-ID"]]
    assert "nyj@example.gov.cn" in received.recipients


def test_changed_results_send_one_update_that_says_what_changed(examples: Path, server: MailServer) -> None:
    assert cli(examples, "run", "--checkpoint", "2025-05").exit_code == 0
    first = len(server.messages)
    fix = examples / "fix.csv"
    fix.write_text("checkpoint,project_code,executed\n2025-05,2025-304-002,10\n", encoding="utf-8")
    assert cli(examples, "import", str(fix)).exit_code == 0  # still red, numbers changed: no news
    assert cli(examples, "run", "--checkpoint", "2025-05").exit_code == 0
    assert len(server.messages) == first
    fix.write_text("checkpoint,project_code,executed\n2025-05,2025-302-001,100\n", encoding="utf-8")
    assert cli(examples, "import", str(fix)).exit_code == 0  # red → green
    assert cli(examples, "run", "--checkpoint", "2025-05").exit_code == 0
    new = [r.message for r in server.messages[first:]]
    assert sorted(m["X-Monitor-Kind"] for m in new) == ["summary", "warning"]
    (update,) = [m for m in new if m["X-Monitor-Kind"] == "warning"]
    assert update["X-Monitor-Unit"] == "302" and update["X-Monitor-Reason"] == "improved"
    assert update["Subject"].startswith("【预警好转】")
    assert "红灯 → 绿灯" in body_text(update)


def test_server_answering_451_twice_delivers_after_retries(
    examples: Path, server: MailServer, db_url: str
) -> None:
    server.fail_next(2)
    res = cli(examples, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    sent = rows(db_url)
    assert {r["status"] for r in sent} == {"sent"}
    assert len(server.messages) == len(sent) == 5  # 4 digests and the summary, each exactly once
    assert sorted(r["attempts"] for r in sent)[-2:] == [2, 2]
    assert len({m.message["Message-ID"] for m in server.messages}) == 5


def test_server_refusing_one_recipient_fails_that_message_and_delivers_the_rest(
    examples: Path, server: MailServer, db_url: str
) -> None:
    server.refuse("swj@example.gov.cn", "550 5.1.1 <swj@example.gov.cn>: mailbox unavailable")
    res = cli(examples, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0
    status = {r["unit_code"]: (r["status"], r["last_error"]) for r in rows(db_url)}
    state, error = status["302"]
    assert state == "failed" and "550 5.1.1 <swj@example.gov.cn>: mailbox unavailable" in (error or "")
    assert {s for u, (s, _) in status.items() if u != "302"} == {"sent"}
    assert len(server.messages) == 4
    listed = cli(examples, "outbox", "--status", "failed")
    assert "mailbox unavailable" in listed.output and "1 message(s)" in listed.output
    assert cli(examples, "send").exit_code == 0  # nothing pending: a failed message stays failed
    assert cli(examples, "outbox", "retry", "--failed").output.startswith("re-queued 1")


def test_server_down_at_send_time_delivers_on_the_next_send(workdir: Path, db_url: str) -> None:
    server = MailServer()
    smtp_config(workdir, server.port, backoff=0.2, inline_wait=0)
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    res = cli(workdir, "run", "--checkpoint", "2025-05")
    # each of the 5 messages refused, to be retried (on a loaded machine the run may try a due one again)
    retried = re.search(r"retry (\d+)", res.output)
    assert res.exit_code == 0 and retried and int(retried.group(1)) >= 5, res.output
    pending = rows(db_url)
    assert {r["status"] for r in pending} == {"pending"}
    assert "connection refused" in (pending[0]["last_error"] or "")
    with server:
        time.sleep(0.3)
        assert cli(workdir, "send").exit_code == 0
        assert len(server.wait_for(5)) == 5
    assert {r["status"] for r in rows(db_url)} == {"sent"}


class StallingServer(MailServer):
    """Holds every DATA answer until released: a sender is caught in the middle of sending."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = True

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        while self.stalled:
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_sender_killed_after_claiming_loses_nothing(workdir: Path, db_url: str) -> None:
    with StallingServer() as server:
        smtp_config(workdir, server.port)
        assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
        assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "send", "--config", str(workdir / "config.yaml")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not [r for r in rows(db_url) if r["status"] == "sending"]:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        in_flight = {r["message_id"] for r in rows(db_url) if r["status"] == "sending"}
        assert in_flight, "the sender was killed while messages were claimed"
        server.stalled = False
        res = cli(workdir, "send")
        assert res.exit_code == 0, res.output
        assert "released" in res.output
        all_ids = {r["message_id"] for r in rows(db_url)}
        assert {r["status"] for r in rows(db_url)} == {"sent"}
        received = [m.message["Message-ID"] for m in server.wait_for(len(all_ids))]
        assert set(received) == all_ids  # nothing lost
        twice = {mid for mid in received if received.count(mid) > 1}
        assert twice <= in_flight  # only what was in flight may arrive twice, with the same Message-ID


def test_names_with_line_breaks_cannot_inject_headers() -> None:
    env = build_message(
        Rendered("主题\r\nBcc: evil@example.com", "正文", "<p>正文</p>"),
        sender=("州财政局", "jxk@example.gov.cn"),
        to=[("单位\r\nBcc: evil@example.com", "u@example.gov.cn")],
        reply_to=None,
        message_id="<x@y>",
        date=__import__("datetime").datetime(2025, 6, 1, tzinfo=__import__("datetime").UTC),
        headers={"X-Monitor-Unit": "U1\nBcc: evil@example.com"},
    )
    head = env.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "\nBcc:" not in head and env.recipients == ("u@example.gov.cn",)
    parsed = email.message_from_bytes(env.raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["To"].addresses[0].display_name == "单位 Bcc: evil@example.com"


def test_attempts_are_recorded(examples: Path, server: MailServer, db_url: str) -> None:
    server.fail_next(1)
    assert cli(examples, "run", "--checkpoint", "2025-05").exit_code == 0
    engine = make_engine(db_url)
    with engine.connect() as conn:
        outcomes = [r[0] for r in conn.execute(select(DELIVERY_ATTEMPT.c.outcome))]
    engine.dispose()
    assert sorted(outcomes) == ["sent"] * 5 + ["transient"]


def test_bureau_summary_can_carry_the_reports_as_attachments(workdir: Path, server: MailServer) -> None:
    import io

    import openpyxl

    smtp_config(workdir, server.port)
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace("mail:\n", "mail:\n  summary_attachments: [xlsx, html]\n")
    )
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05").exit_code == 0
    (summary,) = by_kind(server, "summary")
    files = {name: a.get_content() for name, a in attachments(summary).items()}
    assert sorted(files) == ["监控报告-2025-05.html", "预警清单-2025-05.xlsx"]
    book = openpyxl.load_workbook(io.BytesIO(files["预警清单-2025-05.xlsx"]))
    assert book["预警清单"].max_row == 6  # header + the five projects
    assert "2025年1-5月" in files["监控报告-2025-05.html"]  # text/html; charset=utf-8: read as text
    assert summary.get_body(("plain",)) is not None  # the text part is still there
    (digest, *_) = by_kind(server, "warning")
    # a unit gets no report, only its answer workbook (no web secret here: replying is the way to answer)
    assert [a.get_filename() for a in digest.iter_attachments()] == [
        f"反馈表-{digest['X-Monitor-Unit']}-2025-05.xlsx"
    ]

"""Delivery is tracked per recipient (issue 16, point 1), through the path an operator takes: `monitor
run` against a real SMTP server (aiosmtpd) that refuses some recipients of a message with 451
(temporary) or 550 (permanent) while accepting the others. A temporary refusal is retried for that
recipient alone, a permanent one is recorded with the server's answer, and `monitor outbox`,
`monitor status` and the metrics show a message delivered in part as needing attention."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mailserver import MailServer

from monitor.cli.main import main
from monitor.db.engine import make_engine
from monitor.service.http import HttpEndpoint

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
UNIT = "301001"  # 市动物疫病预防控制中心: dwyf@ and nyj-cw@, supervised by 301 (nyj@)
BUSY = "451 4.2.1 mailbox busy, try later"
GONE = "550 5.1.1 no such user"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture
def server() -> Iterator[MailServer]:
    with MailServer() as running:
        yield running


@pytest.fixture
def configured(workdir: Path, server: MailServer) -> Path:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"""mail:
  mode: smtp
  bureau_recipients: [jxk@czj.example.gov.cn]
  smtp: {{host: 127.0.0.1, port: {server.port}}}
  retry: {{backoff_seconds: 0.2, inline_wait_seconds: 5, max_attempts: 4}}
""",
        encoding="utf-8",
    )
    res = cli(workdir, "import", str(EXAMPLES))
    assert res.exit_code == 0, res.output
    return workdir


def deliveries(server: MailServer) -> Counter[tuple[str, str]]:
    """(unit, recipient) → how many times the recipient received a message about that unit."""
    return Counter(
        (m.message["X-Monitor-Unit"], r)
        for m in server.messages
        for r in m.recipients
        if m.message["X-Monitor-Kind"] == "warning"
    )


def test_a_recipient_refused_with_451_is_retried_alone_and_550_is_recorded_as_failed(
    configured: Path, server: MailServer
) -> None:
    server.refuse("dwyf@example.gov.cn", BUSY, times=1)
    server.refuse("nyj-cw@example.gov.cn", GONE)
    res = cli(configured, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    got = deliveries(server)
    # the temporarily refused unit address got its warning on a later attempt, once
    assert got[(UNIT, "dwyf@example.gov.cn")] == 1
    # the other recipients of the same message were not sent it twice
    assert all(n == 1 for n in got.values()), got
    assert (UNIT, "nyj-cw@example.gov.cn") not in got

    listing = cli(configured, "outbox")
    assert "partial" in listing.output
    assert "nyj-cw@example.gov.cn" in listing.output and "550 5.1.1 no such user" in listing.output
    failed = cli(configured, "outbox", "--status", "partial")
    assert failed.exit_code == 0 and "1 message(s)" in failed.output

    status = cli(configured, "status")
    assert status.exit_code == 1
    assert "1 message(s) delivered in part" in status.output

    # the operator fixes the address at the server's end and retries: only that recipient again
    server.accept("nyj-cw@example.gov.cn")
    retried = cli(configured, "outbox", "retry", "--failed")
    assert "re-queued 1 message(s)" in retried.output
    sent = cli(configured, "send")
    assert sent.exit_code == 0, sent.output
    got = deliveries(server)
    assert got[(UNIT, "nyj-cw@example.gov.cn")] == 1
    assert all(n == 1 for n in got.values()), got
    assert cli(configured, "status").exit_code == 0


def test_a_recipient_still_refused_with_451_after_the_last_attempt_fails_alone(
    configured: Path, server: MailServer
) -> None:
    server.refuse("dwyf@example.gov.cn", BUSY)  # never clears
    res = cli(configured, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    got = deliveries(server)
    assert got[(UNIT, "nyj-cw@example.gov.cn")] == 1 and (UNIT, "dwyf@example.gov.cn") not in got
    assert all(n == 1 for n in got.values()), got
    listing = cli(configured, "outbox", "--status", "partial").output
    assert "dwyf@example.gov.cn" in listing and BUSY in listing

    engine = make_engine(
        (configured / "config.yaml").read_text(encoding="utf-8").split("url: ")[1].split("\n")[0]
    )
    try:
        metrics = HttpEndpoint(0, lambda: engine, lambda: False).metrics()
    finally:
        engine.dispose()
    assert 'monitor_outbox_messages{status="partial"} 1.0' in metrics
    assert "monitor_outbox_recipients_failed 1.0" in metrics


def test_every_recipient_refused_with_451_keeps_the_message_pending_and_delivers_it_later(
    configured: Path, server: MailServer
) -> None:
    for address in ("dwyf@example.gov.cn", "nyj-cw@example.gov.cn", "nyj@example.gov.cn"):
        server.refuse(address, BUSY, times=1)
    res = cli(configured, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    got = deliveries(server)
    assert got[(UNIT, "dwyf@example.gov.cn")] == 1 and got[(UNIT, "nyj-cw@example.gov.cn")] == 1
    assert all(n == 1 for n in got.values()), got
    assert cli(configured, "status").exit_code == 0

"""Delivery against a real SMTP server (aiosmtpd on 127.0.0.1): reused connections, parallel sends,
the rate limit, transient and permanent failures, reconnects; the .eml folder; error classification."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import aiosmtplib
import pytest
from mailserver import MailServer

from monitor.config.settings import MailConfig, SmtpConfig
from monitor.deliver.transport import (
    Delivered,
    DeliveryError,
    Envelope,
    FileTransport,
    MemoryTransport,
    SmtpTransport,
    classify,
    make_transport,
)

T = TypeVar("T")
SENDER = "jxk@czj.example.gov.cn"


@pytest.fixture
def server() -> Iterator[MailServer]:
    with MailServer() as s:
        yield s


def envelope(i: int, *to: str) -> Envelope:
    recipients = to or ("unit@example.cn",)
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"预算执行预警 第{i}号"
    msg.set_content(f"项目 {i}：执行率偏低。\n")
    return Envelope(i, SENDER, recipients, msg.as_bytes(), name=f"{i:06d}-warning")


def config(server: MailServer, **changes: Any) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=server.port, timeout_seconds=5).model_copy(update=changes)


def with_transport(cfg: SmtpConfig, body: Callable[[SmtpTransport], Awaitable[T]], password: str = "") -> T:
    async def run() -> T:
        async with SmtpTransport(cfg, password or None) as transport:
            return await body(transport)

    return asyncio.run(run())


def send_all(cfg: SmtpConfig, envelopes: list[Envelope]) -> list[Delivered]:
    async def body(t: SmtpTransport) -> list[Delivered]:
        return list(await asyncio.gather(*(t.send(e) for e in envelopes)))

    return with_transport(cfg, body)


def subjects(server: MailServer) -> Counter[str]:
    return Counter(str(m.message["Subject"]) for m in server.messages)


def test_fifty_messages_travel_over_at_most_two_connections(server: MailServer) -> None:
    send_all(config(server, connections=2), [envelope(i) for i in range(50)])
    assert len(server.wait_for(50)) == 50
    assert 1 <= server.connections <= 2


def test_messages_sent_one_after_another_reuse_one_connection(server: MailServer) -> None:
    async def body(t: SmtpTransport) -> None:
        for i in range(10):
            await t.send(envelope(i))

    with_transport(config(server, connections=4), body)
    assert len(server.messages) == 10
    assert server.connections == 1


def test_parallel_sends_over_four_connections_each_arrive_exactly_once(server: MailServer) -> None:
    results = send_all(config(server, connections=4), [envelope(i) for i in range(40)])
    assert results == [Delivered()] * 40
    server.wait_for(40)
    assert subjects(server) == Counter(f"预算执行预警 第{i}号" for i in range(40))
    assert len({m.peer for m in server.messages}) > 1
    assert server.connections <= 4


def test_rate_limit_of_twenty_per_second_spreads_thirty_messages_over_more_than_a_second(
    server: MailServer,
) -> None:
    start = time.monotonic()
    send_all(config(server, connections=4, rate_per_second=20), [envelope(i) for i in range(30)])
    assert time.monotonic() - start >= 1.4  # 29 intervals of 50 ms after the first message
    assert len(server.messages) == 30


def test_answer_451_twice_is_transient_and_the_third_attempt_is_delivered(server: MailServer) -> None:
    server.fail_next(2, "451 4.3.0 Try again later")

    async def body(t: SmtpTransport) -> list[DeliveryError | Delivered]:
        outcomes: list[DeliveryError | Delivered] = []
        for _ in range(3):
            try:
                outcomes.append(await t.send(envelope(1)))
            except DeliveryError as exc:
                outcomes.append(exc)
        return outcomes

    first, second, third = with_transport(config(server), body)
    for failed in (first, second):
        assert isinstance(failed, DeliveryError)
        assert not failed.permanent
        assert "451 4.3.0 Try again later" in str(failed)
    assert third == Delivered()
    assert len(server.messages) == 1
    assert server.connections == 1  # a refused message does not cost the connection


def test_refused_single_recipient_is_permanent_and_the_next_message_still_goes_out(
    server: MailServer,
) -> None:
    server.refuse("gone@example.cn", "550 5.1.1 mailbox unavailable")

    async def body(t: SmtpTransport) -> DeliveryError:
        with pytest.raises(DeliveryError) as refused:
            await t.send(envelope(1, "gone@example.cn"))
        await t.send(envelope(2, "here@example.cn"))
        return refused.value

    error = with_transport(config(server), body)
    assert error.permanent
    assert str(error) == "recipient <gone@example.cn> refused: 550 5.1.1 mailbox unavailable"
    assert [m.recipients for m in server.messages] == [("here@example.cn",)]
    assert server.connections == 1


def test_every_recipient_refused_carries_each_ones_answer() -> None:
    error = classify(aiosmtplib.SMTPRecipientsRefused([REFUSED_451, REFUSED_550]))
    assert error.refused == {"a@x.cn": "451 4.3.0 later", "b@x.cn": "550 5.1.1 unknown"}


def test_one_of_two_recipients_refused_is_delivered_to_the_other_and_reported(server: MailServer) -> None:
    server.refuse("gone@example.cn", "550 5.1.1 mailbox unavailable")
    [result] = send_all(config(server), [envelope(1, "gone@example.cn", "here@example.cn")])
    assert result == Delivered(refused={"gone@example.cn": "550 5.1.1 mailbox unavailable"})
    [received] = server.messages
    assert received.recipients == ("here@example.cn",)


def test_server_down_is_transient_and_the_same_transport_delivers_once_it_is_back(
    server: MailServer,
) -> None:
    async def body(t: SmtpTransport) -> DeliveryError:
        await t.send(envelope(1))
        server.stop()
        with pytest.raises(DeliveryError) as down:
            await t.send(envelope(2))
        server.start()
        await t.send(envelope(3))
        return down.value

    error = with_transport(config(server), body)
    assert not error.permanent
    assert str(error) == f"connection refused by 127.0.0.1:{server.port}"
    assert [m.message["Subject"] for m in server.messages] == ["预算执行预警 第1号", "预算执行预警 第3号"]


def test_connection_the_server_closed_while_idle_is_reopened_without_an_error() -> None:
    with MailServer(idle_timeout=0.2) as server:

        async def body(t: SmtpTransport) -> None:
            await t.send(envelope(1))
            time.sleep(0.5)  # block the loop: the client sees the close only when it next writes
            await t.send(envelope(2))

        with_transport(config(server), body)
        assert len(server.messages) == 2
        assert server.connections == 2


def test_connection_lost_after_the_message_went_out_is_not_silently_sent_again(server: MailServer) -> None:
    async def body(t: SmtpTransport) -> DeliveryError:
        await t.send(envelope(1))
        server.drop_next()
        with pytest.raises(DeliveryError) as lost:
            await t.send(envelope(2))  # the server may have it: only the outbox may decide to retry
        await t.send(envelope(3))
        return lost.value

    error = with_transport(config(server), body)
    assert not error.permanent
    assert "closed the connection" in str(error)
    assert [m.message["Subject"] for m in server.messages] == ["预算执行预警 第1号", "预算执行预警 第3号"]
    assert server.connections == 2


def test_login_with_the_right_password_delivers() -> None:
    with MailServer(users={"jxk": "right-pa55"}) as server:
        with_transport(config(server, username="jxk"), lambda t: t.send(envelope(1)), password="right-pa55")
        assert len(server.messages) == 1


@pytest.mark.parametrize("users", [{"jxk": "right-pa55"}, None], ids=["wrong password", "no AUTH offered"])
def test_failed_login_is_permanent_and_never_shows_the_password(users: dict[str, str] | None) -> None:
    password = "s3cret-pa55"
    with MailServer(users=users) as server:
        cfg = config(server, username="jxk")
        with pytest.raises(DeliveryError) as failed:
            with_transport(cfg, lambda t: t.send(envelope(1)), password=password)
    assert failed.value.permanent
    if users:
        assert "authentication refused by" in str(failed.value) and "535" in str(failed.value)
    for text in (str(failed.value), repr(failed.value), str(failed.value.__cause__)):
        assert password not in text
    assert not server.messages


def test_file_transport_writes_an_eml_that_parses_back_to_the_same_message(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    sent = envelope(7, "a@example.cn", "b@example.cn")
    unnamed = Envelope(8, SENDER, ("a@example.cn",), envelope(8).raw)

    async def run() -> None:
        async with FileTransport(folder) as t:
            assert await t.send(sent) == Delivered()
            await t.send(unnamed)

    asyncio.run(run())
    assert sorted(p.name for p in folder.iterdir()) == ["000007-warning.eml", "8.eml"]  # no temp files left
    written = (folder / "000007-warning.eml").read_bytes()
    assert written == sent.raw
    parsed = email.message_from_bytes(written, policy=email.policy.default)
    assert parsed["Subject"] == "预算执行预警 第7号"
    assert parsed["To"] == "a@example.cn, b@example.cn"


def test_memory_transport_keeps_what_was_sent() -> None:
    async def run() -> MemoryTransport:
        async with MemoryTransport() as t:
            await t.send(envelope(1))
        return t

    assert [e.outbox_id for e in asyncio.run(run()).sent] == [1]


def test_mail_mode_chooses_the_transport(tmp_path: Path) -> None:
    assert isinstance(make_transport(MailConfig(mode="smtp"), tmp_path, "pw"), SmtpTransport)
    assert isinstance(make_transport(MailConfig(mode="file"), tmp_path, None), FileTransport)


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


REFUSED_451 = aiosmtplib.SMTPRecipientRefused(451, "4.3.0 later", "a@x.cn")
REFUSED_550 = aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown", "b@x.cn")
CLASSIFIED: list[tuple[BaseException, bool, str]] = [
    (
        caused(aiosmtplib.SMTPConnectError("Error connecting"), ConnectionRefusedError(111, "refused")),
        False,
        "connection refused by mail:25",
    ),
    (ConnectionRefusedError(111, "Connection refused"), False, "connection refused by mail:25"),
    (ConnectionResetError(104, "Connection reset by peer"), False, "connection to mail:25 failed: Conn"),
    (aiosmtplib.SMTPConnectTimeoutError("Timed out"), False, "timed out connecting to mail:25"),
    (aiosmtplib.SMTPServerDisconnected("Connection lost"), False, "mail:25 closed the connection"),
    (aiosmtplib.SMTPReadTimeoutError("Timed out"), False, "timed out waiting for mail:25"),
    (TimeoutError(), False, "timed out waiting for mail:25"),
    (aiosmtplib.SMTPResponseException(421, "4.4.2 closing"), False, "mail:25 answered: 421 4.4.2 closing"),
    (aiosmtplib.SMTPDataError(451, "4.3.0 Try again later"), False, "message refused: 451 4.3.0 Try again"),
    (aiosmtplib.SMTPRecipientsRefused([REFUSED_451]), False, "recipient <a@x.cn> refused: 451 4.3.0 later"),
    # one recipient refused for good, one for now: retrying helps the other (per recipient, see refused)
    (aiosmtplib.SMTPRecipientsRefused([REFUSED_451, REFUSED_550]), False, "<b@x.cn> refused: 550 5.1.1"),
    (aiosmtplib.SMTPRecipientsRefused([REFUSED_550]), True, "<b@x.cn> refused: 550 5.1.1"),
    (aiosmtplib.SMTPDataError(554, "5.6.0 content rejected"), True, "message refused: 554 5.6.0 content"),
    (aiosmtplib.SMTPSenderRefused(553, "5.7.1 not owned", "s@x.cn"), True, "sender <s@x.cn> refused: 553"),
    (aiosmtplib.SMTPSenderRefused(452, "4.3.1 full", "s@x.cn"), False, "sender <s@x.cn> refused: 452"),
    (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 invalid"), True, "authentication refused by mail:25"),
    (aiosmtplib.SMTPAuthenticationError(454, "4.7.0 try later"), True, "454 4.7.0 try later"),
    (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), True, "mail:25: SMTPUTF8 is not supported"),
    (aiosmtplib.SMTPException("The SMTP AUTH extension is not supported"), True, "AUTH extension"),
    (ValueError("Address contains prohibited characters"), True, "invalid address: Address contains"),
]


@pytest.mark.parametrize(("exc", "permanent", "text"), CLASSIFIED, ids=[repr(c[0]) for c in CLASSIFIED])
def test_classify_tells_transient_from_permanent_and_keeps_the_server_answer(
    exc: BaseException, permanent: bool, text: str
) -> None:
    error = classify(exc, server="mail:25")
    assert error.permanent is permanent
    assert text in str(error)

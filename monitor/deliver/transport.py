"""Delivery behind a tiny interface: an Envelope (sender, recipients, the message bytes serialised
ahead) in, Delivered (recipients refused among others) out, or a DeliveryError saying whether retrying
can help. Implementations: SMTP over a pool of reused aiosmtplib connections with a shared rate limit,
a folder of .eml files, and a list in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib
from aiosmtplib.typing import Default

from monitor.config.settings import MailConfig, SmtpConfig
from monitor.core.errors import MonitorError
from monitor.core.safe import safe_name


@dataclass(frozen=True, slots=True)
class Envelope:
    outbox_id: int
    sender: str  # envelope sender (MAIL FROM)
    recipients: tuple[str, ...]  # every RCPT TO: To and Cc
    raw: bytes  # the whole RFC 5322 message, already serialised
    name: str = ""  # a short file-name-safe label, e.g. "000123-warning-101001"


class DeliveryError(MonitorError):
    """A message was not delivered. `permanent` errors (5xx, bad address) are not retried. `refused`:
    when the server refused every recipient, each one's answer (address → "code text"): a sender
    retries the temporarily refused ones and gives up on the others, one by one."""

    def __init__(self, message: str, *, permanent: bool, refused: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.refused = refused or {}


def permanent_answer(answer: str) -> bool:
    """Whether a server's answer ("550 5.1.1 …") refuses for good: a 5xx code (4xx: try again later)."""
    code = answer.split(" ", 1)[0]
    return not (code.isdigit() and code.startswith("4"))


@dataclass(frozen=True, slots=True)
class Delivered:
    """Accepted by the server; `refused` lists recipients the server refused (address -> answer)."""

    refused: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """Open once, send many, close. `send` may be awaited concurrently (up to the connection count)."""

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, envelope: Envelope) -> Delivered: ...


def classify(exc: BaseException, *, server: str = "the mail server") -> DeliveryError:
    """Turn what aiosmtplib or the network raised into a DeliveryError carrying the server's code and
    answer (or what failed on the connection): 4xx, connection and timeout problems are transient;
    5xx, refused authentication, bad addresses and untrusted certificates are permanent."""

    def answer(code: int, text: str, what: str) -> DeliveryError:
        return DeliveryError(f"{what}: {code} {text}".strip(), permanent=code >= 500)

    match exc:
        case aiosmtplib.SMTPRecipientsRefused(recipients=refused):
            text = "; ".join(f"recipient <{r.recipient}> refused: {r.code} {r.message}" for r in refused)
            answers = {r.recipient: f"{r.code} {r.message}" for r in refused}
            return DeliveryError(text, permanent=all(r.code >= 500 for r in refused), refused=answers)
        case aiosmtplib.SMTPAuthenticationError(code=code, message=text):
            return DeliveryError(f"authentication refused by {server}: {code} {text}", permanent=True)
        case aiosmtplib.SMTPSenderRefused(code=code, message=text, sender=sender):
            return answer(code, text, f"sender <{sender}> refused")
        case aiosmtplib.SMTPDataError(code=code, message=text):
            return answer(code, text, "message refused")
        case aiosmtplib.SMTPRecipientRefused(code=code, message=text, recipient=rcpt):
            return answer(code, text, f"recipient <{rcpt}> refused")
        case aiosmtplib.SMTPResponseException(code=code, message=text):
            return answer(code, text, f"{server} answered")
        case aiosmtplib.SMTPConnectTimeoutError():
            return DeliveryError(f"timed out connecting to {server}", permanent=False)
        case aiosmtplib.SMTPConnectError() if isinstance(exc.__cause__, ConnectionRefusedError):
            return DeliveryError(f"connection refused by {server}", permanent=False)
        case aiosmtplib.SMTPConnectError() if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
            return classify(exc.__cause__, server=server)
        case aiosmtplib.SMTPConnectError(message=text):
            return DeliveryError(f"cannot connect to {server}: {text}", permanent=False)
        case aiosmtplib.SMTPServerDisconnected(message=text):
            return DeliveryError(f"{server} closed the connection: {text}", permanent=False)
        case TimeoutError():  # SMTPTimeoutError, asyncio.TimeoutError
            return DeliveryError(f"timed out waiting for {server}", permanent=False)
        case aiosmtplib.SMTPException(message=text):  # no AUTH offered, SMTPUTF8 unsupported, ...
            return DeliveryError(f"{server}: {text}", permanent=True)
        case ssl.SSLCertVerificationError():
            return DeliveryError(f"certificate of {server} not trusted: {exc.verify_message}", permanent=True)
        case ConnectionRefusedError():
            return DeliveryError(f"connection refused by {server}", permanent=False)
        case OSError():
            return DeliveryError(f"connection to {server} failed: {exc.strerror or exc}", permanent=False)
        case ValueError():
            return DeliveryError(f"invalid address: {exc}", permanent=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=True)


class _Connection(aiosmtplib.SMTP):
    """An aiosmtplib connection that knows whether the current message's content has started to go
    out: until then a dropped connection can be reopened and the message sent again without a
    risk of delivering it twice."""

    data_started = False

    async def data(
        self, message: str | bytes, /, *, timeout: float | Literal[Default.token] | None = Default.token
    ) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, timeout=timeout)


class _RateLimit:
    """At most `per_second` sends across all connections (0 = unlimited); each caller waits its slot."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1 / per_second if per_second > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


_SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, ValueError)  # OSError covers TimeoutError


class SmtpTransport:
    """SMTP over up to `config.connections` connections, each opened on first use and reused for
    many messages; `send` may be awaited by many tasks at once."""

    def __init__(self, config: SmtpConfig, password: str | None = None) -> None:
        self.config = config
        self._password = password
        self._server = f"{config.host}:{config.port}"
        self._rate = _RateLimit(config.rate_per_second)
        self._connections = [self._connection() for _ in range(config.connections)]
        self._free: asyncio.LifoQueue[_Connection] | None = None

    def _connection(self) -> _Connection:
        c = self.config
        return _Connection(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=self._password if c.username else None,
            use_tls=c.security == "tls",
            start_tls=c.security == "starttls",
            validate_certs=c.verify_certificates,
            timeout=c.timeout_seconds,
        )

    async def __aenter__(self) -> SmtpTransport:
        self._free = asyncio.LifoQueue()  # the most recently used connection first: it is open
        for conn in self._connections:
            self._free.put_nowait(conn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Say QUIT on every open connection (briefly: a hung server must not hold up the run)."""
        for conn in self._connections:
            if conn.is_connected:
                with contextlib.suppress(*_SMTP_ERRORS):
                    await conn.quit(timeout=min(self.config.timeout_seconds, 5))
            conn.close()
        self._free = None

    async def send(self, envelope: Envelope) -> Delivered:
        """Deliver one message; raises DeliveryError (never with the password in its text)."""
        if self._free is None:
            raise RuntimeError("open the transport with `async with` before sending")
        conn = await self._free.get()
        try:
            await self._rate.wait()
            refused = await self._sendmail(conn, envelope)
        except _SMTP_ERRORS as exc:
            if not _healthy_after(conn, exc):
                conn.close()
            error = classify(exc, server=self._server)
            text = str(error)
            if self._password and self._password in text:
                error = DeliveryError(
                    text.replace(self._password, "***"), permanent=error.permanent, refused=error.refused
                )
                raise error from None
            raise error from exc
        except BaseException:  # cancelled mid-transaction: the connection's state is unknown
            conn.close()
            raise
        finally:
            self._free.put_nowait(conn)
        return Delivered(refused={addr: f"{r.code} {r.message}" for addr, r in refused.items()})

    async def _sendmail(self, conn: _Connection, envelope: Envelope) -> dict[str, aiosmtplib.SMTPResponse]:
        reused = conn.is_connected
        for attempt in (1, 2):
            if not conn.is_connected:
                await conn.connect()
            conn.data_started = False
            try:
                errors, _ = await conn.sendmail(envelope.sender, list(envelope.recipients), envelope.raw)
                return errors
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
                # The server dropped (or announced 421 on) an idle connection before this message went out.
                stale = isinstance(exc, aiosmtplib.SMTPServerDisconnected) or exc.code == 421
                if not (stale and reused and attempt == 1 and not conn.data_started):
                    raise
                conn.close()
        raise AssertionError("unreachable")


def _healthy_after(conn: aiosmtplib.SMTP, exc: BaseException) -> bool:
    """A per-message answer (aiosmtplib already sent RSET) leaves the connection usable; a network
    problem, a timeout or 421 (server closing) does not."""
    if isinstance(exc, OSError) or getattr(exc, "code", None) == 421:
        return False
    return conn.is_connected


class FileTransport:
    """Writes each message to `folder/<name or outbox id>.eml`, atomically (temp file, then rename); the
    name is made safe first (`safe.safe_name`), so a message never lands outside `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def __aenter__(self) -> FileTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, envelope: Envelope) -> Delivered:
        target = self.folder / f"{safe_name(envelope.name or str(envelope.outbox_id))}.eml"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(envelope.raw)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(f"cannot write {target}: {exc.strerror or exc}", permanent=False) from exc
        return Delivered()


class MemoryTransport:
    """Keeps every envelope in `sent` (dry runs and tests)."""

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def __aenter__(self) -> MemoryTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, envelope: Envelope) -> Delivered:
        self.sent.append(envelope)
        return Delivered()


def make_transport(mail: MailConfig, mail_dir: Path, password: str | None) -> Transport:
    """The transport `mail.mode` asks for: SMTP to `mail.smtp`, or .eml files in `mail_dir`."""
    if mail.mode == "smtp":
        return SmtpTransport(mail.smtp, password)
    return FileTransport(mail_dir)

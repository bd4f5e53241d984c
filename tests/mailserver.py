"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: records every message it accepts and can be
told to misbehave (answer DATA with 451, hang up instead of answering, refuse an address, go down and
come back on the same port).
Import it as `from mailserver import MailServer` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    raw: bytes  # as it came over the wire (CRLF line ends)
    peer: tuple[str, int]  # the client's address: one per connection

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


def body_text(msg: EmailMessage, kind: str = "plain") -> str:
    """The decoded text of the message's text/`kind` body; fails the test if it has none."""
    part = msg.get_body((kind,))
    assert part is not None, f"no text/{kind} body"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def attachments(msg: EmailMessage) -> dict[str, EmailMessage]:
    """The message's attachments by file name; fails the test if one has no name."""
    found = {}
    for part in msg.iter_attachments():
        name = part.get_filename()
        assert name is not None, f"an attachment without a file name: {part.get_content_type()}"
        found[name] = part
    return found


_DROP = "421 4.4.2 (the server hangs up instead)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Controller(Controller):
    def __init__(self, server: MailServer, **kwargs: Any) -> None:
        super().__init__(
            server, hostname="127.0.0.1", port=server.port, server_hostname="localhost", **kwargs
        )
        self.mail_server = server

    def factory(self) -> SMTP:
        self.mail_server._connected()
        # aiosmtpd's Controller.factory has no annotations (it returns SMTP(self.handler, ...)).
        return super().factory()  # type: ignore[no-any-return, no-untyped-call]


class MailServer:
    """`with MailServer() as server:` runs an SMTP server on `server.port` until the block ends.

    `users` ({login: password}) makes the server offer AUTH over plain text and accept only those.
    `idle_timeout` closes connections idle that long (as real servers do)."""

    def __init__(self, users: dict[str, str] | None = None, idle_timeout: float = 300) -> None:
        self.port = free_port()
        self.users = users
        self.idle_timeout = idle_timeout
        self._lock = threading.Condition()
        self._messages: list[Received] = []
        self._connections = 0
        self._fail: list[str] = []
        self._refuse: dict[str, str] = {}
        self._refuse_times: dict[str, int] = {}
        self._controller: _Controller | None = None

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start (again) on the same port."""
        assert self._controller is None, "already running"
        kwargs: dict[str, Any] = {"timeout": self.idle_timeout}
        if self.users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        controller = _Controller(self, **kwargs)
        controller.start()
        with self._lock:
            self._connections -= 1  # start() itself opened one to check the server answers
        self._controller = controller

    def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    # --- faults ----------------------------------------------------------------------------------

    def fail_next(self, n: int, answer: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `n` DATA commands with `answer` instead of accepting the message."""
        with self._lock:
            self._fail.extend([answer] * n)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection instead of answering the next `n` DATA commands (the message is lost)."""
        self.fail_next(n, _DROP)

    def refuse(
        self, address: str, answer: str = "550 5.1.1 mailbox unavailable", times: int | None = None
    ) -> None:
        """Answer RCPT TO:<address> with `answer` from now on, or only the next `times` times (a
        temporary refusal such as 451 that clears)."""
        with self._lock:
            self._refuse[address.lower()] = answer
            if times is None:
                self._refuse_times.pop(address.lower(), None)
            else:
                self._refuse_times[address.lower()] = times

    def accept(self, address: str) -> None:
        """Stop refusing `address`."""
        with self._lock:
            self._refuse.pop(address.lower(), None)
            self._refuse_times.pop(address.lower(), None)

    # --- what arrived ----------------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many SMTP connections clients opened (since the first start)."""
        with self._lock:
            return self._connections

    def wait_for(self, n: int, timeout: float = 5) -> list[Received]:
        """Wait until at least `n` messages arrived; raises TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(f"{len(self._messages)} of {n} messages arrived within {timeout} s")
            return list(self._messages)

    # --- aiosmtpd hooks (run in the server's thread) ---------------------------------------------

    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self._lock:
            answer = self._refuse.get(address.lower())
            left = self._refuse_times.get(address.lower())
            if answer and left is not None:
                if left <= 1:
                    del self._refuse[address.lower()], self._refuse_times[address.lower()]
                else:
                    self._refuse_times[address.lower()] = left - 1
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        with self._lock:
            if self._fail:
                answer = self._fail.pop(0)
                if answer == _DROP:
                    assert server.transport is not None  # DATA comes over a connection
                    server.transport.close()
                return answer
            self._messages.append(
                Received(
                    sender=envelope.mail_from,
                    recipients=tuple(envelope.rcpt_tos),
                    raw=envelope.original_content,
                    peer=tuple(session.peer[:2]),
                )
            )
            self._lock.notify_all()
        return "250 2.0.0 OK: queued"

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.users is not None
            and self.users.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

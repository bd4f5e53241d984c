"""Templates and messages: a Notice's flat view in, a complete RFC 5322 message out (Chinese subject
and display names RFC 2047-encoded, a text part always and an HTML alternative, a stable
Message-ID). Templates are compiled once with StrictUndefined; admins' files of the same name win.
Templates are content, not code: they run in Jinja2's immutable sandbox, so `cycler.__init__.__globals__`
and the like are a SecurityError (a `file:line` problem in `monitor check`), never a call into Python.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.sandbox

KINDS = (
    "warning",
    "reminder",
    "overdue",
    "summary",
    "all_clear",
    "admin",
    "case_reminder",
    "case_escalation",
)
PARTS = ("subject.txt", "body.txt", "body.html")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1, line/paragraph separators


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateProblem(Exception):
    def __init__(self, name: str, line: int | None, message: str, unsafe: bool = False) -> None:
        super().__init__(f"{name}:{line}: {message}" if line else f"{name}: {message}")
        self.name, self.line, self.message, self.unsafe = name, line, message, unsafe


class Templates:
    """Every message template, compiled at load time so a broken file fails at `check`, not in May."""

    def __init__(self, folder: Path, override: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(folder))]
        if override:
            loaders.insert(0, jinja2.FileSystemLoader(str(override)))
        self.env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=True,
        )
        self._compiled: dict[str, jinja2.Template] = {}
        problems = []
        for kind in KINDS:
            for part in PARTS:
                name = f"{kind}.{part}"
                try:
                    self._compiled[name] = self.env.get_template(name)
                except jinja2.TemplateSyntaxError as exc:
                    problems.append(
                        TemplateProblem(exc.filename or name, exc.lineno, exc.message or str(exc))
                    )
                except jinja2.TemplateNotFound:
                    problems.append(TemplateProblem(str(folder / name), None, "template not found"))
        if problems:
            raise TemplateErrors(problems)
        unsafe = self._unsafe()
        if unsafe:
            raise TemplateErrors(unsafe)

    def _unsafe(self) -> list[TemplateProblem]:
        """Every template rendered once against the example of its kind: one that reaches outside the
        sandbox is refused when loaded (by `monitor check`, a run, preview-mail and the service's reload
        alike), not in the middle of a run."""
        from monitor import followup, views

        out = []
        for kind, view in {**views.examples(), **followup.examples()}.items():
            try:
                self.render(kind, view)
            except TemplateProblem as p:
                if p.unsafe:
                    out.append(p)
        return out

    def render(self, kind: str, view: dict[str, Any]) -> Rendered:
        out = []
        for part in PARTS:
            template = self._compiled[f"{kind}.{part}"]
            try:
                out.append(template.render(view))
            except jinja2.UndefinedError as exc:
                raise TemplateProblem(
                    template.filename or part, _error_line(exc, template), str(exc)
                ) from exc
            except jinja2.exceptions.SecurityError as exc:
                raise TemplateProblem(
                    template.filename or part, _error_line(exc, template), f"unsafe template: {exc}", True
                ) from exc
            except Exception as exc:  # {{ 1 / 0 }}, {{ "a" + 1 }}: a template's own error, with its line
                message = f"{type(exc).__name__}: {exc}"
                raise TemplateProblem(template.filename or part, _error_line(exc, template), message) from exc
        subject = " ".join(out[0].split())
        return Rendered(subject, out[1], out[2])


class TemplateErrors(Exception):
    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


def _error_line(exc: BaseException, template: jinja2.Template) -> int | None:
    """The template line of a rendering error (Jinja2 rewrites the traceback to template lines)."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == template.filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def safe_header_text(value: str) -> str:
    """Header text with control characters removed: a name can never inject a header."""
    return _CONTROL.sub(" ", value).strip()


def address(name: str, email_addr: str) -> str:
    """`name <addr>` for a header: a Chinese name as RFC 2047 encoded-words of at most 75 characters,
    an ASCII one quoted as needed. (The modern email policy folds a list of Chinese names so that the
    separating comma ends up inside an encoded-word and readers see only the first address.)"""
    if _CONTROL.search(email_addr) or "@" not in email_addr:
        raise ValueError(f"not a valid e-mail address: {email_addr!r}")
    name = safe_header_text(name)
    if name and not name.isascii():
        return f"{Header(name, 'utf-8').encode(maxlinelen=76)} <{email_addr}>"
    return formataddr((name, email_addr))


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


_POLICY = email.policy.compat32.clone(linesep="\r\n")


def build_message(
    rendered: Rendered,
    *,
    sender: tuple[str, str],
    to: Sequence[tuple[str, str]],
    cc: Sequence[tuple[str, str]] = (),
    reply_to: str | None,
    message_id: str,
    date: dt.datetime,
    headers: dict[str, str],
    attachments: Sequence[tuple[str, bytes]] = (),
) -> Envelope:
    """One multipart/alternative message (text first, then HTML), serialised once, ahead of sending,
    with CRLF line ends and only ASCII on the wire (UTF-8 bodies base64-encoded). Attachments
    (file name, bytes) wrap it in multipart/mixed; Chinese file names are RFC 2231 encoded."""
    body = MIMEMultipart("alternative")
    msg = MIMEMultipart("mixed") if attachments else body
    # A Header object (typeshed wants str) is folded by compat32 into encoded-words of ≤ 75 characters.
    msg["Subject"] = Header(safe_header_text(rendered.subject), "utf-8")  # type: ignore[assignment]
    msg["From"] = address(*sender)
    msg["To"] = ", ".join(address(n, e) for n, e in to)
    if cc:
        msg["Cc"] = ", ".join(address(n, e) for n, e in cc)
    if reply_to:
        msg["Reply-To"] = address("", reply_to)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id
    for key, value in headers.items():
        msg[key] = Header(safe_header_text(value), "utf-8")  # type: ignore[assignment]
    body.attach(MIMEText(rendered.text, "plain", "utf-8"))
    body.attach(MIMEText(rendered.html, "html", "utf-8"))
    if attachments:
        msg.attach(body)
        for name, data in attachments:
            part = MIMEApplication(data, Name=None)
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", name))
            msg.attach(part)
    buf = io.BytesIO()
    BytesGenerator(buf, policy=_POLICY).flatten(msg)
    recipients = tuple(dict.fromkeys(e for _, e in [*to, *cc]))
    return Envelope(sender[1], recipients, buf.getvalue())

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
import functools
import mimetypes
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import MIMEPart
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import jinja2.exceptions
import jinja2.sandbox

from monitor.core.errors import BadInput
from monitor.notify import examples, followup

KINDS = (
    "warning",
    "task",
    "reminder",
    "overdue",
    "summary",
    "all_clear",
    "admin",
    "case_reminder",
    "case_escalation",
    "report_returned",
)
PARTS = ("subject.txt", "body.txt", "body.html")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1, line/paragraph separators


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateProblem(BadInput):
    def __init__(self, name: str, line: int | None, message: str, unsafe: bool = False) -> None:
        super().__init__(f"{name}:{line}: {message}" if line else f"{name}: {message}")
        self.name, self.line, self.message, self.unsafe = name, line, message, unsafe


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, `x.name` on a view's plain dict answered without raising: the
    sandbox asks for the attribute first and takes the item when there is none (an exception per
    access, millions in a national checkpoint's queueing); a plain dict has no attribute of a name
    that is not the class's, so its item (or undefined) is what the sandbox would answer."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class Templates:
    """Every message template, compiled at load time so a broken file fails at `check`, not in May."""

    def __init__(self, folder: Path, override: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(folder))]
        if override:
            loaders.insert(0, jinja2.FileSystemLoader(str(override)))
        self.env = _Sandbox(
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
        out = []
        for kind, view in {**examples.examples(), **followup.examples()}.items():
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


class TemplateErrors(BadInput):
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


def ascii_header_value(value: str) -> str:
    """An X-Monitor-* value as plain ASCII: printable ASCII as it is, anything else (a code an older
    database still holds) and `%` itself percent-encoded as UTF-8, so urllib.parse.unquote gives it back
    and no reader ever meets an encoded-word in a header meant for filters and scripts."""
    return quote(safe_header_text(value), safe=_PRINTABLE_BUT_PERCENT)


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: tuple[str, ...]
    raw: bytes


# RFC 2047 section 2: an encoded-word is at most 75 characters and a header line holding one at most
# 76. The SMTP policy's default of 78 lets the email package write 76-character encoded-words.
_POLICY = email.policy.SMTP.clone(max_line_length=76)
_PRINTABLE_BUT_PERCENT = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
# Types the standard library's own table lacks (the system's mime.types is not read: same everywhere)
_TYPES = {".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@functools.cache
def _mime_types() -> mimetypes.MimeTypes:
    """The standard library's built-in table, made once (each MimeTypes() copies it anew)."""
    return mimetypes.MimeTypes()


def content_type(name: str) -> tuple[str, str]:
    """The MIME type of a file by its name's extension; application/octet-stream if unknown."""
    suffix = Path(name).suffix.lower()
    guessed = _TYPES.get(suffix) or _mime_types().guess_type(name, strict=True)[0]
    maintype, _, subtype = (guessed or "application/octet-stream").partition("/")
    return maintype, subtype


def attach(message: MIMEPart, name: str, data: bytes) -> None:
    """Attach file `name` (its bytes) to `message`, as the email package writes it: the real content
    type by the name's extension (text/* as UTF-8, which the text must be), base64, and the file name
    RFC 2231 encoded (`filename*=utf-8\'\'…`) when it is not ASCII. A non-multipart `message` becomes
    multipart/mixed. The one place attachments are made (the bureau summary's reports, a warning's
    response workbook)."""
    maintype, subtype, params = attachment_type(name, data)
    message.add_attachment(data, maintype, subtype, filename=safe_header_text(name), params=params)


def attachment_type(name: str, data: bytes) -> tuple[str, str, dict[str, str]]:
    """The content type `attach` gives file `name` and its parameters (text/*: charset utf-8, the
    bytes checked to be UTF-8)."""
    maintype, subtype = content_type(name)
    if maintype != "text":
        return maintype, subtype, {}
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"attachment {name}: not UTF-8 text (byte {exc.start})") from exc
    return maintype, subtype, {"charset": "utf-8"}


def _boundary() -> str:
    return f"=_monitor_{uuid.uuid4().hex}"  # '_' is not in base64: no body line can match it


def mime_body(
    rendered: Rendered, attachments: Sequence[tuple[str, bytes]] = (), boundaries: Sequence[str] = ()
) -> MIMEPart:
    """The MIME body of a message, made by the email package: multipart/alternative of the text and
    the HTML (UTF-8, base64), inside multipart/mixed with the attachments (file name, bytes) if any.
    `boundaries` (outermost first) are for tests; new ones are drawn otherwise."""
    body = MIMEPart(policy=_POLICY)
    body.set_content(rendered.text.encode(), "text", "plain", cte="base64", params={"charset": "utf-8"})
    body.add_alternative(rendered.html.encode(), "text", "html", cte="base64", params={"charset": "utf-8"})
    body.set_boundary(boundaries[-1] if boundaries else _boundary())
    for name, data in attachments:
        attach(body, name, data)
    if attachments:
        body.set_boundary(boundaries[0] if boundaries else _boundary())
    return body


def mime_bytes(part: MIMEPart) -> bytes:
    """A part as it goes on the wire (CRLF, only ASCII)."""
    return part.as_bytes(policy=_POLICY)


def _address(name: str, addr: str) -> Address:
    if _CONTROL.search(addr) or "@" not in addr:
        raise ValueError(f"not a valid e-mail address: {addr!r}")
    username, _, domain = addr.rpartition("@")
    return Address(safe_header_text(name), username, domain)


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
    """The whole message made by the email package (the reference monitor.notify.wire is tested against):
    the MIME body of `mime_body`, Chinese subject and display names as RFC 2047 encoded-words of at
    most 75 characters, X-Monitor-* headers plain ASCII (`ascii_header_value`)."""
    msg = mime_body(rendered, attachments)
    msg["MIME-Version"] = "1.0"
    msg["Subject"] = safe_header_text(rendered.subject)
    msg["From"] = _address(*sender)
    msg["To"] = [_address(n, e) for n, e in to]
    if cc:
        msg["Cc"] = [_address(n, e) for n, e in cc]
    if reply_to:
        msg["Reply-To"] = _address("", reply_to)
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id
    for key, value in headers.items():
        msg[key] = ascii_header_value(value)
    recipients = tuple(dict.fromkeys(e for _, e in [*to, *cc]))
    return Envelope(sender[1], recipients, mime_bytes(msg))

"""A rendered message written straight to its wire form: the message render.build_message makes
with Python's email package (text part, then HTML; UTF-8 bodies in base64; Chinese header text as
RFC 2047 encoded-words; CRLF; only ASCII), written as strings, about ten times faster. Queueing a
national checkpoint builds hundreds of thousands of messages: the email package's header folding was
most of that time. The MIME body of a message without attachments is written here byte for byte as
the email package writes it, and so is the multipart/mixed body of one with attachments (each one as
render.attach makes it: its content type, base64, its file name RFC 2231-encoded when not ASCII);
tests/test_mime.py and tests/test_mime_attachments.py check it. A file name the writer here does not
take (empty, or not encodable as UTF-8) goes through the email package (render.mime_body).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import uuid
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from monitor.notify.render import (
    Envelope,
    Rendered,
    ascii_header_value,
    attachment_type,
    mime_body,
    mime_bytes,
    safe_header_text,
)

MAX_LINE = 76  # RFC 2047 section 2: a line holding an encoded-word is at most 76 characters
_WORD_BYTES = 36  # UTF-8 bytes per encoded-word: 48 base64 characters + 12 = 60
_PREFIX, _SUFFIX = "=?utf-8?b?", "?="


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 encoded-words (UTF-8, base64) of at most 60 characters (the RFC allows 75;
    60 keeps every header line within 78), never splitting a character between two words."""
    words: list[str] = []
    chunk = b""
    for ch in text:
        b = ch.encode()
        if chunk and len(chunk) + len(b) > _WORD_BYTES:
            words.append(_PREFIX + base64.b64encode(chunk).decode() + _SUFFIX)
            chunk = b""
        chunk += b
    words.append(_PREFIX + base64.b64encode(chunk).decode() + _SUFFIX)
    return words


def _fold(name: str, pieces: Iterable[str]) -> str:
    """`Name: piece piece …`; a piece that would pass MAX_LINE starts a new line (CRLF + space)."""
    lines = [f"{name}:"]
    for i, piece in enumerate(pieces):
        if i and len(lines[-1]) + 1 + len(piece) > MAX_LINE:
            lines.append("")
        lines[-1] += " " + piece
    return "\r\n".join(lines) + "\r\n"


def header(name: str, value: str) -> str:
    """One header line (folded): printable ASCII as it is, anything else as encoded-words."""
    value = safe_header_text(value)
    if value.isascii():
        return _fold(name, value.split(" "))
    return _fold(name, encoded_words(value))


def address(display: str, addr: str) -> str:
    """`name <addr>`: a Chinese name as encoded-words, an ASCII one quoted where RFC 5322 wants it."""
    if any(c < " " or c == "\x7f" for c in addr) or "@" not in addr:
        raise ValueError(f"not a valid e-mail address: {addr!r}")
    display = safe_header_text(display)
    if not display:
        return addr
    if display.isascii():
        return email.utils.formataddr((display, addr))
    return " ".join(encoded_words(display)) + f" <{addr}>"


def _addresses(name: str, people: Sequence[tuple[str, str]]) -> str:
    """An address header, folded between the addresses (never inside an encoded-word)."""
    items = [address(n, e) for n, e in people]
    pieces = [item + ("," if i < len(items) - 1 else "") for i, item in enumerate(items)]
    words = [w for piece in pieces for w in piece.split(" ")]
    return _fold(name, words)


def _boundary() -> str:
    return f"=_monitor_{uuid.uuid4().hex}"  # as render's: '_' is not in base64


def _base64(data: bytes) -> str:
    """base64.encodebytes(data) with CRLF line ends (76-character lines), a third faster."""
    encoded = binascii.b2a_base64(data, newline=False).decode()
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return "\r\n".join(lines) + "\r\n" if lines else ""


def _part(boundary: str, subtype: str, text: str) -> str:
    encoded = _base64(text.encode())
    return (
        f"--{boundary}\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n\r\n{encoded}\r\n'
    )


def alternative(rendered: Rendered, boundary: str) -> str:
    """render.mime_bytes(render.mime_body(rendered)) with this boundary, written directly."""
    return (
        param_header("Content-Type", "multipart/alternative", "boundary", boundary)
        + "\r\n"
        + _part(boundary, "plain", rendered.text)
        + _part(boundary, "html", rendered.html)
        + f"--{boundary}--\r\n"
    )


def _param(name: str, value: str) -> str:
    """One MIME parameter as email.message.Message.set_param writes it: a quoted string, or RFC 2231
    (`name*=utf-8''…`, percent-encoded UTF-8) when the value is not ASCII."""
    if value.isascii():
        return f'{name}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name}*=utf-8''{quote(value, safe='')}"


def _sections(name: str, value: str, maxlen: int = MAX_LINE) -> list[str]:
    """A parameter too long for a line of its own in RFC 2231 sections (`name*0*=utf-8''…;`), split
    where the email package splits it (email._header_value_parser._fold_mime_parameters)."""
    lines: list[str] = []
    chrome = ("us-ascii" if value.isascii() else "utf-8") + "''"
    section = 0
    while value:
        room = maxlen - (len(name) + len(str(section)) + 3 + len(chrome)) - 2
        split = room
        while len(quote(value[:split], safe="")) > room:
            split -= 1
        lines.append(f" {name}*{section}*={chrome}{quote(value[:split], safe='')}")
        chrome, section, value = "", section + 1, value[split:]
        if value:
            lines[-1] += ";"
    return lines


def param_header(name: str, value: str, param: str, param_value: str) -> str:
    """`Name: value; param=…` folded as the email package folds it under render's policy (lines of
    76): on one line if it fits, else the parameter on a line of its own, else in RFC 2231 sections."""
    line, text = f"{name}: {value}", _param(param, param_value)
    # an ASCII header is kept whole if it fits; one holding a non-ASCII value is refolded, and its
    # parameter kept on the first line only short of the last column (_fold_mime_parameters' `<`)
    if len(line) + 2 + len(text) <= MAX_LINE - (not param_value.isascii()):
        return f"{line}; {text}\r\n"
    if len(text) + 2 <= MAX_LINE:
        return f"{line};\r\n {text}\r\n"
    return "\r\n".join([line + ";", *_sections(param, param_value)]) + "\r\n"


def attachment(name: str, data: bytes) -> str | None:
    """One attachment part as render.attach makes it, written directly; None for a file name this
    writer does not take (empty, or not encodable as UTF-8: the email package's to write)."""
    filename = safe_header_text(name)
    try:
        filename.encode()
    except UnicodeEncodeError:
        return None
    if not filename:
        return None
    maintype, subtype, params = attachment_type(name, data)
    kind = f"{maintype}/{subtype}"
    disposition = param_header("Content-Disposition", "attachment", "filename", filename)
    encoded = _base64(data)
    if not params:
        return f"Content-Type: {kind}\r\nContent-Transfer-Encoding: base64\r\n{disposition}\r\n{encoded}"
    ((param, value),) = params.items()
    return (
        f"Content-Transfer-Encoding: base64\r\n{disposition}"
        f"{param_header('Content-Type', kind, param, value)}\r\n{encoded}"
    )


def mixed(
    rendered: Rendered, attachments: Sequence[tuple[str, bytes]], boundaries: Sequence[str]
) -> str | None:
    """render.mime_bytes(render.mime_body(rendered, attachments, boundaries)) written directly (the
    boundaries outermost first); None where an attachment is not this writer's (see `attachment`)."""
    outer, inner = boundaries
    parts = [
        param_header("Content-Type", "multipart/mixed", "boundary", outer),
        f"\r\n--{outer}\r\n",
        alternative(rendered, inner),
    ]
    for name, data in attachments:
        part = attachment(name, data)
        if part is None:
            return None
        parts += [f"\r\n--{outer}\r\n", part]
    parts.append(f"\r\n--{outer}--\r\n")
    return "".join(parts)


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
    """The message render.build_message makes, written directly (its body by the email package only
    for an attachment `attachment` does not take). X-Monitor-* values are plain ASCII
    (render.ascii_header_value)."""
    parts = [header("Subject", rendered.subject), _addresses("From", [sender]), _addresses("To", to)]
    if cc:
        parts.append(_addresses("Cc", cc))
    if reply_to:
        parts.append(_addresses("Reply-To", [("", reply_to)]))
    parts.append(f"Date: {email.utils.format_datetime(date)}\r\nMessage-ID: {message_id}\r\n")
    parts += [_fold(key, ascii_header_value(value).split(" ")) for key, value in headers.items()]
    parts.append("MIME-Version: 1.0\r\n")
    head = "".join(parts).encode("ascii")
    if attachments:
        written = mixed(rendered, attachments, (_boundary(), _boundary()))
        body = mime_bytes(mime_body(rendered, attachments)) if written is None else written.encode("ascii")
    else:
        body = alternative(rendered, _boundary()).encode("ascii")
    recipients = tuple(dict.fromkeys(e for _, e in [*to, *cc]))
    return Envelope(sender[1], recipients, head + body)

"""A rendered message written straight to its wire form: the message render.build_message makes
with Python's email package (text part, then HTML; UTF-8 bodies in base64; Chinese header text as
RFC 2047 encoded-words; CRLF; only ASCII), written as strings, about ten times faster. Queueing a
national checkpoint builds hundreds of thousands of messages: the email package's header folding was
most of that time. The MIME body of a message without attachments is written here byte for byte as
the email package writes it (tests/test_mime.py checks it); a body with attachments is the email
package's own (render.mime_body, render.attach) under the headers written here.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import uuid
from collections.abc import Iterable, Sequence

from monitor.notify.render import (
    Envelope,
    Rendered,
    ascii_header_value,
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


def _part(boundary: str, subtype: str, text: str) -> str:
    encoded = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
    return (
        f"--{boundary}\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n\r\n{encoded}\r\n'
    )


def alternative(rendered: Rendered, boundary: str) -> str:
    """render.mime_bytes(render.mime_body(rendered)) with this boundary, written directly."""
    return (
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'
        + _part(boundary, "plain", rendered.text)
        + _part(boundary, "html", rendered.html)
        + f"--{boundary}--\r\n"
    )


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
    """The message render.build_message makes, its headers written directly (and its body too when
    it has no attachments). X-Monitor-* values are plain ASCII (render.ascii_header_value)."""
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
        body = mime_bytes(mime_body(rendered, attachments))
    else:
        body = alternative(rendered, f"=_monitor_{uuid.uuid4().hex}").encode("ascii")
    recipients = tuple(dict.fromkeys(e for _, e in [*to, *cc]))
    return Envelope(sender[1], recipients, head + body)

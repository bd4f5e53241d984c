"""monitor.notify.wire writes the message render.build_message makes with the email package: any subject,
names, addresses and bodies read back the same (RFC 2047 decoding for headers, the MIME parts'
content for bodies), on the wire only ASCII, CRLF, lines of at most 78 characters in the headers."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.notify import wire
from monitor.notify.render import Rendered, build_message, safe_header_text

WHEN = dt.datetime(2025, 6, 11, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"), min_size=0, max_size=300
)
cjk = st.text(
    st.sampled_from("州农业村局（主管部门）办公室财政预警黄红灯项目、，：ABC ab,\"'<>()@;.-"), max_size=60
)
emails = st.from_regex(r"[a-z][a-z0-9.]{0,10}@[a-z]{1,8}\.(cn|gov\.cn|com)", fullmatch=True)
people = st.lists(st.tuples(cjk, emails), min_size=1, max_size=4)


def _headers(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _decoded(raw: bytes, name: str) -> str:
    """A header's text as RFC 2047 defines it: unfolded, encoded-words decoded (whitespace between
    adjacent ones dropped)."""
    return str(make_header(decode_header(_raw_header(raw, name))))


def _addresses(raw: bytes, name: str) -> list[tuple[str, str]]:
    return [(str(make_header(decode_header(n))), a) for n, a in getaddresses([_raw_header(raw, name)])]


def _raw_header(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = head.replace("\r\n ", " ")
    for line in unfolded.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


@settings(max_examples=150, deadline=None)
@given(
    subject=text,
    body=text,
    html=text,
    sender=st.tuples(cjk, emails),
    to=people,
    cc=st.lists(st.tuples(cjk, emails), max_size=2),
    unit=st.sampled_from(["101001", "农业局", ""]),
)
def test_wire_message_reads_back_like_the_email_packages(
    subject: str,
    body: str,
    html: str,
    sender: tuple[str, str],
    to: list[tuple[str, str]],
    cc: list[tuple[str, str]],
    unit: str,
) -> None:
    rendered = Rendered(subject, body, html)
    kw = {
        "sender": sender,
        "to": to,
        "cc": cc,
        "reply_to": "reply@example.gov.cn",
        "message_id": "<m1@example.gov.cn>",
        "date": WHEN,
        "headers": {"X-Monitor-Kind": "warning", "X-Monitor-Unit": unit},
    }
    old, new = build_message(rendered, **kw), wire.build_message(rendered, **kw)  # type: ignore[arg-type]
    assert (old.sender, old.recipients) == (new.sender, new.recipients)
    raw = new.raw
    assert raw.isascii() and b"\n" not in raw.replace(b"\r\n", b"")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= wire.MAX_LINE for line in head.split(b"\r\n"))
    assert all(len(line) <= 998 for line in rest.split(b"\r\n"))
    a, b = _headers(old.raw), _headers(raw)
    for name in ("X-Monitor-Kind", "X-Monitor-Unit", "Date"):
        assert _decoded(raw, name) == _decoded(old.raw, name), name
    # what was given, read back as RFC 2047 says (not compared with the email package's message: in
    # Python 3.11 its folding drops the space between two words of a display name written as encoded-words)
    assert _decoded(raw, "Subject") == safe_header_text(subject)
    reply_to = [("", "reply@example.gov.cn")]
    for name, people in (("From", [sender]), ("To", to), ("Cc", cc), ("Reply-To", reply_to)):
        if people:
            assert _addresses(raw, name) == [(safe_header_text(n), e) for n, e in people], name
    for kind in ("plain", "html"):
        part_a, part_b = a.get_body((kind,)), b.get_body((kind,))
        assert part_a is not None and part_b is not None
        assert part_b.get_content() == part_a.get_content()


def test_a_long_chinese_subject_is_split_between_characters_into_short_encoded_words() -> None:
    subject = "【预警】2025年1-5月预算绩效运行监控：州农业农村局有2个红灯项目、3个黄灯项目，请于6月25日前反馈"
    words = wire.encoded_words(subject)
    assert len(words) > 2 and all(len(w) <= 60 for w in words)
    assert "".join(str(make_header(decode_header(w))) for w in words) == subject


def test_an_address_with_a_control_character_is_refused() -> None:
    for bad in ("a@b.cn\r\nBcc: x@y.cn", "no-at-sign"):
        try:
            wire.address("x", bad)
        except ValueError as exc:
            assert "not a valid e-mail address" in str(exc)
        else:
            raise AssertionError(bad)

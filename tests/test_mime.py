"""The MIME of every message a checkpoint run writes, as a strict reader sees it: `monitor run` on the
worked examples (mail mode file, and over SMTP to a real server), the bureau summary carrying the
Excel list and the HTML report. Every .eml parses under email.policy.strict without a defect on any
part or header; attachments have their real content types and RFC 2231 file names that decode back to
the Chinese names; no RFC 2047 encoded-word is over 75 characters; X-Monitor-* headers are plain ASCII;
the Message-ID's domain is the sender's. And the hand-written fast path (monitor.notify.wire) writes the MIME
body byte for byte as the email package does."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from mailserver import MailServer, attachments

from monitor.cli.main import main
from monitor.notify import wire
from monitor.notify.render import Rendered, attach, build_message, mime_body, mime_bytes

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
FROM_NAME = "某某自治州财政局预算绩效管理科（绩效运行监控专班）"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
WHEN = dt.datetime(2025, 6, 11, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def configure(workdir: Path, mail: str) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"""mail:
  from_address: jxk@czj.example.gov.cn
  from_name: {FROM_NAME}
  bureau_recipients: [jxk@czj.example.gov.cn, leader@czj.example.gov.cn]
  summary_attachments: [xlsx, html]
{mail}""",
        encoding="utf-8",
    )
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0


def header_blocks(raw: bytes) -> list[bytes]:
    """The header block of the message and of every MIME part (each block unfolded into lines)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    blocks = [raw.split(b"\r\n\r\n", 1)[0]]
    for part in msg.walk():
        boundary = part.get_boundary()
        if boundary:
            for chunk in raw.split(b"--" + boundary.encode() + b"\r\n")[1:]:
                blocks.append(chunk.split(b"\r\n\r\n", 1)[0])
    return blocks


def check_message(raw: bytes) -> EmailMessage:
    """Every check a strict reader makes; the parsed message."""
    msg = email.message_from_bytes(raw, policy=email.policy.strict)
    assert raw.isascii() and b"\n" not in raw.replace(b"\r\n", b"")
    for part in msg.walk():
        assert part.defects == [], part.defects
        for name, value in part.items():
            assert getattr(value, "defects", ()) == (), (name, str(value), value.defects)
    for block in header_blocks(raw):
        for line in block.split(b"\r\n"):
            for word in ENCODED_WORD.findall(line):
                assert len(word) <= 75, (line, len(word))
            if ENCODED_WORD.search(line):
                assert len(line) <= 76, line  # RFC 2047 section 2
    head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t")
    monitor_headers = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-monitor-")]
    assert monitor_headers
    for line in monitor_headers:
        assert not ENCODED_WORD.search(line), line
        assert re.fullmatch(rb"X-Monitor-[A-Za-z]+:[\x20-\x7e]*", line), line
    assert str(msg["Message-ID"]).endswith("@czj.example.gov.cn>")
    assert addresses(raw, "From") == [(FROM_NAME, "jxk@czj.example.gov.cn")]
    return msg


def raw_header(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    (value,) = [line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.startswith(name + ":")]
    return value


def rfc2047(value: str) -> str:
    """Header text decoded as RFC 2047 says (the whitespace between adjacent encoded-words dropped;
    Python 3.11's modern parser keeps it inside a display name)."""
    return str(make_header(decode_header(value)))


def addresses(raw: bytes, name: str) -> list[tuple[str, str]]:
    return [(rfc2047(n), a) for n, a in getaddresses([raw_header(raw, name)])]


def check_summary(raw: bytes) -> None:
    msg = check_message(raw)
    assert str(msg["X-Monitor-Kind"]) == "summary"
    files = attachments(msg)
    assert sorted(files) == ["监控报告-2025-05.html", "预警清单-2025-05.xlsx"]
    xlsx, html = files["预警清单-2025-05.xlsx"], files["监控报告-2025-05.html"]
    assert xlsx.get_content_type() == XLSX and xlsx.get_param("name") is None
    assert html.get_content_type() == "text/html" and html.get_content_charset() == "utf-8"
    for part in (xlsx, html):
        assert part.get_content_disposition() == "attachment"
    unfolded = raw.replace(b"\r\n ", b" ")
    for name in files:  # RFC 2231: the UTF-8 name percent-encoded
        assert f"Content-Disposition: attachment; filename*=utf-8''{quote(name)}".encode() in unfolded
    assert xlsx.get_content().startswith(b"PK")
    assert "2025年1-5月" in html.get_content()
    assert msg.get_body(("plain",)) is not None and msg.get_body(("html",)) is not None


def test_every_message_of_a_file_mode_run_reads_cleanly_under_the_strict_policy(workdir: Path) -> None:
    configure(workdir, f"  mode: file\n  file_dir: {workdir / 'outbox'}\n")
    res = cli(workdir, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    files = sorted((workdir / "outbox").glob("*.eml"))
    assert len(files) == 5
    kinds = {}
    for f in files:
        msg = check_message(f.read_bytes())
        kinds[str(msg["X-Monitor-Kind"])] = f.read_bytes()
        if str(msg["X-Monitor-Kind"]) == "warning":  # no web secret: the unit's answer workbook attached
            (workbook,) = msg.iter_attachments()
            assert workbook.get_content_type() == XLSX and workbook.get_param("name") is None
            assert str(workbook.get_filename()).startswith("反馈表-")
    check_summary(kinds["summary"])


def test_every_message_sent_over_smtp_reads_cleanly_under_the_strict_policy(workdir: Path) -> None:
    with MailServer() as server:
        configure(workdir, f"  mode: smtp\n  smtp: {{host: 127.0.0.1, port: {server.port}}}\n")
        res = cli(workdir, "run", "--checkpoint", "2025-05")
        assert res.exit_code == 0, res.output
        received = server.wait_for(5)
    summaries = []
    for r in received:
        msg = check_message(r.raw)
        if str(msg["X-Monitor-Kind"]) == "summary":
            summaries.append(r.raw)
    (summary,) = summaries
    check_summary(summary)


KW: dict[str, Any] = {
    "sender": (FROM_NAME, "jxk@czj.example.gov.cn"),
    "to": [("州农业农村局（主管部门）办公室", "a@czj.example.gov.cn"), ("州林业局", "b@czj.example.gov.cn")],
    "reply_to": "reply@czj.example.gov.cn",
    "message_id": "<m1@czj.example.gov.cn>",
    "date": WHEN,
}


def test_a_non_ascii_monitor_header_value_is_percent_encoded_not_encoded_words() -> None:
    """Codes are ASCII since import checks them; a value that is not (an older database) is written as
    UTF-8 percent-encoding, so X-Monitor-* stay plain ASCII and read back with urllib.parse.unquote."""
    rendered = Rendered("主题", "正文", "<p>正文</p>")
    headers = {"X-Monitor-Kind": "warning", "X-Monitor-Unit": "农业局 100%"}
    for env in (
        build_message(rendered, headers=headers, **KW),
        wire.build_message(rendered, headers=headers, **KW),
    ):
        msg = email.message_from_bytes(env.raw, policy=email.policy.strict)
        value = str(msg["X-Monitor-Unit"])
        assert value.isascii() and "=?" not in value and unquote(value) == "农业局 100%"


def test_attach_names_the_real_content_type_and_an_rfc2231_file_name() -> None:
    part = mime_body(Rendered("s", "t", "<p>h</p>"), ())
    attach(part, "预警清单-2025-05.xlsx", b"PK\x03\x04")
    attach(part, "监控报告-2025-05.html", "<p>报告</p>".encode())
    attach(part, "数据.bin", b"\x00\x01")
    with pytest.raises(ValueError, match=re.escape("监控报告.html: not UTF-8 text")):
        attach(part, "监控报告.html", b"\xff\xfe")
    parsed = email.message_from_bytes(mime_bytes(part), policy=email.policy.strict)
    got = [
        (a.get_filename(), a.get_content_type(), a.get_param("charset")) for a in parsed.iter_attachments()
    ]
    assert got == [
        ("预警清单-2025-05.xlsx", XLSX, None),
        ("监控报告-2025-05.html", "text/html", "utf-8"),
        ("数据.bin", "application/octet-stream", None),
    ]


text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"), max_size=300)


@settings(max_examples=100, deadline=None)
@given(body=text, html=text, files=st.lists(st.binary(max_size=200), max_size=2))
def test_the_fast_path_writes_the_mime_body_the_email_package_writes(
    body: str, html: str, files: list[bytes]
) -> None:
    """monitor.notify.wire writes the body of a message without attachments by hand (ten times faster): it is
    the email package's output byte for byte; the headers above it (wire's, for every message) read
    the same as the email package's."""
    rendered = Rendered(
        "【预警】2025年1-5月预算绩效运行监控：州农业农村局有2个红灯项目、3个黄灯项目", body, html
    )
    attachments = [(f"附件{i}.bin", data) for i, data in enumerate(files)]
    headers = {"X-Monitor-Kind": "warning", "X-Monitor-Unit": "301001"}
    fast = wire.build_message(rendered, headers=headers, attachments=attachments, **KW)
    library = build_message(rendered, headers=headers, attachments=attachments, **KW)
    parsed = cast(Message, email.message_from_bytes(fast.raw, policy=email.policy.strict))
    boundaries = [p.get_boundary() or "" for p in parsed.walk() if p.is_multipart()]
    assert boundaries[0].startswith("=_monitor_")
    body_fast = b"Content-Type:" + fast.raw.split(b"\r\nContent-Type:", 1)[1]
    assert body_fast == mime_bytes(mime_body(rendered, attachments, boundaries=boundaries))
    for raw in (fast.raw, library.raw):
        check_message(raw)
    for name in ("Subject", "Date", "Message-ID", "MIME-Version", "X-Monitor-Kind", "X-Monitor-Unit"):
        assert rfc2047(raw_header(fast.raw, name)) == rfc2047(raw_header(library.raw, name)), name
    for name in ("From", "To", "Reply-To"):
        assert addresses(fast.raw, name) == addresses(library.raw, name), name
    assert (fast.sender, fast.recipients) == (library.sender, library.recipients)

"""The body of a message with attachments (a warning's answer workbook, the bureau summary's reports)
written directly by monitor.notify.wire (issue 21: the email package took ~3 ms a warning): for many
generated messages with 1-3 attachments (xlsx, csv, pdf, html, unknown types; ASCII and Chinese names,
long ones, names with quotes, backslashes, semicolons, newlines and runs of spaces; empty files), it is
the email package's body (render.mime_body + mime_bytes) byte for byte, and it reads back under
email.policy.strict with each attachment's name, content type and bytes intact. A name the direct
writer does not take goes through the email package, and still makes the same message."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from typing import Any, cast

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from test_mime import KW, check_message

from monitor.notify import render, wire
from monitor.notify.render import Rendered, attachment_type, build_message, mime_body, mime_bytes

RENDERED = Rendered(
    "【预警】2025年1-5月预算绩效运行监控", "您单位有1个红灯项目。\n", "<p>您单位有1个红灯项目。</p>\n"
)
HEADERS = {"X-Monitor-Kind": "warning", "X-Monitor-Unit": "302"}
OUTER, INNER = "=_monitor_0123456789abcdef0123456789abcdef", "=_monitor_fedcba9876543210fedcba9876543210"

stems = st.one_of(
    st.sampled_from(["预警反馈表-302-2025-05", "监控报告-2025-05", "report", "整改 反馈（第2轮）", "a" * 70]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=90),
    st.text(st.sampled_from("abcXYZ019 -_.;,\"\\'()[]=%*\n\t预警表"), min_size=1, max_size=120),
)
suffixes = st.sampled_from([".xlsx", ".csv", ".pdf", ".html", ".bin", ".XLSX", ".docx", ""])
files = st.tuples(stems, suffixes, st.binary(max_size=400))


def named(stem: str, suffix: str, data: bytes) -> tuple[str, bytes]:
    name = stem + suffix
    assume(render.safe_header_text(name))  # an empty name is the email package's (tested below)
    if attachment_type(name, b"")[0] == "text":  # text/* must be UTF-8 (render.attach checks it)
        data = data.decode("utf-8", "replace").encode()
    return name, data


def library_body(attachments: Sequence[tuple[str, bytes]]) -> bytes:
    return mime_bytes(mime_body(RENDERED, attachments, boundaries=(OUTER, INNER)))


@settings(max_examples=400, deadline=None)
@given(st.lists(files, min_size=1, max_size=3))
@example([("预警反馈表-302-2025-05", ".xlsx", b"PK\x03\x04" * 50)])
@example([("预警清单-2025-05", ".xlsx", b"PK"), ("监控报告-2025-05", ".html", "<p>报告</p>".encode())])
@example([('a "quoted"; name\nwith a newline', ".csv", b"x,y\n1,2\n"), ("长" * 40, ".pdf", b"%PDF-1.4")])
@example([("x" * n, ".csv", b"") for n in (49, 50, 51)])  # around one line, a line of its own, sections
def test_the_direct_body_is_the_email_packages_and_reads_back_intact(
    generated: list[tuple[str, str, bytes]],
) -> None:
    attachments = [named(*f) for f in generated]
    written = wire.mixed(RENDERED, attachments, (OUTER, INNER))
    assert written is not None
    assert written.encode("ascii") == library_body(attachments)
    msg = cast(Any, email.message_from_bytes(written.encode(), policy=email.policy.strict))
    assert msg.get_content_type() == "multipart/mixed" and msg.defects == []
    got = list(msg.iter_attachments())
    assert len(got) == len(attachments)
    for (name, data), part in zip(attachments, got, strict=True):
        assert part.defects == [] and part.get_content_disposition() == "attachment"
        assert part.get_filename() == render.safe_header_text(name)
        assert part.get_payload(decode=True) == data
        assert part.get_content_type() == "/".join(attachment_type(name, data)[:2])


@pytest.mark.parametrize("name", ["", " \n ", "反馈表\udcff.xlsx"])
def test_a_name_the_direct_writer_does_not_take_goes_through_the_email_package(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty name (after control characters go) or one not encodable as UTF-8 (a surrogate escape):
    wire.mixed declines it and build_message has the email package make the body, as before (the
    same bytes, or the email package's own error)."""
    attachments = [("预警反馈表-302-2025-05.xlsx", b"PK\x03\x04"), (name, b"data")]
    assert wire.mixed(RENDERED, attachments, (OUTER, INNER)) is None
    calls: list[int] = []
    made: list[bytes] = []

    def recorded(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        part = mime_body(*args, **kw)
        made.append(mime_bytes(part))
        return part

    monkeypatch.setattr(wire, "mime_body", recorded)
    if not name.strip():
        fast = wire.build_message(RENDERED, headers=HEADERS, attachments=attachments, **KW)
        assert calls == [1] and fast.raw.endswith(made[0])
        return
    with pytest.raises(UnicodeEncodeError):
        build_message(RENDERED, headers=HEADERS, attachments=attachments, **KW)
    with pytest.raises(UnicodeEncodeError):
        wire.build_message(RENDERED, headers=HEADERS, attachments=attachments, **KW)
    assert calls == [1]


def test_a_warning_with_its_workbook_is_written_without_the_email_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The common case (a warning's answer workbook, the summary's xlsx and html) never reaches the
    email package, and the whole message reads cleanly under the strict policy."""

    def refused(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the email package was asked to write the body")

    monkeypatch.setattr(wire, "mime_body", refused)
    for attachments in (
        [("预警反馈表-302-2025-05.xlsx", b"PK\x03\x04" * 100)],
        [("预警清单-2025-05.xlsx", b"PK"), ("监控报告-2025-05.html", "<p>报告</p>".encode())],
    ):
        env = wire.build_message(RENDERED, headers=HEADERS, attachments=attachments, **KW)
        msg = check_message(env.raw)
        assert [(a.get_filename(), a.get_payload(decode=True)) for a in msg.iter_attachments()] == attachments

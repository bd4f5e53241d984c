"""The body of a message with attachments (issue 21): written directly (`notify.wire.mixed`) next to the
email package's (`render.mime_body` + `mime_bytes`, what every warning with its answer workbook paid
before), and the whole message (`wire.build_message` against `render.build_message`), for a warning
with its answer workbook (1 and 3 projects) and a bureau summary with an Excel list and an HTML report.
Medians of --repeat messages each, the two made in turns; the bodies are checked to be the same bytes
(tests/test_mime_attachments.py holds the writer to that).

    .venv/bin/python bench/bench_mime.py [--repeat 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench_workbook import CHECKPOINT, NAMES, cases

from monitor.ingest.workbook import answer_workbook
from monitor.notify import wire
from monitor.notify.render import Rendered, build_message, mime_body, mime_bytes

WHEN = dt.datetime(2025, 6, 11, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
BOUNDARIES = ("=_monitor_" + "0" * 32, "=_monitor_" + "1" * 32)
PARTS: dict[str, Any] = {
    "sender": ("某某自治州财政局预算绩效管理科", "jxk@czj.example.gov.cn"),
    "to": [("州交通局（本级）", "304@czj.example.gov.cn")],
    "cc": [("州交通运输主管部门", "30@czj.example.gov.cn")],
    "reply_to": "reply@czj.example.gov.cn",
    "message_id": "<m1@czj.example.gov.cn>",
    "date": WHEN,
    "headers": {"X-Monitor-Checkpoint": CHECKPOINT, "X-Monitor-Kind": "warning", "X-Monitor-Unit": "304"},
}


def rendered(projects: int) -> Rendered:
    rows = "".join(
        f"项目 2025-304-{i:03d} 城区路灯改造维护项目：红灯，执行率 12.5%。\n" for i in range(projects)
    )
    text = "州交通局（本级）：\n\n您单位 2025年1-5月 预算绩效运行监控发现以下问题：\n" + rows * 3
    html = "<html><body><p>" + text.replace("\n", "</p>\n<p>") + "</p></body></html>\n"
    return Rendered("【预警】2025年1-5月预算绩效运行监控：州交通局（本级）", text, html)


def messages() -> dict[str, tuple[Rendered, list[tuple[str, bytes]]]]:
    today = dt.date(2025, 6, 11)
    out = {}
    for n in (1, 3):
        workbook = answer_workbook(CHECKPOINT, cases(n), NAMES, today)
        out[f"warning, workbook of {n}"] = (rendered(n), [(f"预警反馈表-304-{CHECKPOINT}.xlsx", workbook)])
    report = ("<tr><td>州交通局</td><td>红灯</td></tr>\n" * 2000).encode()
    out["summary, xlsx + html"] = (
        rendered(10),
        [("预警清单-2025-05.xlsx", os.urandom(60_000)), ("监控报告-2025-05.html", report)],
    )
    return out


def ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def compare(label: str, new: Callable[[], object], old: Callable[[], object], repeat: int) -> None:
    a, b = [], []
    for _ in range(repeat):  # in turns: a noisy moment weighs on both
        a.append(ms(new))
        b.append(ms(old))
    x, y = statistics.median(a), statistics.median(b)
    print(f"  {label:<28} {x:>9.3f} {y:>13.3f} {y / x:>7.1f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=500)
    args = ap.parse_args()
    print(f"messages with attachments, medians of {args.repeat} (ms per message)")
    print(f"  {'':<28} {'direct':>9} {'email package':>13} {'ratio':>8}")
    for name, (r, files) in messages().items():
        size = sum(len(d) for _, d in files)
        print(f"{name} ({size / 1024:.1f} KB attached)")
        written = wire.mixed(r, files, BOUNDARIES)
        assert written is not None and written.encode("ascii") == mime_bytes(mime_body(r, files, BOUNDARIES))
        compare(
            "body",
            lambda r=r, files=files: wire.mixed(r, files, BOUNDARIES),
            lambda r=r, files=files: mime_bytes(mime_body(r, files, BOUNDARIES)),
            args.repeat,
        )
        compare(
            "whole message",
            lambda r=r, files=files: wire.build_message(r, attachments=files, **PARTS),
            lambda r=r, files=files: build_message(r, attachments=files, **PARTS),
            args.repeat,
        )


if __name__ == "__main__":
    main()

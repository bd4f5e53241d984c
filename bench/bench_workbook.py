"""The answer workbook a warning e-mail carries when the web part is not configured (issue 21): the time
to make one (`ingest.workbook.answer_workbook`, from a skeleton kept per process) next to a whole
openpyxl save of the same workbook (`write_template`, what every warning paid before), for warnings
asking about 1, 3 and 10 projects. Medians of --repeat workbooks each, the two made in turns; the
first call of a layout (which makes the skeleton: a whole save) is timed apart. The result is checked
to be the same workbook, part for part (tests/test_answer_workbook_mail.py holds it to that).

    .venv/bin/python bench/bench_workbook.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import time
import zipfile
from collections.abc import Callable

from monitor.ingest.workbook import AnswerRow, answer_workbook, write_template

CHECKPOINT = "2025-05"
NAMES = {"304": "州交通局（本级）"}
GOAL_MS = 2.0


def cases(n: int) -> list[AnswerRow]:
    return [
        AnswerRow(
            checkpoint=CHECKPOINT,
            unit_code="304",
            project_code=f"2025-304-{i:03d}",
            project_name=f"城区路灯改造维护项目{i}",
            light=("red", "yellow")[i % 2],
            state="open",
            comment="",
        )
        for i in range(1, n + 1)
    ]


def whole_save(found: list[AnswerRow], today: dt.date) -> bytes:
    buf = io.BytesIO()
    write_template(buf, CHECKPOINT, found, NAMES, today)
    return buf.getvalue()


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "docProps/core.xml"}


def ms(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args()
    today = dt.date.today()
    print(f"answer workbook of a warning, medians of {args.repeat} (ms per workbook)")
    print(f"{'projects':>8} {'first call':>11} {'skeleton':>9} {'whole save':>11} {'ratio':>7}")
    for n in (1, 3, 10):
        found = cases(n)
        first = ms(answer_workbook, CHECKPOINT, found, NAMES, today)
        assert parts(answer_workbook(CHECKPOINT, found, NAMES, today)) == parts(whole_save(found, today))
        new, old = [], []
        for _ in range(args.repeat):  # in turns: a noisy moment weighs on both
            new.append(ms(answer_workbook, CHECKPOINT, found, NAMES, today))
            old.append(ms(whole_save, found, today))
        a, b = statistics.median(new), statistics.median(old)
        print(f"{n:>8} {first:>11.2f} {a:>9.2f} {b:>11.2f} {b / a:>6.1f}×")
    print(f"goal: ≤ {GOAL_MS} ms a workbook (the skeleton column)")


if __name__ == "__main__":
    main()

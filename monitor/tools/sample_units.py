"""The sample prefecture's units: its departments and each county's, each followed by most of the
units it supervises (with their townships), written to units.csv with codes, names and e-mail addresses.
"""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path
from typing import NamedTuple

from monitor.tools.sample_archetypes import DEPARTMENTS
from monitor.tools.sample_kinds import RUNS
from monitor.tools.sample_rows import HEADERS


class Unit(NamedTuple):
    code: str
    kinds: tuple[int, ...]  # the archetypes it may run (indices into KINDS, repeated for weight)
    place: str


def _place(k: int) -> str:
    """0 is the prefecture itself (州); 1.. are (fictional) counties, each name distinct for k ≤ 1800
    (a sample of a million projects has about 1,500 counties)."""
    if k == 0:
        return "州"
    j = k - 1
    first, second = j % 20, (j // 20 % 30 + 3 * (j % 20)) % 30
    return (
        "新" * (j // 1800)
        + "青白金龙松石长永安云丰凤宁平华东西南新兴"[first]
        + "山水河川源溪峰岭江泉阳林坪湖田坡塘沟台营谷岗桥关门城口屯庄湾"[second]
        + "县市区"[j // 600 % 3]
    )


def write_units(path: Path, rng: random.Random, n_units: int) -> list[Unit]:
    """The prefecture's departments (州农业农村局 …), then each county's (青山县农业农村局 …), each
    followed by most of the units it supervises at its level (州动物疫病预防控制中心, 青山县龙潭镇卫生院),
    until n_units are written; returns the units in file order."""
    units: list[Unit] = []
    d = 0  # department number: codes are its prefix (101 + d) and 3 digits, the department itself …001
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADERS["units"])
        for k in itertools.count():
            place = _place(k)
            towns = _towns(k)
            for dept in DEPARTMENTS:
                name = dept.county if k else dept.prefecture
                if not name:
                    continue
                if len(units) >= n_units:
                    return units
                types = dept.county_units if k else dept.units
                subs = [(t, place + t) for t in types] + [
                    (t, place + w + t) for t in dept.township for w in towns
                ]
                keep = len(subs) - rng.randint(0, len(subs) // 4)  # a few have no project budget this year
                keep = min(keep, n_units - len(units) - 1)
                picked = sorted(rng.sample(range(len(subs)), keep)) if keep < len(subs) else range(keep)
                prefix = str(101 + d)
                d += 1
                rows = [("@" + dept.key, place + name, "")]
                rows += [(subs[i][0], subs[i][1], f"{prefix}001") for i in picked]
                for seq, (kind, unit_name, supervisor) in enumerate(rows, 1):
                    code = f"{prefix}{seq:03d}"
                    email = f"u{code}@example.gov.cn"
                    if rng.random() < 0.05:
                        email += f";cw{code}@example.gov.cn"
                    writer.writerow((code, unit_name, email, supervisor))
                    units.append(Unit(code, RUNS[kind], place))
    return units  # pragma: no cover (the loop above returns)


def _towns(k: int) -> tuple[str, ...]:
    """The townships of county k (none for the prefecture itself, k = 0): 8 to 12 distinct names."""
    if k == 0:
        return ()
    return tuple(
        "龙凤马石花竹梅沙桥坝新安和平清"[(4 * k + i) % 15]
        + "潭山坪街村塘口营屯湾"[(7 * k + 3 * i) % 10]
        + "镇乡"[(k + i) % 3 == 0]
        for i in range(8 + k % 5)
    )

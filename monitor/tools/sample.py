"""Deterministic sample prefecture: a size, a seed and a year in; the five import CSV files out.

`write_sample()` streams units, projects, indicators and the May/August reports of a realistic prefecture
(Chinese names, lognormal budgets, a real-looking mix of indicator kinds and of green/yellow/red lights),
UTF-8 with canonical English headers, so import, evaluation, demos and benchmarks have data at any scale.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import math
import random
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO, NamedTuple, Protocol

from monitor.tools.sample_archetypes import ARCHETYPES, BLOCKS, DEPARTMENTS, Archetype

HEADERS: dict[str, tuple[str, ...]] = {
    "units": ("unit_code", "unit_name", "email", "supervisor_code"),
    "projects": ("project_code", "project_name", "unit_code", "budget", "carryover", "fund_flag", "category",
                 "profile"),
    "indicators": ("project_code", "indicator_code", "level1", "level2", "name", "direction", "target",
                   "measure_unit", "kind", "profile"),
    "project_reports": ("checkpoint", "project_code", "executed", "forecast_executed"),
    "indicator_reports": ("checkpoint", "project_code", "indicator_code", "actual", "forecast", "possibility",
                          "causes", "cause_text", "measures"),
}  # fmt: skip

# fmt: off
_GROUPS = {"数量": 0, "质量": 1, "时效": 2, "成本": 3, "经济效益": 4, "社会效益": 4, "生态效益": 4,
           "可持续影响": 4, "服务对象满意度": 5}
_LEVEL1 = ("产出指标", "产出指标", "产出指标", "成本指标", "效益指标", "满意度指标")
_EXTRA_GROUP_WEIGHTS = (3, 2, 2, 1, 2, 0)  # slots beyond the core four: 数量 质量 时效 成本 效益 满意度
_BUDGET_MAX = 3_000_000  # hundredths of 万元: no project of a prefecture is over 3 亿元
_COUNT_WEIGHTS = (5, 12, 24, 24, 14, 9, 5, 3, 2, 2)  # indicators per project, 3..12: mean ≈ 6.2
# Approximate cumulative share of the year's work done by the end of May and of August, per seasonal profile.
# May and August shares of the profiles in rules/default.yaml (keep in step with that file).
_PROGRESS = {"": (5 / 12, 8 / 12), "spring_autumn": (0.45, 0.52), "summer_season": (0.32, 0.80),
             "semester": (0.50, 0.55), "autumn_construction": (0.16, 0.40)}
# Ratio to time progress by state (0 on schedule, 1 slightly behind: yellow, 2 badly behind: red), for the
# budget (executed / budget / P) and for cumulative indicators (actual / target / P).
_BUDGET_RATIO = ((0.81, 1.6), (0.61, 0.79), (0.02, 0.59))
_PACE = ((0.82, 1.18), (0.61, 0.79), (0.1, 0.59))
_QUALITATIVE = ("达成目标", "部分达成目标并具有一定效果", "未达成目标且效果较差")
_CAUSES = {
    "经费保障": "上级资金尚未下达，配套资金未落实", "制度保障": "实施方案审批及招标程序较长",
    "人员保障": "专业技术人员不足，工作力量薄弱", "硬件条件保障": "设备到货延迟，场地条件不具备",
    "其他": "受天气和季节性因素影响，工作推进滞后",
}
_MEASURES = ("加快项目实施进度，确保按期完成", "加强与上级部门沟通，督促资金及时到位",
             "优化实施方案，倒排工期压实责任", "加强人员培训和调配，补齐工作力量",
             "每月调度进度，及时研究解决问题")
# fmt: on


class _Rows(Protocol):
    def writerow(self, row: Iterable[object], /) -> object: ...


class _Spec(NamedTuple):
    group: int  # 0 数量 1 质量 2 时效 3 成本 4 效益 5 满意度: indicator order within a project
    level2: str
    name: str
    direction: str
    unit: str
    kind: str
    targets: tuple[str, ...]
    span: tuple[int, int]  # cumulative target range, else (0, 0)


class _Kind(NamedTuple):
    """An archetype ready to draw from."""

    name: str
    profile: str
    lump: bool
    category: str
    pools: tuple[tuple[_Spec, ...], ...]  # its indicators by group
    size: int  # how many indicators it has


class _Unit(NamedTuple):
    code: str
    kinds: tuple[int, ...]  # the archetypes it may run (indices into _KINDS, repeated for weight)
    place: str


def _spec(line: str) -> _Spec:
    level2, name, direction, unit, text = line.split("|")
    targets = tuple(text.split(","))
    if direction == "定性":
        kind = "qualitative"
    elif targets[0][2:3] == "-":
        kind = "milestone"
    elif level2 == "数量" and direction in "≥>" and unit != "%":
        kind = "cumulative"
    else:
        kind = "level"
    lo, _, hi = text.partition("~")
    span = (int(lo), int(hi)) if hi else (0, 0)
    return _Spec(_GROUPS[level2], level2, name, direction, unit, kind, targets, span)


def _kind(archetype: Archetype) -> _Kind:
    lines = [x for line in archetype.indicators for x in (BLOCKS[line[1:]] if line[0] == "+" else (line,))]
    lines += [line for line in BLOCKS["all"] if line.split("|")[1] not in {x.split("|")[1] for x in lines}]
    specs = [_spec(line) for line in lines]
    pools = tuple(tuple(s for s in specs if s.group == g) for g in range(6))
    lump = archetype.spending == "lump"
    return _Kind(archetype.name, archetype.profile, lump, archetype.category, pools, len(specs))


_KINDS = tuple(_kind(a) for a in ARCHETYPES)
_PHASES = ("一期", "二期", "三期", "四期", "五期", "六期", "七期", "八期", "九期", "十期")


def _runs(runner: str) -> tuple[int, ...]:
    """What a unit of this kind (`@key` for a department, else its type) runs: its own archetypes four
    times, the ones any unit runs (信息化系统运维, 办公设备购置) once."""
    own = [i for i, a in enumerate(ARCHETYPES) if runner in a.runners]
    return tuple(own * 4 + [i for i, a in enumerate(ARCHETYPES) if "*" in a.runners])


_RUNS = {
    runner: _runs(runner)
    for runner in {"@" + d.key for d in DEPARTMENTS}
    | {t for d in DEPARTMENTS for t in d.units + d.county_units + d.township}
}


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


def _money(cents: int) -> str:
    """Hundredths of 万元 as a plain decimal: 118000 -> '1180.00'."""
    return f"{cents // 100}.{cents % 100:02d}"


def _fmt(value: float) -> str:
    """One decimal, without a trailing .0: 96.0 -> '96', 92.14 -> '92.1'."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def write_sample(
    out_dir: Path, projects: int = 2450, seed: int = 2025, year: int = 2025, may_only: bool = False
) -> dict[str, Path]:
    """Write units.csv, projects.csv, indicators.csv, project_reports.csv, indicator_reports.csv into
    out_dir (created if missing), UTF-8, canonical English headers. Returns {kind: path}. `may_only`:
    the report files hold the May reports alone (what a bureau has at its May checkpoint); every other
    row is the same as without it.

    The same (projects, seed, year) always gives byte-identical files; rows are streamed, so memory stays
    small at any size (the August report rows wait in a temporary file to keep each file in checkpoint order).
    """
    if projects < 1:
        raise ValueError(f"projects must be at least 1 (got {projects})")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = {kind: out_dir / f"{kind}.csv" for kind in HEADERS}
    units = _write_units(paths["units"], rng, max(3, round(projects / 2.9)))
    with ExitStack() as stack:
        files = {
            k: stack.enter_context(p.open("w", newline="", encoding="utf-8"))
            for k, p in paths.items()
            if k != "units"
        }
        writers = {k: csv.writer(f, lineterminator="\n") for k, f in files.items()}
        for kind, writer in writers.items():
            writer.writerow(HEADERS[kind])
        later: dict[str, IO[str]] = {
            k: stack.enter_context(tempfile.TemporaryFile("w+", newline="", encoding="utf-8"))
            for k in ("project_reports", "indicator_reports")
        }
        later_writers = {k: csv.writer(f, lineterminator="\n") for k, f in later.items()}
        _write_projects(rng, units, projects, year, writers, later_writers)
        for kind, tmp in later.items():
            if not may_only:
                tmp.seek(0)
                shutil.copyfileobj(tmp, files[kind])
    return paths


def sample_summary(paths: Mapping[str, Path]) -> dict[str, int]:
    """Data rows (lines minus the header) per kind of a written sample."""
    counts: dict[str, int] = {}
    for kind, path in paths.items():
        with path.open("rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        counts[kind] = max(0, lines - 1)
    return counts


def _write_units(path: Path, rng: random.Random, n_units: int) -> list[_Unit]:
    """The prefecture's departments (州农业农村局 …), then each county's (青山县农业农村局 …), each
    followed by most of the units it supervises at its level (州动物疫病预防控制中心, 青山县龙潭镇卫生院),
    until n_units are written; returns the units in file order."""
    units: list[_Unit] = []
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
                    units.append(_Unit(code, _RUNS[kind], place))
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


def _write_projects(
    rng: random.Random,
    units: list[_Unit],
    n: int,
    year: int,
    out: Mapping[str, _Rows],
    later: Mapping[str, _Rows],
) -> None:
    """Write each project with its indicators and reports; August report rows go to `later`.
    The steps draw from `rng` in a fixed order: the same seed writes the same files."""
    cum: list[float] = []
    acc = 0.0
    for unit in units:  # departments (code …001) run more projects than their subordinate units
        acc += (4.0 if unit.place == "州" else 2.0) if unit.code.endswith("001") else rng.uniform(0.3, 1.7)
        cum.append(acc)
    seq = [0] * len(units)
    runs: list[dict[str, int]] = [{} for _ in units]  # how often each unit runs each archetype so far
    may, aug = f"{year}-05", f"{year}-08"
    for _ in range(n):
        u = bisect.bisect(cum, rng.random() * acc)
        unit = units[u]
        kind, again = _pick_kind(rng, unit, runs[u])
        seq[u] += 1
        code = f"532300{year % 100:02d}{unit.code}{seq[u]:04d}"
        name, profile = _project_name(rng, kind, unit, again, year)
        budget = min(_BUDGET_MAX, max(100, round(rng.lognormvariate(math.log(80), 1.69) * 100)))
        carry = max(1, round(budget * rng.uniform(0.02, 0.3))) if rng.random() < 0.10 else 0
        f = rng.random()
        flag = "01" if f < 0.15 else "02" if f < 0.20 else "09" if f < 0.6 else ""
        carry_text = _money(carry) if carry else ""
        out["projects"].writerow(
            (code, name, unit.code, _money(budget), carry_text, flag, kind.category, profile)
        )
        progress = _PROGRESS[profile]
        *reported, green_may = _write_budget_reports(
            rng, code, budget, carry, progress, kind.lump, (may, aug), (out, later)
        )
        # Indicator trouble goes with slow spending: a "troubled" project has far more behind indicators.
        troubled = rng.random() < (0.12 if green_may else 0.35)
        project = _Project(code, kind, profile, budget, progress, 0.25 if troubled else 0.02)
        _write_indicators(rng, project, year, reported, out, later)


def _pick_kind(rng: random.Random, unit: _Unit, runs: dict[str, int]) -> tuple[_Kind, int]:
    """The archetype of a unit's next project, and how many of it the unit ran before (`runs`, updated)."""
    kind = _KINDS[rng.choice(unit.kinds)]
    for _ in range(3):  # a unit runs an archetype once, unless it runs all it may
        if kind.name not in runs:
            break
        kind = _KINDS[rng.choice(unit.kinds)]
    again = runs.get(kind.name, 0)
    runs[kind.name] = again + 1
    return kind, again


def _project_name(rng: random.Random, kind: _Kind, unit: _Unit, again: int, year: int) -> tuple[str, str]:
    """The project's name and its spending profile ("" most of the time)."""
    name, profile = kind.name, kind.profile if rng.random() < 0.72 else ""
    if again:  # the same work again: a later phase (二期, 三期 …), never the same name twice
        name = f"{name}（{_PHASES[again] if again < len(_PHASES) else f'{again + 1}期'}）"
    if unit.place != "州" and rng.random() < 0.15:
        name = unit.place + name
    if rng.random() < 0.15:
        name = f"{year}年{name}"
    return name, profile


class _Project(NamedTuple):
    """What the indicators of a project are drawn from."""

    code: str
    kind: _Kind
    profile: str
    budget: int
    progress: tuple[float, float]
    p_issue: float  # the chance each indicator falls behind


def _write_indicators(
    rng: random.Random,
    p: _Project,
    year: int,
    reported: list[bool],
    out: Mapping[str, _Rows],
    later: Mapping[str, _Rows],
) -> None:
    """The project's indicators, and their May and August report rows where its reports were `reported`."""
    may, aug = f"{year}-05", f"{year}-08"
    ends = (dt.date(year, 5, 31), dt.date(year, 8, 31))
    for i, spec in enumerate(_pick_specs(rng, p.kind, rng.choices(range(3, 13), _COUNT_WEIGHTS)[0]), 1):
        ind_code = f"I{i:02d}"
        target = _target(rng, spec, p.budget, year)
        level1 = "产出指标" if spec.group == 3 and rng.random() < 0.3 else _LEVEL1[spec.group]
        kind_text = spec.kind if rng.random() < 0.05 else ""
        ind_profile = p.profile if p.profile and spec.kind == "cumulative" and rng.random() < 0.5 else ""
        row = (p.code, ind_code, level1, spec.level2, spec.name, spec.direction, target, spec.unit, kind_text)
        out["indicators"].writerow((*row, ind_profile))
        values = _indicator_values(rng, spec, target, p.progress, ends, p.p_issue)
        for cp, writer, value, ok in zip((may, aug), (out, later), values, reported, strict=True):
            if ok and rng.random() >= 0.03:  # a few indicator rows are left blank by the unit
                writer["indicator_reports"].writerow((cp, p.code, ind_code, *value))


def _write_budget_reports(
    rng: random.Random,
    code: str,
    budget: int,
    carry: int,
    progress: tuple[float, float],
    lump: bool,
    checkpoints: tuple[str, str],
    writers: tuple[Mapping[str, _Rows], Mapping[str, _Rows]],
) -> tuple[bool, bool, bool]:
    """Write the May and August project rows; returns (reported in May, reported in August, green in May)."""
    light_may = rng.choices((0, 1, 2), (74, 16, 10))[0]  # 0 green, 1 yellow, 2 red (r = E / P)
    light_aug = light_may if rng.random() < 0.6 else rng.choices((0, 1, 2), (82.5, 10.5, 7))[0]
    cap, executed, reported = budget + carry, 0, [True, True]
    for c, light in enumerate((light_may, light_aug)):
        nothing = light == 2 and c == 0 and rng.random() < (0.5 if lump else 0.15)  # nothing spent by May
        ratio = 0.0 if nothing else rng.uniform(*_BUDGET_RATIO[light])
        if lump and light == 0:  # paid in one go (耕地地力保护补贴): all of it, but for the odd remainder
            ratio = rng.uniform(0.92, 1.0) / progress[c]
        executed = min(cap, max(executed, int(budget * progress[c] * ratio)))
        if rng.random() < (0.015, 0.01)[c]:
            reported[c] = False  # not reported at this checkpoint
            continue
        f = rng.random()
        forecast = (
            "" if f < 0.25 else _money(cap if f < 0.8 else max(executed, int(cap * rng.uniform(0.8, 0.99))))
        )
        writers[c]["project_reports"].writerow((checkpoints[c], code, _money(executed), forecast))
    return reported[0], reported[1], light_may == 0


def _pick_specs(rng: random.Random, kind: _Kind, n: int) -> list[_Spec]:
    """n distinct indicators: a quantity, a quality, a benefit and a satisfaction one, then a weighted mix."""
    wanted = [0, 1, 5] if n == 3 else [0, 1, 4, 5, *rng.choices(range(6), _EXTRA_GROUP_WEIGHTS, k=n - 4)]
    chosen: list[_Spec] = []
    for g, k in enumerate(map(wanted.count, range(6))):
        pool = kind.pools[g]
        if k == 1 and pool:
            chosen.append(rng.choice(pool))
        elif k:
            chosen.extend(rng.sample(pool, min(k, len(pool))))
    if len(chosen) < n:
        rest = [s for pool in kind.pools[:5] for s in pool if s not in chosen]
        chosen.extend(rng.sample(rest, min(len(rest), n - len(chosen))))
    chosen.sort(key=lambda s: s.group)
    return chosen


def _target(rng: random.Random, spec: _Spec, budget: int, year: int) -> str:
    if spec.kind == "cumulative":
        # Bigger projects deliver more: scale the typical range by √(budget / mean budget).
        value = max(
            spec.span[0], round(rng.randint(*spec.span) * min(2.0, max(0.15, math.sqrt(budget / 33000))))
        )
        step = 10 ** max(0, len(str(value)) - 2)  # two significant digits: 123456 -> 120000
        return str(round(value / step) * step)
    if spec.kind == "milestone":
        return f"{year}-{rng.choice(spec.targets)}"
    return _money(budget) if spec.targets[0] == "@" else rng.choice(spec.targets)


def _indicator_values(
    rng: random.Random,
    spec: _Spec,
    target: str,
    progress: tuple[float, float],
    ends: tuple[dt.date, dt.date],
    p_issue: float,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(actual, forecast, possibility, causes, cause_text, measures) at May and at August."""
    r = rng.random()
    state_may = 0 if r >= p_issue else 1 if r < p_issue * 0.6 else 2  # 0 on track, 1 slightly behind, 2 badly
    state_aug = 0 if state_may and rng.random() < 0.5 else state_may
    rows: list[tuple[str, ...]] = []
    done: dt.date | None = None  # milestones: the day it is (or will be) done, None if not this year
    due = dt.date.fromisoformat(target) if spec.kind == "milestone" else dt.date.min
    if spec.kind == "milestone":
        if state_may == 0:
            done = due - dt.timedelta(days=rng.randint(0, 40))
        elif rng.random() < 0.8:
            done = due + dt.timedelta(days=rng.randint(5, 75))
    previous = 0
    for c, state in enumerate((state_may, state_aug)):
        behind = state > 0
        if spec.kind == "cumulative":
            ahead = state == 0 and rng.random() < 0.06  # ahead of schedule (blue)
            pace = rng.uniform(1.2, 1.8) if ahead else rng.uniform(*_PACE[state])
            previous = max(previous, round(int(target) * progress[c] * pace))
            actual = str(previous)
        elif spec.kind == "milestone":
            actual = done.isoformat() if done and done <= ends[c] else ""
            behind = due < ends[c] and (done is None or done > due)
        elif spec.kind == "qualitative":
            actual = _QUALITATIVE[state]
        elif spec.group == 5 and (c == 0 or rng.random() < 0.65):
            actual, behind = "", False  # satisfaction survey not done yet
        else:
            actual = _level_value(rng, spec, float(target), state)
        final = "达成目标" if spec.kind == "qualitative" else target
        if behind:
            cause = rng.choice(tuple(_CAUSES))
            possibility = rng.choice(("有可能", "有可能", "确定能"))
            if state == 2 and rng.random() < 0.2:
                possibility = "完全不可能"
            forecast = final if rng.random() < 0.5 else ""
            rows.append((actual, forecast, possibility, cause, _CAUSES[cause], rng.choice(_MEASURES)))
        else:
            possibility = "确定能" if rng.random() < 0.9 else ""
            rows.append((actual, final if rng.random() < 0.4 else "", possibility, "", "", ""))
    return rows[0], rows[1]


def _level_value(rng: random.Random, spec: _Spec, target: float, state: int) -> str:
    """A level actual: met in the indicator's direction (state 0), within 5 % (1) or further off (2)."""
    if target == 0:
        return "0" if state == 0 else str(rng.randint(1, 3))
    higher = spec.direction in "≥>="
    if state == 0:
        if spec.direction == "=":
            return _fmt(target)
        if not higher:
            return _fmt(target * rng.uniform(0.6, 0.99))
        value = target * rng.uniform(1.01, 1.1)
        return _fmt(max(target, min(value, 100.0)) if spec.unit == "%" else value)
    miss = rng.uniform(0.006, 0.045) if state == 1 else rng.uniform(0.07, 0.3)
    return _fmt(target * (1 - miss if higher else 1 + miss))

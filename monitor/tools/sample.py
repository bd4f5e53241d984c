"""Deterministic sample prefecture: a size, a seed and a year in; the five import CSV files out.

`write_sample()` streams units, projects, indicators and the May/August reports of a realistic prefecture
(Chinese names, lognormal budgets, a real-looking mix of indicator kinds and of green/yellow/red lights),
UTF-8 with canonical English headers, so import, evaluation, demos and benchmarks have data at any scale.
This module draws the projects and their budget reports; units are in sample_units.py, indicators in
sample_indicators.py, the archetypes ready to draw from in sample_kinds.py, headers in sample_rows.py.
"""

from __future__ import annotations

import bisect
import csv
import math
import random
import shutil
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from monitor.tools.sample_indicators import Project, write_indicators
from monitor.tools.sample_kinds import KINDS, Kind
from monitor.tools.sample_rows import HEADERS, Rows, money
from monitor.tools.sample_units import Unit, write_units

# fmt: off
_BUDGET_MAX = 3_000_000  # hundredths of 万元: no project of a prefecture is over 3 亿元
# Approximate cumulative share of the year's work done by the end of May and of August, per seasonal profile.
# May and August shares of the profiles in rules/default.yaml (keep in step with that file).
_PROGRESS = {"": (5 / 12, 8 / 12), "spring_autumn": (0.45, 0.52), "summer_season": (0.32, 0.80),
             "semester": (0.50, 0.55), "autumn_construction": (0.16, 0.40)}
# Ratio to time progress by state (0 on schedule, 1 slightly behind: yellow, 2 badly behind: red) for the
# budget (executed / budget / P).
_BUDGET_RATIO = ((0.81, 1.6), (0.61, 0.79), (0.02, 0.59))
_PHASES = ("一期", "二期", "三期", "四期", "五期", "六期", "七期", "八期", "九期", "十期")
# fmt: on


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
    units = write_units(paths["units"], rng, max(3, round(projects / 2.9)))
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


def _write_projects(
    rng: random.Random,
    units: list[Unit],
    n: int,
    year: int,
    out: Mapping[str, Rows],
    later: Mapping[str, Rows],
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
        carry_text = money(carry) if carry else ""
        out["projects"].writerow(
            (code, name, unit.code, money(budget), carry_text, flag, kind.category, profile)
        )
        progress = _PROGRESS[profile]
        *reported, green_may = _write_budget_reports(
            rng, code, budget, carry, progress, kind.lump, (may, aug), (out, later)
        )
        # Indicator trouble goes with slow spending: a "troubled" project has far more behind indicators.
        troubled = rng.random() < (0.12 if green_may else 0.35)
        project = Project(code, kind, profile, budget, progress, 0.25 if troubled else 0.02)
        write_indicators(rng, project, year, reported, out, later)


def _pick_kind(rng: random.Random, unit: Unit, runs: dict[str, int]) -> tuple[Kind, int]:
    """The archetype of a unit's next project, and how many of it the unit ran before (`runs`, updated)."""
    kind = KINDS[rng.choice(unit.kinds)]
    for _ in range(3):  # a unit runs an archetype once, unless it runs all it may
        if kind.name not in runs:
            break
        kind = KINDS[rng.choice(unit.kinds)]
    again = runs.get(kind.name, 0)
    runs[kind.name] = again + 1
    return kind, again


def _project_name(rng: random.Random, kind: Kind, unit: Unit, again: int, year: int) -> tuple[str, str]:
    """The project's name and its spending profile ("" most of the time)."""
    name, profile = kind.name, kind.profile if rng.random() < 0.72 else ""
    if again:  # the same work again: a later phase (二期, 三期 …), never the same name twice
        name = f"{name}（{_PHASES[again] if again < len(_PHASES) else f'{again + 1}期'}）"
    if unit.place != "州" and rng.random() < 0.15:
        name = unit.place + name
    if rng.random() < 0.15:
        name = f"{year}年{name}"
    return name, profile


def _write_budget_reports(
    rng: random.Random,
    code: str,
    budget: int,
    carry: int,
    progress: tuple[float, float],
    lump: bool,
    checkpoints: tuple[str, str],
    writers: tuple[Mapping[str, Rows], Mapping[str, Rows]],
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
            "" if f < 0.25 else money(cap if f < 0.8 else max(executed, int(cap * rng.uniform(0.8, 0.99))))
        )
        writers[c]["project_reports"].writerow((checkpoints[c], code, money(executed), forecast))
    return reported[0], reported[1], light_may == 0

"""The archetypes of sample_archetypes.py ready to draw from: each one's indicators as parsed specs
grouped by level-2 family (with their kind: cumulative, level, milestone or qualitative), and the
archetypes each kind of unit (a department, or a unit type) may run, weighted.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.tools.sample_archetypes import ARCHETYPES, BLOCKS, DEPARTMENTS, Archetype

# fmt: off
_GROUPS = {"数量": 0, "质量": 1, "时效": 2, "成本": 3, "经济效益": 4, "社会效益": 4, "生态效益": 4,
           "可持续影响": 4, "服务对象满意度": 5}
# fmt: on


class Spec(NamedTuple):
    group: int  # 0 数量 1 质量 2 时效 3 成本 4 效益 5 满意度: indicator order within a project
    level2: str
    name: str
    direction: str
    unit: str
    kind: str
    targets: tuple[str, ...]
    span: tuple[int, int]  # cumulative target range, else (0, 0)


class Kind(NamedTuple):
    """An archetype ready to draw from."""

    name: str
    profile: str
    lump: bool
    category: str
    pools: tuple[tuple[Spec, ...], ...]  # its indicators by group
    size: int  # how many indicators it has


def _spec(line: str) -> Spec:
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
    return Spec(_GROUPS[level2], level2, name, direction, unit, kind, targets, span)


def _kind(archetype: Archetype) -> Kind:
    lines = [x for line in archetype.indicators for x in (BLOCKS[line[1:]] if line[0] == "+" else (line,))]
    lines += [line for line in BLOCKS["all"] if line.split("|")[1] not in {x.split("|")[1] for x in lines}]
    specs = [_spec(line) for line in lines]
    pools = tuple(tuple(s for s in specs if s.group == g) for g in range(6))
    lump = archetype.spending == "lump"
    return Kind(archetype.name, archetype.profile, lump, archetype.category, pools, len(specs))


KINDS = tuple(_kind(a) for a in ARCHETYPES)


def _runs(runner: str) -> tuple[int, ...]:
    """What a unit of this kind (`@key` for a department, else its type) runs: its own archetypes four
    times, the ones any unit runs (信息化系统运维, 办公设备购置) once."""
    own = [i for i, a in enumerate(ARCHETYPES) if runner in a.runners]
    return tuple(own * 4 + [i for i, a in enumerate(ARCHETYPES) if "*" in a.runners])


RUNS = {
    runner: _runs(runner)
    for runner in {"@" + d.key for d in DEPARTMENTS}
    | {t for d in DEPARTMENTS for t in d.units + d.county_units + d.township}
}

"""The sample a new user sees first reads like a real prefecture: units that exist at their level,
departments supervising their own kind of unit, projects that fit their unit and indicators that fit
their project. Checked on the generated CSV files against the relations the archetype table declares
(monitor/tools/sample_archetypes.py), and against the mistakes a bureau leader spotted in the old sample."""

from __future__ import annotations

import csv
import re
from collections import Counter
from fractions import Fraction

import pytest

from monitor.tools.sample import write_sample
from monitor.tools.sample_archetypes import ARCHETYPES, BLOCKS, DEPARTMENTS, Archetype, Department

Rows = dict[str, list[dict[str, str]]]
YEAR = 2025
PLACE = re.compile(r"^(州|..[县市区])(.+)$")
TOWN = re.compile(r"^(..[镇乡])(.+)$")
BY_NAME = {a.name: a for a in ARCHETYPES}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    """The default sample: what `monitor sample` and `monitor demo` write."""
    paths = write_sample(tmp_path_factory.mktemp("coherent"), year=YEAR)
    out: Rows = {}
    for kind, path in paths.items():
        with path.open(encoding="utf-8", newline="") as f:
            out[kind] = list(csv.DictReader(f))
    return out


def split_place(name: str) -> tuple[str, str, str]:
    """(level, place, rest) of a unit name: 州农业农村局 → (prefecture, 州, 农业农村局)."""
    match = PLACE.match(name)
    assert match, f"unit name without a prefecture or county: {name}"
    return ("prefecture" if match[1] == "州" else "county"), match[1], match[2]


def department_of(name: str) -> Department:
    level, _, rest = split_place(name)
    found = [d for d in DEPARTMENTS if rest == (d.prefecture if level == "prefecture" else d.county)]
    assert len(found) == 1, f"{name}: no {level} department is called {rest}"
    return found[0]


def unit_kind(unit: dict[str, str], units: dict[str, dict[str, str]]) -> str:
    """'@key' for a department, else the unit type its name ends with (after place and township)."""
    if not unit["supervisor_code"]:
        return "@" + department_of(unit["unit_name"]).key
    dept = department_of(units[unit["supervisor_code"]]["unit_name"])
    level, _, rest = split_place(unit["unit_name"])
    if level == "prefecture":
        assert rest in dept.units, f"{unit['unit_name']}: 州{dept.prefecture} supervises no {rest}"
        return rest
    if rest in dept.county_units:
        return rest
    town = TOWN.match(rest)
    assert town and town[2] in dept.township, f"{unit['unit_name']}: 县{dept.county} supervises no {rest}"
    return town[2]


def bare_name(project: dict[str, str], units: dict[str, dict[str, str]]) -> str:
    """The project's name without the year, the place and the phase some carry."""
    name = project["project_name"].removeprefix(f"{YEAR}年")
    _, place, _ = split_place(units[project["unit_code"]]["unit_name"])
    return re.sub(r"（[^（）]+期）$", "", name.removeprefix(place) if place != "州" else name)


def archetype_of(project: dict[str, str], units: dict[str, dict[str, str]]) -> Archetype:
    name = bare_name(project, units)
    assert name in BY_NAME, f"{project['project_code']}: {project['project_name']} is no archetype"
    return BY_NAME[name]


def lines_of(archetype: Archetype) -> set[tuple[str, str, str, str]]:
    """(二级, 三级, direction, measure unit) of every indicator the archetype declares."""
    lines = [x for line in archetype.indicators for x in (BLOCKS[line[1:]] if line[0] == "+" else (line,))]
    lines += BLOCKS["all"]  # every project may say 资金使用合规率 and 长效管理机制
    return {tuple(line.split("|")[:4]) for line in lines}  # type: ignore[misc]


def test_the_table_declares_each_unit_type_once_per_level_and_something_for_it_to_run() -> None:
    for level in ("units", "county_units", "township"):
        types = Counter(t for d in DEPARTMENTS for t in getattr(d, level))
        assert [t for t, n in types.items() if n > 1] == [], level
    runners = {r for a in ARCHETYPES for r in a.runners}
    kinds = {"@" + d.key for d in DEPARTMENTS} | {t for d in DEPARTMENTS for t in d.units + d.county_units}
    kinds |= {t for d in DEPARTMENTS for t in d.township}
    assert runners - kinds == {"*"}  # every runner is a declared kind ("*": any unit)
    assert sorted(kinds - runners) == []  # every kind of unit runs an archetype of its own
    assert len(BY_NAME) == len(ARCHETYPES)
    assert all(line[1:] in BLOCKS for a in ARCHETYPES for line in a.indicators if line[0] == "+")


def test_every_department_exists_at_its_level(rows: Rows) -> None:
    departments = [u for u in rows["units"] if not u["supervisor_code"]]
    levels = Counter(split_place(u["unit_name"])[0] for u in departments)
    assert levels["prefecture"] >= 35 and levels["county"] > 0  # the prefecture's departments, and counties'
    for unit in departments:
        department_of(unit["unit_name"])


def test_every_unit_is_at_its_departments_level_and_of_a_kind_it_supervises(rows: Rows) -> None:
    units = {u["unit_code"]: u for u in rows["units"]}
    for unit in units.values():
        unit_kind(unit, units)  # asserts the kind
        if unit["supervisor_code"]:
            dept_place = split_place(units[unit["supervisor_code"]]["unit_name"])[1]
            assert split_place(unit["unit_name"])[1] == dept_place, unit["unit_name"]
    names = Counter(u["unit_name"] for u in units.values())
    assert [n for n, k in names.items() if k > 1] == []


def test_every_project_is_an_archetype_its_unit_runs_with_the_archetypes_profile(rows: Rows) -> None:
    units = {u["unit_code"]: u for u in rows["units"]}
    used: Counter[str] = Counter()
    for project in rows["projects"]:
        archetype = archetype_of(project, units)
        kind = unit_kind(units[project["unit_code"]], units)
        assert kind in archetype.runners or "*" in archetype.runners, (project["project_name"], kind)
        assert project["profile"] in ("", archetype.profile), project
        assert project["category"] == archetype.category, project
        used[archetype.name] += 1
    assert len(used) >= 0.8 * len(ARCHETYPES)  # the whole table shows, not a few favourites


def test_every_indicator_belongs_to_its_projects_archetype_with_its_measure_unit(rows: Rows) -> None:
    units = {u["unit_code"]: u for u in rows["units"]}
    declared = {p["project_code"]: lines_of(archetype_of(p, units)) for p in rows["projects"]}
    for ind in rows["indicators"]:
        line = (ind["level2"], ind["name"], ind["direction"], ind["measure_unit"])
        assert line in declared[ind["project_code"]], ind


def test_lump_payments_are_paid_in_one_go(rows: Rows) -> None:
    """耕地地力保护补贴 and the like: a project on schedule in May has paid (nearly) all of it."""
    lumps = {a.name for a in ARCHETYPES if a.spending == "lump"}
    units = {u["unit_code"]: u for u in rows["units"]}
    budget = {p["project_code"]: Fraction(p["budget"]) for p in rows["projects"]
              if archetype_of(p, units).name in lumps}  # fmt: skip
    shares = [Fraction(r["executed"]) / budget[r["project_code"]] for r in rows["project_reports"]
              if r["checkpoint"] == f"{YEAR}-05" and r["project_code"] in budget]  # fmt: skip
    on_schedule = [s for s in shares if s >= Fraction(1, 3)]
    assert on_schedule and all(s >= Fraction(9, 10) for s in on_schedule)


# The mistakes a bureau leader spotted in the old sample (issue 18), written out by hand.


def test_no_intermediate_court_below_the_prefecture(rows: Rows) -> None:
    courts = [u["unit_name"] for u in rows["units"] if "法院" in u["unit_name"]]
    assert courts
    assert all(split_place(n)[0] == "prefecture" for n in courts if "中级人民法院" in n), courts
    assert all(n.startswith("州") for n in courts if "中级人民法院" in n)


def test_farmland_subsidy_is_not_measured_by_immunisation_or_per_visit_costs(rows: Rows) -> None:
    farmland = {p["project_code"] for p in rows["projects"] if "耕地地力保护补贴" in p["project_name"]}
    assert farmland
    indicators = [i for i in rows["indicators"] if i["project_code"] in farmland]
    assert not [i for i in indicators if i["name"] == "群体免疫密度" or i["measure_unit"] == "元/人次"]


def test_publicity_is_not_measured_in_volumes_of_digitised_archives(rows: Rows) -> None:
    publicity = {p["project_code"] for p in rows["projects"] if "宣传" in p["project_name"]}
    assert publicity
    indicators = [i for i in rows["indicators"] if i["project_code"] in publicity]
    assert not [i for i in indicators if "档案" in i["name"] or i["measure_unit"] == "卷"]


def test_a_glory_home_does_not_run_minimum_living_allowances(rows: Rows) -> None:
    homes = {u["unit_code"] for u in rows["units"] if u["unit_name"].endswith("光荣院")}
    assert homes
    assert not [
        p for p in rows["projects"] if p["unit_code"] in homes and "最低生活保障" in p["project_name"]
    ]


def test_the_womens_federation_supervises_no_home_for_the_elderly(rows: Rows) -> None:
    units = {u["unit_code"]: u for u in rows["units"]}
    wrong = [
        u["unit_name"]
        for u in units.values()
        if u["supervisor_code"]
        and "妇女联合会" in units[u["supervisor_code"]]["unit_name"]
        and re.search("养老|养护|敬老|福利|救助|学校|医院", u["unit_name"])
    ]
    assert any("妇女联合会" in u["unit_name"] for u in units.values())
    assert wrong == []


def test_a_unit_never_runs_two_projects_of_the_same_name(rows: Rows) -> None:
    """A unit that runs the same work again runs a later phase (小型水库维修养护（二期）); and no
    小型水库维修养护 beside 2025年小型水库维修养护 either."""
    units = {u["unit_code"]: u for u in rows["units"]}
    names: dict[str, list[str]] = {}
    for p in rows["projects"]:
        names.setdefault(p["unit_code"], []).append(p["project_name"])
    for code, listed in names.items():
        assert len(set(listed)) == len(listed), (code, sorted(listed))
        bare = [n.removeprefix(f"{YEAR}年") for n in listed if not re.search(r"（[^（）]+期）$", n)]
        assert len(set(bare)) == len(bare), (code, units[code]["unit_name"], sorted(listed))

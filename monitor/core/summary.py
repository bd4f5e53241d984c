"""A checkpoint's results in, the headline figures out: counts and budget amounts by light, the
not-reported projects, and the units with the most red and yellow projects. Pure, so the CLI
summary, the bureau e-mail and the reports all count the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from monitor.core.model import Unit
from monitor.core.rows import ProjectLight, StoredResult, Unreported

LIGHTS = ("green", "yellow", "red")


@dataclass
class UnitTally:
    unit_code: str
    unit_name: str
    red: int = 0
    yellow: int = 0
    green: int = 0
    not_reported: int = 0


@dataclass
class Summary:
    checkpoint: str
    projects: int = 0
    budget: int = 0  # fen, all projects
    count: Counter[str] = field(default_factory=Counter)  # by light, plus "not_reported"
    amount: Counter[str] = field(default_factory=Counter)  # fen, by light, plus "not_reported"
    blue_indicators: int = 0
    units: dict[str, UnitTally] = field(default_factory=dict)

    def add(
        self, light: str | None, budget: int, unit_code: str, unit_name: str, blue_indicators: int = 0
    ) -> None:
        """Count one project (blue counts as green; None is not reported)."""
        self.add_group(light, 1, budget, unit_code, unit_name)
        self.blue_indicators += blue_indicators

    def add_group(self, light: str | None, n: int, amount: int, unit_code: str, unit_name: str) -> None:
        """Count `n` projects of one unit and one light at once (`amount`: their budget, fen)."""
        key = "not_reported" if light is None else ("green" if light == "blue" else light)
        self.projects += n
        self.budget += amount
        self.count[key] += n
        self.amount[key] += amount
        tally = self.units.get(unit_code)
        if tally is None:
            tally = self.units[unit_code] = UnitTally(unit_code, unit_name)
        setattr(tally, key, getattr(tally, key) + n)

    def merge(self, other: Summary) -> Summary:
        """Add `other` (the same checkpoint's other projects) to this one, units kept in code order."""
        self.projects += other.projects
        self.budget += other.budget
        self.count.update(other.count)
        self.amount.update(other.amount)
        self.blue_indicators += other.blue_indicators
        for code, theirs in other.units.items():
            mine = self.units.setdefault(code, UnitTally(code, theirs.unit_name))
            for key in ("red", "yellow", "green", "not_reported"):
                setattr(mine, key, getattr(mine, key) + getattr(theirs, key))
        self.units = dict(sorted(self.units.items()))
        return self

    def run_counts(self) -> dict[str, int]:
        """The counts a run row records."""
        return {
            "projects": self.projects,
            "reported": self.projects - self.count["not_reported"],
            **{k: self.count[k] for k in ("green", "yellow", "red", "not_reported")},
        }

    def worst_units(self, n: int = 10) -> list[UnitTally]:
        """Units with red or yellow projects, most red first, then most yellow."""
        bad = [u for u in self.units.values() if u.red or u.yellow]
        return sorted(bad, key=lambda u: (-u.red, -u.yellow, u.unit_code))[:n]


@dataclass
class BureauFigures:
    """What the bureau summary states about a checkpoint, however it was gathered: from result dicts in
    memory (`of_results`) or with GROUP BY / ORDER BY … LIMIT queries (db.figures.bureau_figures), so a
    national checkpoint never has to be held in memory to be summed up."""

    # (department code, or None when the unit is unknown; project light) → (projects, budget in fen)
    by_department: dict[tuple[str | None, str | None], tuple[int, int]]
    red: list[str]  # the code of every red project
    top_red: list[StoredResult]  # red result rows: at least the n largest budgets, ties included
    not_reported: list[Unreported]  # by unit, then project
    trend: Counter[tuple[str, str]] | None  # (previous light, light) → projects; None: no previous

    def unit_codes(self) -> set[str]:
        """The units the summary names: the departments, the units of the red and unreported projects
        it lists (what to load of a national checkpoint's units, not all of them)."""
        named = {dept for dept, _ in self.by_department if dept is not None}
        return named | {r["unit_code"] for r in self.top_red} | {r["unit_code"] for r in self.not_reported}

    @classmethod
    def of_results(
        cls,
        results: Iterable[StoredResult],
        units: Mapping[str, Unit],
        previous: Mapping[str, str | None] | None,
    ) -> BureauFigures:
        """The figures of result dicts (db.reads.load_results); `previous` None: no trend."""
        results = list(results)
        groups: dict[tuple[str | None, str | None], tuple[int, int]] = {}
        for r in results:
            unit = units.get(r["unit_code"])
            key = (None if unit is None else (unit.supervisor_code or unit.code), r["light"])
            n, fen = groups.get(key, (0, 0))
            groups[key] = (n + 1, fen + r["budget"])
        reds = [r for r in results if r["light"] == "red"]
        return cls(
            groups,
            [r["project_code"] for r in reds],
            reds,
            [r for r in results if r["status"] == "not_reported"],
            None if previous is None else trend_pairs(results, previous),
        )


def trend_pairs(
    results: Iterable[ProjectLight], previous: Mapping[str, str | None]
) -> Counter[tuple[str, str]]:
    """(previous light, light) → number of projects lit at both checkpoints."""
    pairs: Counter[tuple[str, str]] = Counter()
    for r in results:
        before, after = previous.get(r["project_code"]), r["light"]
        if before is not None and after is not None:
            pairs[(before, after)] += 1
    return pairs

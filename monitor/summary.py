"""A checkpoint's results in, the headline figures out: counts and budget amounts by light, the
not-reported projects, and the units with the most red and yellow projects. Pure, so the CLI
summary, the bureau e-mail and the reports all count the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
        key = "not_reported" if light is None else ("green" if light == "blue" else light)
        self.projects += 1
        self.budget += budget
        self.count[key] += 1
        self.amount[key] += budget
        self.blue_indicators += blue_indicators
        tally = self.units.get(unit_code)
        if tally is None:
            tally = self.units[unit_code] = UnitTally(unit_code, unit_name)
        setattr(tally, key, getattr(tally, key) + 1)

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


def summarize(
    checkpoint: str, results: Iterable[Mapping[str, Any]], unit_names: Mapping[str, str]
) -> Summary:
    """Tally results given as the stable result dicts (see store.load_results) or ProjectResult-like rows."""
    s = Summary(checkpoint)
    for r in results:
        blue = sum(1 for i in r.get("indicators", ()) if i["light"] == "blue")
        s.add(r["light"], r["budget"], r["unit_code"], unit_names.get(r["unit_code"], r["unit_code"]), blue)
    return s

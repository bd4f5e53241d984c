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
        light = r["light"] or "not_reported"
        light = "green" if light == "blue" else light
        s.projects += 1
        s.budget += r["budget"]
        s.count[light] += 1
        s.amount[light] += r["budget"]
        s.blue_indicators += sum(1 for i in r.get("indicators", ()) if i["light"] == "blue")
        code = r["unit_code"]
        tally = s.units.get(code)
        if tally is None:
            tally = s.units[code] = UnitTally(code, unit_names.get(code, code))
        setattr(tally, light, getattr(tally, light) + 1)
    return s

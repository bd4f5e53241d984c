"""The checks across rows (the reference checker). In: the records of each kind, a chunk at a time,
parents' kinds first, with where they were found, and the codes already in the database. Out: a
`Problem` for each duplicate key, each reference to a unit, project or indicator that is neither in
the import nor in the database, each execution beyond its budget and each cycle of supervising units;
a warning for a new unit named like one in the database; the counts per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import replace

from monitor.core.cells import cell_text
from monitor.core.model import wan
from monitor.ingest.columns import KINDS
from monitor.ingest.problems import Problem, Source
from monitor.ingest.records import Loose
from monitor.ingest.rows import Record

UNKNOWN_UNIT = "unknown unit: not in this import nor in the database（单位编码不存在）"
UNKNOWN_PROJECT = "unknown project: not in this import nor in the database（项目编码不存在）"
UNKNOWN_INDICATOR = "the project has no such indicator in this import nor in the database（该项目下无此指标）"
_SHIFT = 1 << 64  # budget and carry-over packed into one int: budget * _SHIFT + carry-over (both < 2**60)
Where = Source | str  # a table, or the kind of a batch built elsewhere (records are then numbered)


def _place(where: Where, row: int, column: str, value: object, message: str) -> Problem:
    if isinstance(where, Source):
        return where.problem(row, column, value, message)
    return Problem(f"<{where}>", row, column, cell_text(value), message)


def located_at(where: Where, row: int) -> str:
    return where.where(row) if isinstance(where, Source) else f"<{where}> #{row}"


class _Project:
    """What the checks keep of one project: its budget and indicator codes, from this import and from
    the database (the codes' order gives each indicator a bit, see Checker.indicator_reports)."""

    __slots__ = ("budget", "code", "codes", "db_budget")

    def __init__(self, code: str) -> None:
        self.code = code
        self.budget: int | None = None  # packed with the carry-over (see _SHIFT), if in this import
        self.db_budget: int | None = None
        self.codes: list[str] = []  # indicator codes in this import, then those only in the database

    def known(self) -> bool:
        return self.budget is not None or self.db_budget is not None


class Checker:
    """Checks across rows, a chunk of records at a time, parents' kinds first: duplicate keys,
    references to unknown units, projects and indicators, and execution beyond the budget. It keeps
    keys only (a small object per project, a bit per indicator report), so memory grows with
    projects, not rows.

    A duplicate is found as it comes; where its first occurrence was is asked for at `finish`. The
    problems of references into a kind that could not be read completely are dropped there."""

    def __init__(
        self, out: list[Problem], unreadable: dict[str, set[Hashable]], incomplete: set[str]
    ) -> None:
        self.out, self.unreadable, self.incomplete = out, unreadable, incomplete
        self.units: set[str] = set()
        self.db_units: set[str] = set()
        self.projects: dict[str, _Project] = {}
        self.db_indicators: dict[str, list[str]] = {}  # project -> codes, until the import's are in
        self.reported: dict[str, set[str]] = {}  # checkpoint -> projects reported
        self.indicators_reported: dict[str, dict[str, int]] = {}  # checkpoint -> project -> bits of codes
        self.odd_reports: set[Hashable] = set()  # indicator reports of unknown indicators
        self.refs: list[tuple[tuple[str, ...], Problem]] = []  # (kinds that must be complete, problem)
        self.duplicates: dict[str, list[tuple[int, Hashable]]] = {k: [] for k in KINDS}  # index in out
        self.supervisors: list[tuple[str, Where, int]] = []
        self.unit_rows: dict[str, tuple[str, str | None, Where, int]] = {}  # code -> name, supervisor, place
        self.db_units_info: dict[str, tuple[str, str | None]] = {}  # code -> name, supervisor
        self.warnings: list[str] = []
        self.counts = dict.fromkeys(KINDS, 0)

    @property
    def failed(self) -> bool:
        return bool(self.out or self.refs)

    def know(
        self,
        units: Iterator[str],
        projects: Iterator[tuple[str, int, int]],
        indicators: Iterator[tuple[str, str]],
    ) -> None:
        """Take in the codes already in the database."""
        self.db_units.update(units)
        for code, budget, carryover in projects:
            self._entry(code).db_budget = budget * _SHIFT + carryover
        for project, code in indicators:
            self.db_indicators.setdefault(project, []).append(code)

    def check(self, kind: str, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        """Check `records` of `kind` (given after every record of the kinds before it), found at `rows`
        of `where`."""
        if kind == "indicator_reports":  # the import's indicators are all in
            self._all_indicators_in()
        self.counts[kind] += len(records)
        getattr(self, "_" + kind)(records, rows, where)

    def _all_indicators_in(self) -> None:
        for project, codes in self.db_indicators.items():
            p = self._entry(project)
            p.codes += [c for c in codes if c not in p.codes]
        self.db_indicators = {}

    def check_loose(self, loose: Sequence[Loose]) -> None:
        """The references of rows that failed (given after every readable record): unknown codes are
        problems too, unless what they refer to could not be read."""
        self._all_indicators_in()
        unreadable_projects = self.unreadable["projects"]
        for kind, where, row, refs in loose:
            if kind == "units":
                self.supervisors.append((str(refs["supervisor_code"]), where, row))
            elif kind == "projects":
                unit = str(refs["unit_code"])
                if not self._unit_known(unit):
                    self._unknown(("units",), where, row, "unit_code", unit, UNKNOWN_UNIT)
                continue
            project = refs.get("project_code")
            if not isinstance(project, str) or project in unreadable_projects:
                continue
            p = self.projects.get(project)
            if p is None or not p.known():
                self._unknown(("projects",), where, row, "project_code", project, UNKNOWN_PROJECT)
                continue
            code = refs.get("indicator_code")
            if (
                kind == "indicator_reports"
                and isinstance(code, str)
                and code not in p.codes
                and (project, code) not in self.unreadable["indicators"]
            ):
                self._unknown(("indicators",), where, row, "indicator_code", code, UNKNOWN_INDICATOR)

    def _entry(self, code: str) -> _Project:
        p = self.projects.get(code)
        if p is None:
            p = self.projects[code] = _Project(code)
        return p

    def _duplicate(self, kind: str, key: Hashable, where: Where, row: int, column: str) -> None:
        shown = "/".join(key) if isinstance(key, tuple) else key
        self.duplicates[kind].append((len(self.out), key))
        self.out.append(_place(where, row, column, shown, "duplicate: already given at {}（重复）"))

    def _unknown(
        self, needs: tuple[str, ...], where: Where, row: int, column: str, value: str, message: str
    ) -> None:
        self.refs.append((needs, _place(where, row, column, value, message)))

    def _unit_known(self, code: str) -> bool:
        return code in self.units or code in self.db_units or code in self.unreadable["units"]

    def _units(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        for r, row in zip(records, rows, strict=True):
            if r[0] in self.units:
                self._duplicate("units", r[0], where, row, "unit_code")
            self.units.add(r[0])
            self.unit_rows.setdefault(r[0], (r[1], r[3], where, row))
            if r[3] is not None:  # checked at the end: a supervisor may come later
                self.supervisors.append((r[3], where, row))

    def _projects(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        for r, row in zip(records, rows, strict=True):
            p = self._entry(r[0])
            if p.budget is not None:
                self._duplicate("projects", r[0], where, row, "project_code")
            else:
                p.budget = r[3] * _SHIFT + r[4]
            if not self._unit_known(r[2]):
                self._unknown(("units",), where, row, "unit_code", r[2], UNKNOWN_UNIT)

    def _indicators(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        projects, unreadable = self.projects, self.unreadable["projects"]
        for r, row in zip(records, rows, strict=True):
            p = projects.get(r[0])
            if p is None or not p.known():
                if r[0] not in unreadable:
                    self._unknown(("projects",), where, row, "project_code", r[0], UNKNOWN_PROJECT)
                p = self._entry(r[0])
            codes = p.codes
            if r[1] in codes:
                self._duplicate("indicators", (r[0], r[1]), where, row, "indicator_code")
            else:
                codes.append(r[1])

    def _project_reports(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        for r, row in zip(records, rows, strict=True):
            checkpoint, code, executed = r[0], r[1], r[2]
            p = self.projects.get(code)
            reported = self.reported.setdefault(checkpoint, set())
            if code in reported:
                self._duplicate("project_reports", (checkpoint, code), where, row, "project_code")
            reported.add(p.code if p is not None else code)  # the project's own string: one copy of each
            if p is None or not p.known():
                if code not in self.unreadable["projects"]:
                    self._unknown(("projects",), where, row, "project_code", code, UNKNOWN_PROJECT)
                continue
            budget, carryover = divmod(p.budget if p.budget is not None else p.db_budget or 0, _SHIFT)
            if executed > budget + carryover:
                message = (f"{wan(executed)} 万元 exceeds budget {wan(budget)} + carry-over "
                           f"{wan(carryover)} 万元（执行数超过预算数与上年结转之和）")  # fmt: skip
                self.refs.append(((), _place(where, row, "executed", wan(executed), message)))

    def _indicator_reports(self, records: Sequence[Record], rows: Sequence[int], where: Where) -> None:
        """Each (checkpoint, project, indicator) once: a bit per indicator code of the project."""
        get_project, reported = self.projects.get, self.indicators_reported
        last, bits = None, {}
        for r, row in zip(records, rows, strict=True):
            checkpoint, project, code = r[0], r[1], r[2]
            p = get_project(project)
            if p is None:
                self._odd_report(p, (checkpoint, project, code), where, row)
                continue
            try:
                bit = 1 << p.codes.index(code)
            except ValueError:  # the project has no such indicator
                self._odd_report(p, (checkpoint, project, code), where, row)
                continue
            if checkpoint is not last:
                last, bits = checkpoint, reported.setdefault(checkpoint, {})
            name = p.code  # one string per project, shared
            seen = bits.get(name, 0)
            if seen & bit:
                self._duplicate(
                    "indicator_reports", (checkpoint, project, code), where, row, "indicator_code"
                )
            bits[name] = seen | bit

    def _odd_report(self, p: _Project | None, key: tuple[str, str, str], where: Where, row: int) -> None:
        """A report of an indicator not in the import nor in the database."""
        if key in self.odd_reports:
            self._duplicate("indicator_reports", key, where, row, "indicator_code")
        self.odd_reports.add(key)
        _, project, code = key
        if (project, code) in self.unreadable["indicators"]:
            return
        if (p is None or not p.known()) and project not in self.unreadable["projects"]:
            self._unknown(("indicators", "projects"), where, row, "project_code", project, UNKNOWN_PROJECT)
        else:
            self._unknown(("indicators",), where, row, "indicator_code", code, UNKNOWN_INDICATOR)

    def finish(self, first: Callable[[str, set[Hashable]], dict[Hashable, str]]) -> None:
        """Check the supervisors, say where each duplicated key was first given (`first(kind, keys)`:
        key -> place) and add the reference problems that stand."""
        self.refs[:0] = [
            (("units",), _place(where, row, "supervisor_code", code, UNKNOWN_UNIT))
            for code, where, row in self.supervisors
            if not self._unit_known(code)
        ]
        self.supervisors = []
        self._cycles()
        self._renamed()
        for kind, found in self.duplicates.items():
            if found:
                places = first(kind, {key for _, key in found})
                for i, key in found:
                    self.out[i] = replace(
                        self.out[i], message=self.out[i].message.format(places.get(key, "?"))
                    )
        self.out += [p for needs, p in self.refs if not self.incomplete.intersection(needs)]

    def _cycles(self) -> None:
        """Units whose chain of supervising departments comes back to them: each cycle once, at the first
        of its units in this import."""
        above = {code: sup for code, (_, sup) in self.db_units_info.items()}
        above.update((code, sup) for code, (_, sup, _, _) in self.unit_rows.items())
        settled: set[str] = set()  # units whose chain was followed already
        for code in self.unit_rows:
            chain, at = [code], {code: 0}
            up = above.get(code)
            while up is not None and up not in settled and up not in at:
                at[up] = len(chain)
                chain.append(up)
                up = above.get(up)
            settled.update(chain)
            if up is None or up not in at:
                continue  # the chain ends, or joins one followed before
            cycle = chain[at[up] :]
            first = next((i for i, c in enumerate(cycle) if c in self.unit_rows), None)
            if first is None:
                continue  # a cycle the database held already, this import does not touch
            cycle = cycle[first:] + cycle[:first]
            _, sup, where, row = self.unit_rows[cycle[0]]
            shown = " → ".join([*cycle, cycle[0]])
            message = (
                f"the chain of supervising departments comes back to the unit: {shown}"
                f"（主管部门形成循环：{shown}）"
            )
            self.out.append(_place(where, row, "supervisor_code", sup, message))

    def _renamed(self) -> None:
        """A warning for each unit of this import named like a unit in the database that this import
        does not give: its code may have changed, which makes a second unit of the same name."""
        if not self.db_units_info:
            return
        by_name: dict[str, list[str]] = {}
        for code, (name, _) in self.db_units_info.items():
            if code not in self.unit_rows:
                by_name.setdefault(name, []).append(code)
        for code, (name, _, where, row) in self.unit_rows.items():
            old = by_name.get(name)
            if old and code not in self.db_units_info:
                self.warnings.append(
                    f"{located_at(where, row)}: unit_code: new unit {code!r} has the name {name!r} of unit "
                    f"{', '.join(map(repr, sorted(old)))} already in the database; if its code changed, the "
                    "old unit stays as a second unit of that name（新单位与库中已有单位同名，若为编码变更，"
                    "旧单位仍保留）"
                )

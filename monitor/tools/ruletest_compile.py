"""A rule test file compiled into cases ready for the pure core: the file validated, each case's rule
change merged over the rules in force, its units, projects, indicators and reports parsed as an
import parses them; every problem of the file at once, each with the test file's line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from monitor.config.yamlfile import Document, Invalid, Loc, Problem, dotted, validation_problems
from monitor.core.cells import parse_emails
from monitor.core.dates import parse_checkpoint
from monitor.core.model import (
    Checkpoint,
    Direction,
    Indicator,
    IndicatorReport,
    Inputs,
    Project,
    ProjectReport,
    Unit,
)
from monitor.core.numeric import parse_amount
from monitor.core.values import (
    parse_actual,
    parse_direction,
    parse_fund_flag,
    parse_kind,
    parse_possibility,
    parse_target,
)
from monitor.rules.load import RuleSet, build_rules, load_or_problems
from monitor.tools.ruletest_file import (
    DEFAULT_UNIT,
    Case,
    Expect,
    IndicatorCase,
    ProjectCase,
    TestFile,
    UnitCase,
    Value,
)


@dataclass(frozen=True)
class CaseSpec:
    """One compiled case, ready to evaluate."""

    file: str
    line: int | None
    name: str
    checkpoint: Checkpoint
    rules: RuleSet | None  # None: the rules in force
    inputs: Inputs
    expects: dict[str, Expect]  # by project code


def load_file(
    path: Path, base_docs: Sequence[Document | Invalid], base: RuleSet | None
) -> tuple[list[CaseSpec], list[Problem]]:
    """Parse, validate and compile one test file against the rules in force (`base`, built from
    `base_docs`; None if they are broken); all of its problems at once, each with file:line."""
    doc = load_or_problems(path)
    if isinstance(doc, Invalid):
        return [], list(doc.problems)
    if not isinstance(doc.data, dict):
        return [], [doc.problem((), "a rule test file must be a mapping with `cases`")]
    try:
        parsed = TestFile.model_validate(doc.data)
    except ValidationError as exc:
        return [], validation_problems(exc, doc)
    if not parsed.cases:
        return [], [doc.problem(("cases",), "no cases: give a list of cases")]
    specs, problems = [], []
    for i, data in enumerate(parsed.cases):
        try:
            case = Case.model_validate(data)
        except ValidationError as exc:
            problems += validation_problems(exc, doc, ("cases", i))
            continue
        compiler = _CaseCompiler(doc, ("cases", i), base_docs, base)
        spec = compiler.compile(case, parsed.checkpoint)
        problems += compiler.problems
        if spec is not None:
            specs.append(spec)
    return specs, sorted(problems, key=lambda p: p.line or 0)


def sub_document(doc: Document, prefix: Loc) -> Document:
    """The part of `doc` under `prefix` as a document of its own that keeps the file's line numbers."""
    n = len(prefix)
    data: Any = doc.data
    for key in prefix:
        data = data[key]
    lines = {loc[n:]: line for loc, line in doc.lines.items() if loc[:n] == prefix}
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    return Document(doc.path, text, data, lines)


def case_rules(doc: Document, loc: Loc, base_docs: Sequence[Document | Invalid]) -> RuleSet:
    """The rules in force with the case's `rules:` merged last; problems name the test file's lines."""
    part = sub_document(doc, loc)
    try:
        return build_rules([*base_docs, part])
    except Invalid as exc:
        raise Invalid([_relocate(p, doc, loc) if p.file == doc.name else p for p in exc.problems]) from exc


def _relocate(p: Problem, doc: Document, loc: Loc) -> Problem:
    name = dotted(loc) + ("." + p.field if p.field else "")
    return Problem(p.file, p.line or doc.line_of(loc), name, p.message, p.value, p.has_value)


class _CaseCompiler:
    """Turns one validated case into inputs for the pure core, collecting every problem."""

    def __init__(
        self, doc: Document, loc: Loc, base_docs: Sequence[Document | Invalid], base: RuleSet | None
    ) -> None:
        self.doc, self.loc, self.base_docs = doc, loc, base_docs
        self.profiles = set(base.profiles) if base else None  # None: not checked
        self.problems: list[Problem] = []

    def problem(self, loc: Loc, message: str, value: Any = None, has_value: bool = False) -> None:
        self.problems.append(self.doc.problem((*self.loc, *loc), message, value=value, has_value=has_value))

    def parse(self, loc: Loc, parser: Callable[[Any], Any], value: Any) -> Any:
        try:
            return parser(value)
        except ValueError as exc:
            self.problem(loc, str(exc), value, True)
            return None

    def compile(self, case: Case, file_checkpoint: Value | None) -> CaseSpec | None:
        checkpoint = self.checkpoint(case.checkpoint if case.checkpoint is not None else file_checkpoint)
        rules = None
        if case.rules is not None:
            try:
                rules = case_rules(self.doc, (*self.loc, "rules"), self.base_docs)
                self.profiles = set(rules.profiles)
            except Invalid as exc:
                self.problems += exc.problems
        if not case.projects:
            self.problem(("projects",), "a case needs at least one project")
        units = self.units(case.units or (DEFAULT_UNIT,))
        inputs = Inputs(units, [], {}, {}, {})
        expects: dict[str, Expect] = {}
        cp = str(checkpoint) if checkpoint else ""
        for j, pc in enumerate(case.projects):
            code = self.project(("projects", j), pc, j, inputs, cp)
            if code is not None and pc.expect is not None and not pc.expect.empty():
                expects[code] = pc.expect
        if not expects:
            self.problem((), "the case expects nothing: give `expect` (light, budget, target, indicators …)")
        if checkpoint is None or self.problems:
            return None
        return CaseSpec(
            self.doc.name, self.doc.line_of(self.loc), case.name, checkpoint, rules, inputs, expects
        )

    def known_profile(self, loc: Loc, name: str | None) -> None:
        if name is not None and self.profiles is not None and name not in self.profiles:
            self.problem(loc, "no such seasonal profile in the rules", name, True)

    def checkpoint(self, value: Value | None) -> Checkpoint | None:
        if value is None:
            self.problem(("checkpoint",), "a checkpoint is required (in the case or at the top of the file)")
            return None
        text = self.parse(("checkpoint",), parse_checkpoint, value)
        return Checkpoint.parse(text) if text else None

    def units(self, cases: Sequence[UnitCase]) -> dict[str, Unit]:
        out: dict[str, Unit] = {}
        for k, uc in enumerate(cases):
            code = str(uc.code)
            if code in out:
                self.problem(("units", k, "code"), "duplicate unit code", code, True)
            emails = self.parse(("units", k, "email"), parse_emails, uc.email) or ()
            supervisor = str(uc.supervisor) if uc.supervisor is not None else None
            out[code] = Unit(code, uc.name, emails, supervisor)
        return out

    def project(self, loc: Loc, pc: ProjectCase, j: int, inputs: Inputs, cp: str) -> str | None:
        code = str(pc.code) if pc.code is not None else f"P{j + 1}"
        unit = str(pc.unit) if pc.unit is not None else next(iter(inputs.units))
        if any(p.code == code for p in inputs.projects):
            self.problem((*loc, "code"), "duplicate project code", code, True)
            return None
        if unit not in inputs.units:
            self.problem((*loc, "unit"), "no such unit in this case's `units`", unit, True)
        budget = self.parse((*loc, "budget"), lambda v: parse_amount(v, positive=True), pc.budget)
        carryover = self.parse((*loc, "carryover"), parse_amount, pc.carryover)
        flag = self.parse((*loc, "fund_flag"), parse_fund_flag, pc.fund_flag)
        self.known_profile((*loc, "profile"), pc.profile)
        project = Project(code, pc.name, unit, budget or 1, carryover or 0, flag, pc.category, pc.profile)
        inputs.projects.append(project)
        if pc.executed is not None:
            executed = self.parse((*loc, "executed"), parse_amount, pc.executed)
            inputs.project_reports[code] = ProjectReport(cp, code, executed or 0)
        indicators: list[Indicator] = []
        for k, ic in enumerate(pc.indicators):
            indicators.append(self.indicator((*loc, "indicators", k), ic, k, indicators, inputs, cp))
        inputs.indicators[code] = indicators
        known = {i.code for i in indicators}
        expected = pc.expect.indicators if pc.expect and pc.expect.indicators else {}
        for name in expected:
            if str(name) not in known:
                where = (*loc, "expect", "indicators", name)
                self.problem(where, "no such indicator in this project", name, True)
        return code

    def indicator(
        self, loc: Loc, ic: IndicatorCase, k: int, siblings: list[Indicator], inputs: Inputs, cp: str
    ) -> Indicator:
        """The indicator of project `inputs.projects[-1]`, and its report row if one is given."""
        project = inputs.projects[-1].code
        code = str(ic.code) if ic.code is not None else f"I{k + 1:02d}"
        if any(i.code == code for i in siblings):
            self.problem((*loc, "code"), "duplicate indicator code", code, True)
        direction = self.parse((*loc, "direction"), parse_direction, ic.direction)
        target = self.parse(
            (*loc, "target"), lambda v: parse_target(v, direction, ic.measure_unit), ic.target
        )
        kind = self.parse((*loc, "kind"), parse_kind, ic.kind)
        self.known_profile((*loc, "profile"), ic.profile)
        ind = Indicator(
            project,
            code,
            ic.level1,
            ic.level2,
            ic.name,
            direction or Direction.GE,
            target or "",
            ic.measure_unit,
            kind,
            ic.profile,
        )
        if {"actual", "possibility"} & ic.model_fields_set:
            actual = self.parse((*loc, "actual"), lambda v: parse_actual(v, ic.measure_unit), ic.actual)
            possibility = self.parse((*loc, "possibility"), parse_possibility, ic.possibility)
            inputs.indicator_reports[(project, code)] = IndicatorReport(
                cp, project, code, actual, possibility=possibility
            )
        return ind

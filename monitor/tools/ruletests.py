"""Admin-written rule tests: YAML files of cases (inline units, projects, indicators and reports, an
optional rule change merged over the rules in force, the expected lights and reason fragments) in;
per case PASS, or FAIL with every difference, out. Pure evaluation, no database. `check_tests`
validates the files for `monitor check`, every problem with its file:line (format: README).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

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
    ProjectResult,
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
from monitor.evaluate.core import evaluate
from monitor.rules.load import RuleSet, build_rules, load_or_problems, rule_files
from monitor.rules.policy import Policies
from monitor.rules.schema import Strict

Value = str | int | Decimal | dt.date
ProjectLight = Literal["green", "yellow", "red", "not_reported"]


class UnitCase(Strict):
    code: str | int
    name: str = "测试单位"
    email: str = "unit@example.org"
    supervisor: str | int | None = None  # supervising department (主管部门) unit code


class IndicatorCase(Strict):
    """An indicator and, when `actual` or `possibility` is given (even blank), its report row."""

    code: str | int | None = None  # default I01, I02 … by position
    name: str = "测试指标"
    level1: str = "产出指标"
    level2: str = "数量"
    direction: str = "≥"
    target: Value
    measure_unit: str = ""
    kind: str | None = None  # default: inferred as the rules say
    profile: str | None = None
    actual: Value | None = None
    possibility: str | None = None


class Expect(Strict):
    light: ProjectLight | None = None
    budget: ProjectLight | None = None
    target: Literal["green", "yellow", "red", "na"] | None = None  # na: no measurable indicator
    indicators: dict[str | int, Literal["green", "yellow", "red", "blue", "na"]] | None = None
    reasons: tuple[str, ...] = ()  # fragments, each found in a project or indicator reason

    def empty(self) -> bool:
        return not (self.light or self.budget or self.target or self.indicators or self.reasons)


class ProjectCase(Strict):
    """A project and, when `executed` is given, its execution report (none: not reported)."""

    code: str | int | None = None  # default P1, P2 … by position
    name: str = "测试项目"
    unit: str | int | None = None  # default: the case's first unit
    budget: Value  # 万元
    carryover: Value = 0
    executed: Value | None = None
    fund_flag: str | int | None = None
    category: str | None = None
    profile: str | None = None
    indicators: tuple[IndicatorCase, ...] = ()
    expect: Expect | None = None


class Case(Strict):
    name: str = Field(min_length=1)
    checkpoint: Value | None = None  # default: the file's checkpoint
    rules: dict[str, Any] | None = None  # a rule file's sections, merged over the rules in force
    units: tuple[UnitCase, ...] = ()
    projects: tuple[ProjectCase, ...]


class TestFile(Strict):
    checkpoint: Value | None = None
    cases: list[Any]  # each validated as a Case on its own, so one bad case hides no other problem


DEFAULT_UNIT = UnitCase(code="U1")


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


@dataclass
class Outcome:
    case: CaseSpec
    differences: list[str]

    @property
    def passed(self) -> bool:
        return not self.differences


@dataclass
class FileReport:
    path: str
    problems: list[Problem] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


# --- loading ------------------------------------------------------------------------------------


def default_files(rules_dir: Path) -> list[Path]:
    """The shipped and admin-written test files: rules/tests/*.yaml, in name order."""
    return sorted(p for p in (rules_dir / "tests").glob("*.y*ml") if p.is_file())


def rule_docs(rules_dir: Path) -> list[Document | Invalid]:
    return [load_or_problems(p) for p in rule_files(rules_dir)]


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


# --- running --------------------------------------------------------------------------------------


def run_case(spec: CaseSpec, base: Policies) -> Outcome:
    """Evaluate the case's projects with the pure core and compare with what it expects."""
    policies = Policies(spec.rules) if spec.rules is not None else base
    results = {r.project_code: r for r in evaluate(policies, spec.checkpoint, spec.inputs)}
    out: list[str] = []
    for code, expect in spec.expects.items():
        out += differences(code, expect, results[code])
    return Outcome(spec, out)


def differences(code: str, expect: Expect, r: ProjectResult) -> list[str]:
    """Every way `r` differs from `expect`, in words; then the reasons, to see why."""
    got = {
        "light": r.light.value if r.light else "not_reported",
        "budget": r.budget_light.value if r.budget_light else "not_reported",
        "target": r.target_light.value if r.target_light else "na",
    }
    out = [
        f"{code} {name}: expected {want}, got {got[key]}"
        for key, name, want in (
            ("light", "project light", expect.light),
            ("budget", "budget light", expect.budget),
            ("target", "target light", expect.target),
        )
        if want is not None and want != got[key]
    ]
    lights = {i.indicator_code: i.light.value for i in r.indicators}
    for ind, want in (expect.indicators or {}).items():
        if lights.get(str(ind)) != want:
            out.append(f"{code} indicator {ind} light: expected {want}, got {lights.get(str(ind))}")
    reasons = [*r.reasons, *(f"{i.name}：{i.reason}" for i in r.indicators)]
    for fragment in expect.reasons:
        if not any(fragment in text for text in reasons):
            out.append(f"{code} reasons: none contains “{fragment}”")
    if out:
        shown = dict.fromkeys(reasons)  # failing indicators are in both lists: show each reason once
        out += [f"{code} reasons were:", *(f"  - {text}" for text in shown)]
    return out


def run_files(paths: Sequence[Path], rules_dir: Path) -> list[FileReport]:
    """Run every case of every file against the rules in force (raises Invalid if those are broken)."""
    base_docs = rule_docs(rules_dir)
    rules = build_rules(base_docs)
    policies = Policies(rules)
    reports = []
    for path in paths:
        specs, problems = load_file(path, base_docs, rules)
        reports.append(FileReport(str(path), problems, [run_case(s, policies) for s in specs]))
    return reports


def check_tests(rules_dir: Path) -> dict[str, list[Problem]]:
    """For `monitor check`: {test file: problems} for rules/tests/*.yaml (rule changes merged over the
    rules in force when those are valid, so an override naming a shipped profile checks out)."""
    docs = rule_docs(rules_dir)
    try:
        rules: RuleSet | None = build_rules(docs)
    except Invalid:
        docs, rules = [], None
    return {str(p): load_file(p, docs, rules)[1] for p in default_files(rules_dir)}


# --- output ---------------------------------------------------------------------------------------


def report_lines(reports: Sequence[FileReport]) -> list[str]:
    """Test-runner output: each file, each case PASS/FAIL with its differences, then a summary."""
    lines = []
    for rep in reports:
        lines.append(rep.path)
        lines += [f"  ERROR {p}" for p in rep.problems]
        for o in rep.outcomes:
            where = f"{Path(o.case.file).name}:{o.case.line}"
            lines.append(f"  {'PASS' if o.passed else 'FAIL'}  {where}  {o.case.name}")
            lines += [f"        {d}" for d in o.differences]
    lines.append(summary(reports))
    return lines


def summary(reports: Sequence[FileReport]) -> str:
    outcomes = [o for r in reports for o in r.outcomes]
    failed = sum(not o.passed for o in outcomes)
    errors = sum(len(r.problems) for r in reports)
    text = f"{len(outcomes) - failed} passed, {failed} failed"
    if errors:
        text += f", {errors} error(s) in the test files"
    return text + f" ({len(reports)} file(s))"


def all_passed(reports: Sequence[FileReport]) -> bool:
    return all(not r.problems and all(o.passed for o in r.outcomes) for r in reports)

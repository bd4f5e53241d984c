"""Admin-written rule tests: YAML files of cases (inline units, projects, indicators and reports, an
optional rule change merged over the rules in force, the expected lights and reason fragments) in;
per case PASS, or FAIL with every difference, out. Pure evaluation, no database. `check_tests`
validates the files for `monitor check`, every problem with its file:line (format: README). The
file's models are in ruletest_file.py, compiling a file into cases in ruletest_compile.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.config.yamlfile import Document, Invalid, Problem
from monitor.core.model import ProjectResult
from monitor.evaluate.core import evaluate
from monitor.rules.load import RuleSet, build_rules, load_or_problems, rule_files
from monitor.rules.policy import Policies
from monitor.tools.ruletest_compile import CaseSpec, load_file
from monitor.tools.ruletest_file import Expect


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


def default_files(rules_dir: Path) -> list[Path]:
    """The shipped and admin-written test files: rules/tests/*.yaml, in name order."""
    return sorted(p for p in (rules_dir / "tests").glob("*.y*ml") if p.is_file())


def rule_docs(rules_dir: Path) -> list[Document | Invalid]:
    return [load_or_problems(p) for p in rule_files(rules_dir)]


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

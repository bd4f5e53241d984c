"""The light a unit's numbers would get, shown live on its reporting page as it types: the fields of
one project parsed by the import's own parsers and judged by the pure core under the rules in force,
exactly as the checkpoint run will judge them ("按当前填报，本项目……将为红灯"). Nothing is stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.core.model import Checkpoint, IndicatorReport, ProjectReport, Unit
from monitor.core.numeric import parse_amount
from monitor.core.values import parse_actual, parse_possibility
from monitor.evaluate.core import evaluate_project
from monitor.ingest.reporting import ProjectForm, chinese, key
from monitor.rules.policy import Policies


@dataclass(frozen=True)
class Prospect:
    light: str | None  # green / yellow / red; None: not enough typed yet, or a value that does not parse
    words: str  # the sentence shown beside the project
    reasons: tuple[str, ...]


def prospect(policies: Policies, checkpoint: Checkpoint, form: ProjectForm, unit: Unit | None) -> Prospect:
    """The light `form`'s values (as typed) would get at `checkpoint`."""
    code, v = form.project.code, form.values
    if not v.get(key(code, "executed"), "").strip():
        return Prospect(None, f"填写1-{checkpoint.month}月执行数后显示本项目的预警灯", ())
    try:
        executed = parse_amount(v[key(code, "executed")].strip())
    except ValueError as exc:
        return Prospect(None, f"1-{checkpoint.month}月执行数：{chinese(str(exc))}，暂无法计算预警灯", ())
    reports: dict[tuple[str, str], IndicatorReport] = {}
    for ind in form.indicators:
        try:
            actual = parse_actual(v.get(key(code, "actual", ind.code)) or None, ind.measure_unit)
            possibility = parse_possibility(v.get(key(code, "possibility", ind.code)) or "")
        except ValueError as exc:
            return Prospect(None, f"{ind.name}：{chinese(str(exc))}，暂无法计算预警灯", ())
        if actual is not None or possibility is not None:
            reports[code, ind.code] = IndicatorReport(
                str(checkpoint), code, ind.code, actual, None, possibility
            )
    report = ProjectReport(str(checkpoint), code, executed)
    result = evaluate_project(policies, checkpoint, form.project, unit, form.indicators, report, reports)
    light = result.light.value if result.light else None
    word = result.light.chinese if result.light else ""
    return Prospect(light, f"按当前填报，本项目将为{word}灯", result.reasons)


def prospects(
    policies: Policies, checkpoint: Checkpoint, forms: list[ProjectForm], units: Mapping[str, Unit]
) -> dict[str, Prospect]:
    return {f.project.code: prospect(policies, checkpoint, f, units.get(f.project.unit_code)) for f in forms}

"""Rule files in, one validated RuleSet out: `rules/*.yaml` merged in file-name order (later files
override scalars, add profiles and append overrides), every value checked with its `file:line`, and
a content hash that identifies the exact rules a run used. Compilation for evaluation is in policy.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.config.yamlfile import Document, Invalid, Loc, Problem, load_yaml, places, validation_problems

_M = TypeVar("_M", bound=BaseModel)
# Every number in a rule file is finite and within its documented range (README, "How colours are
# decided"), with few enough decimal places that exact arithmetic on it stays cheap.
THRESHOLD_MAX = Decimal(10)  # r thresholds are ratios to time progress: 10 is ten times the schedule
AMOUNT_MAX = Decimal(100_000_000)  # 万元: a budget bound beyond 1万亿元 is a typo
Share = Annotated[Decimal, places(12)]  # profile shares: 0..1 is checked by profile_problems
Threshold = Annotated[Decimal, Field(ge=0, le=THRESHOLD_MAX), places(12)]
Amount = Annotated[Decimal, Field(ge=0, le=AMOUNT_MAX), places(6)]  # 万元, to the fen


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def order_problems(doc: Document, loc: Loc, values: list[tuple[str, Decimal | None]]) -> list[Problem]:
    """Thresholds must not decrease (red_below ≤ yellow_below ≤ blue_from); blames the later one."""
    present = [(n, v) for n, v in values if v is not None]
    out = []
    for (n1, v1), (n2, v2) in pairwise(present):
        assert v1 is not None and v2 is not None
        if v1 > v2:
            out.append(
                doc.problem(
                    (*loc, n2),
                    f"thresholds out of order: must not be below {n1} ({v1})",
                    value=v2,
                    has_value=True,
                )
            )
    return out


def profile_problems(doc: Document, name: str, shares: tuple[Decimal, ...]) -> list[Problem]:
    """A profile is 12 cumulative month-end shares between 0 and 1, non-decreasing, ending at 1."""
    loc: Loc = ("profiles", name)
    if len(shares) != 12:
        return [
            doc.problem(
                loc, "a profile needs 12 monthly cumulative shares", value=len(shares), has_value=True
            )
        ]
    out = []
    for i, v in enumerate(shares):
        if not 0 <= v <= 1:
            out.append(
                doc.problem(
                    (*loc, i), f"month {i + 1}: a share must lie between 0 and 1", value=v, has_value=True
                )
            )
        elif i and v < shares[i - 1]:
            out.append(
                doc.problem((*loc, i), f"month {i + 1}: shares must not decrease", value=v, has_value=True)
            )
    if shares[-1] != 1:
        out.append(doc.problem((*loc, 11), "the December share must be 1", value=shares[-1], has_value=True))
    return out


def _sub(data: Any, *keys: str | int) -> Any:
    for k in keys:
        if isinstance(data, dict) and isinstance(k, str):
            data = data.get(k)
        elif isinstance(data, list) and isinstance(k, int) and k < len(data):
            data = data[k]
        else:
            return None
    return data


def _valid(model: type[_M], data: Any) -> _M | None:
    try:
        return model.model_validate(data) if isinstance(data, dict) else None
    except ValidationError:
        return None


def file_problems(doc: Document) -> list[Problem]:
    """Checks across fields, run on every section that is well-typed even when others are not, so a
    file's errors all come out at once: threshold order and profile shape, each at its own line."""
    out: list[Problem] = []
    data = doc.data if isinstance(doc.data, dict) else {}
    sections: list[Loc] = [("budget",), ("indicators", "cumulative")]
    overrides = data.get("overrides")
    for i in range(len(overrides) if isinstance(overrides, list) else 0):
        sections += [("overrides", i, "budget"), ("overrides", i, "indicators", "cumulative")]
    for loc in sections:
        section = _valid(CumulativePatch if loc[-1] == "cumulative" else BudgetPatch, _sub(data, *loc))
        if section is not None:
            names = ["red_below", "yellow_below", "blue_from"]
            out += order_problems(doc, loc, [(n, getattr(section, n, None)) for n in names])
    profiles = data.get("profiles")
    for name, shares in profiles.items() if isinstance(profiles, dict) else []:
        if isinstance(shares, list) and all(
            isinstance(v, Decimal | int) and not isinstance(v, bool) for v in shares
        ):
            out += profile_problems(doc, str(name), tuple(Decimal(v) for v in shares))
    return out


class BudgetPatch(Strict):
    """Budget execution light: r = (executed / base) / P; r < red_below → red, < yellow_below → yellow."""

    base: Literal["budget", "budget_plus_carryover"] | None = None
    red_below: Threshold | None = None
    yellow_below: Threshold | None = None


class CumulativePatch(Strict):
    """Cumulative indicators: r = actual / (target × P); red / yellow below, blue from."""

    red_below: Threshold | None = None
    yellow_below: Threshold | None = None
    blue_from: Threshold | None = None


class LevelPatch(Strict):
    """Level indicators: met → green; missed by at most `tolerance` of the target → yellow; else red."""

    tolerance: Annotated[Decimal, places(12)] | None = Field(default=None, ge=0, lt=1)


class QualitativePatch(Strict):
    green: tuple[str, ...] | None = None
    yellow: tuple[str, ...] | None = None
    red: tuple[str, ...] | None = None


class IndicatorPatch(Strict):
    cumulative: CumulativePatch | None = None
    level: LevelPatch | None = None
    qualitative: QualitativePatch | None = None
    impossible: tuple[str, ...] | None = None  # 完成目标可能性 values that force red


class TimeProgressPatch(Strict):
    mode: Literal["month", "day"] | None = None


class Match(Strict):
    """What an override applies to: every named criterion must match (lists mean any of)."""

    fund_flag: tuple[str, ...] | None = None
    unit: tuple[str, ...] | None = None
    department: tuple[str, ...] | None = None  # supervising department (主管部门) unit code
    project: tuple[str, ...] | None = None
    category: tuple[str, ...] | None = None
    level2: tuple[str, ...] | None = None  # indicator 二级 (only indicator settings may then be set)
    budget_min: Amount | None = None  # 万元, inclusive
    budget_max: Amount | None = None  # 万元, exclusive

    @field_validator("fund_flag", "unit", "department", "project", "category", "level2", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, str | int):
            return (str(v),)
        if isinstance(v, list):
            return tuple(str(x) for x in v)
        return v

    def criteria(self) -> list[str]:
        return [k for k, v in self.model_dump().items() if v is not None]


class Override(Strict):
    name: str = Field(min_length=1)
    match: Match
    budget: BudgetPatch | None = None
    indicators: IndicatorPatch | None = None
    combine: Literal["worst", "matrix"] | None = None
    profile: str | None = None  # seasonal profile for the matched projects (or indicators)

    @field_validator("match")
    @classmethod
    def _match_names_something(cls, m: Match) -> Match:
        if not m.criteria():
            raise ValueError(
                "override matches nothing: name at least one of " + ", ".join(Match.model_fields)
            )
        return m

    @model_validator(mode="after")
    def _names_something(self) -> Override:
        if self.budget is None and self.indicators is None and self.combine is None and self.profile is None:
            raise ValueError("override changes nothing: set budget, indicators, combine or profile")
        if self.match.level2 is not None and (self.budget is not None or self.combine is not None):
            raise ValueError(
                "an override matching level2 applies to indicators: it cannot set budget or combine"
            )
        return self


class RuleFile(Strict):
    """One file under rules/: every section optional, merged with the others."""

    time_progress: TimeProgressPatch | None = None
    budget: BudgetPatch | None = None
    indicators: IndicatorPatch | None = None
    combine: Literal["worst", "matrix"] | None = None
    profiles: dict[str, tuple[Share, ...]] | None = None
    profile_names: dict[str, str] | None = None  # profile -> the words units read (季节曲线“…”)
    overrides: tuple[Override, ...] | None = None


class OverrideSource(Strict):
    override: Override
    file: str
    line: int | None

    @property
    def where(self) -> str:
        return f"{Path(self.file).name}:{self.line}" if self.line else Path(self.file).name

    @property
    def origin(self) -> Origin:
        """Where a value this override sets comes from."""
        return Origin(file=Path(self.file).name, line=self.line, override=self.override.name)


class Origin(Strict):
    """Where a rule value in force was set: a rule file's line, or an override (its name, file and
    line), or nowhere (the built-in default). The one record of provenance: reasons name it in
    Chinese (`words`), `monitor explain` as `file:line` (str)."""

    file: str = ""  # the rule file's name; "" for the built-in default
    line: int | None = None
    override: str | None = None  # the override's name, when an override set the value

    def _where(self, line: str) -> str:
        return f"{self.file}{line.format(self.line)}" if self.line else self.file

    def __str__(self) -> str:
        if self.override is not None:
            return f"覆盖规则“{self.override}”（{self._where(':{}')}）"
        return self._where(":{}") or BUILT_IN

    @property
    def words(self) -> str:
        """As a reason names it: `规则文件 local.yaml 第12行`, `覆盖规则“名称”（local.yaml 第3行）`."""
        if self.override is not None:
            return f"覆盖规则“{self.override}”（{self._where(' 第{}行')}）"
        return f"规则文件 {self._where(' 第{}行')}" if self.file else "内置默认规则"


BUILT_IN = "built-in default"
# RuleSet field -> where it is written in a rule file.
FIELD_PATHS: dict[str, Loc] = {
    "time_progress_mode": ("time_progress", "mode"),
    "budget_base": ("budget", "base"),
    "budget_red_below": ("budget", "red_below"),
    "budget_yellow_below": ("budget", "yellow_below"),
    "cumulative_red_below": ("indicators", "cumulative", "red_below"),
    "cumulative_yellow_below": ("indicators", "cumulative", "yellow_below"),
    "cumulative_blue_from": ("indicators", "cumulative", "blue_from"),
    "level_tolerance": ("indicators", "level", "tolerance"),
    "qualitative_green": ("indicators", "qualitative", "green"),
    "qualitative_yellow": ("indicators", "qualitative", "yellow"),
    "qualitative_red": ("indicators", "qualitative", "red"),
    "impossible": ("indicators", "impossible"),
    "combine": ("combine",),
}


class RuleSet(Strict):
    """The merged, validated rules in force (defaults of domain.md §4 where a file is silent)."""

    time_progress_mode: Literal["month", "day"] = "month"
    budget_base: Literal["budget", "budget_plus_carryover"] = "budget"
    budget_red_below: Decimal = Decimal("0.60")
    budget_yellow_below: Decimal = Decimal("0.80")
    cumulative_red_below: Decimal = Decimal("0.60")
    cumulative_yellow_below: Decimal = Decimal("0.80")
    cumulative_blue_from: Decimal = Decimal("1.20")
    level_tolerance: Decimal = Decimal("0.05")
    qualitative_green: tuple[str, ...] = ("达成目标",)
    qualitative_yellow: tuple[str, ...] = ("部分达成目标并具有一定效果",)
    qualitative_red: tuple[str, ...] = ("未达成目标且效果较差",)
    impossible: tuple[str, ...] = ("完全不可能",)
    combine: Literal["worst", "matrix"] = "worst"
    profiles: dict[str, tuple[Share, ...]] = Field(default_factory=dict)
    profile_names: dict[str, str] = Field(default_factory=dict)
    overrides: tuple[OverrideSource, ...] = ()
    origins: dict[str, Origin] = Field(default_factory=dict)  # field -> the file line that set it
    hash: str = ""
    content: str = ""  # JSON {file name: text} of the files this set was built from

    def origin(self, name: str) -> Origin:
        """Where the value of field `name` in force was set (the built-in default if no file did)."""
        return self.origins.get(name) or Origin()


BUDGET_FIELDS = {
    "base": "budget_base",
    "red_below": "budget_red_below",
    "yellow_below": "budget_yellow_below",
}
CUMULATIVE_FIELDS = {
    "red_below": "cumulative_red_below",
    "yellow_below": "cumulative_yellow_below",
    "blue_from": "cumulative_blue_from",
}


def patch_fields(
    budget: BudgetPatch | None, indicators: IndicatorPatch | None, combine: str | None
) -> dict[str, Any]:
    """The flat RuleSet fields a (partial) section sets: shared by file merging and overrides."""
    out: dict[str, Any] = {}
    if budget:
        out.update({BUDGET_FIELDS[k]: v for k, v in budget.model_dump(exclude_none=True).items()})
    if indicators:
        if indicators.cumulative:
            dumped = indicators.cumulative.model_dump(exclude_none=True)
            out.update({CUMULATIVE_FIELDS[k]: v for k, v in dumped.items()})
        if indicators.level and indicators.level.tolerance is not None:
            out["level_tolerance"] = indicators.level.tolerance
        if indicators.qualitative:
            for k, v in indicators.qualitative.model_dump(exclude_none=True).items():
                out[f"qualitative_{k}"] = tuple(v)
        if indicators.impossible is not None:
            out["impossible"] = indicators.impossible
    if combine:
        out["combine"] = combine
    return out


def rule_files(rules_dir: Path) -> list[Path]:
    """The rule files of a folder, in the order they are merged (sub-folders such as tests/ are not rules)."""
    return sorted(p for p in rules_dir.glob("*.y*ml") if p.is_file())


def load_rules(rules_dir: Path) -> RuleSet:
    """Load, validate and merge every rule file; raises Invalid listing all problems of all files."""
    files = rule_files(rules_dir)
    if not files:
        raise Invalid([Problem(str(rules_dir), None, "", "no rule files (*.yaml) in this folder")])
    return build_rules([load_or_problems(p) for p in files])


def load_or_problems(path: Path) -> Document | Invalid:
    try:
        return load_yaml(path)
    except Invalid as exc:
        return exc


@dataclass
class _Merge:
    """The rule files merged so far (later files override earlier ones field by field), with every
    problem found on the way."""

    problems: list[Problem] = field(default_factory=list)
    merged: dict[str, Any] = field(default_factory=dict)
    overrides: list[OverrideSource] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)
    profile_origin: dict[str, str] = field(default_factory=dict)  # profile -> "file:line" defining it
    named_in: dict[str, tuple[Document, list[str]]] = field(default_factory=dict)  # profile_names


def build_rules(docs: list[Document | Invalid]) -> RuleSet:
    """The RuleSet of the parsed rule files, merged in order; Invalid listing every problem (per file,
    across files, and of the merged thresholds). Its hash is that of the files' texts."""
    m = _Merge()
    for doc in docs:
        if isinstance(doc, Invalid):
            m.problems.extend(doc.problems)
        elif (part := _valid_part(doc, m.problems)) is not None:
            _merge_file(m, doc, part)
    _check_profile_names(m)
    rs = _merged_ruleset(m, docs)
    if m.problems or rs is None:
        raise Invalid(m.problems)
    texts = {Path(d.name).name: d.text for d in docs if isinstance(d, Document)}
    content = json.dumps(texts, ensure_ascii=False, sort_keys=True)
    return rs.model_copy(update={"hash": hashlib.sha256(content.encode()).hexdigest(), "content": content})


def _valid_part(doc: Document, problems: list[Problem]) -> RuleFile | None:
    """The file validated, or None with its problems added to `problems`."""
    if doc.data is not None and not isinstance(doc.data, dict):
        problems.append(doc.problem((), "a rule file must be a mapping of sections"))
        return None
    found = file_problems(doc)
    try:
        part = RuleFile.model_validate(doc.data or {})
    except ValidationError as exc:
        problems.extend(validation_problems(exc, doc) + found)
        return None
    if found:
        problems.extend(found)
        return None
    return part


def _merge_file(m: _Merge, doc: Document, part: RuleFile) -> None:
    """Merge one valid file into `m`: its fields (remembering where each came from), profiles (each
    defined once), profile names and overrides."""
    fields = patch_fields(part.budget, part.indicators, part.combine)
    if part.time_progress and part.time_progress.mode:
        fields["time_progress_mode"] = part.time_progress.mode
    m.merged.update(fields)
    file_name = Path(doc.name).name
    m.origins.update({f: Origin(file=file_name, line=doc.line_of(FIELD_PATHS[f])) for f in fields})
    for name, shares in (part.profiles or {}).items():
        if name in m.profile_origin:
            m.problems.append(
                doc.problem(
                    ("profiles", name),
                    f"profile already defined in {m.profile_origin[name]}",
                    value=name,
                    has_value=True,
                )
            )
        m.profile_origin[name] = f"{doc.name}:{doc.line_of(('profiles', name))}"
        m.merged.setdefault("profiles", {})[name] = shares
    m.merged.setdefault("profile_names", {}).update(part.profile_names or {})
    m.named_in[doc.name] = (doc, list(part.profile_names or {}))
    for i, ov in enumerate(part.overrides or ()):
        m.overrides.append(OverrideSource(override=ov, file=doc.name, line=doc.line_of(("overrides", i))))


def _check_profile_names(m: _Merge) -> None:
    """Cross-file checks: every profile named by an override or given a display name must exist."""
    known = set(m.merged.get("profiles", {}))
    for doc, names in m.named_in.values():
        for name in names:
            if name not in known:
                m.problems.append(
                    doc.problem(("profile_names", name), "no such profile", value=name, has_value=True)
                )
    for src in m.overrides:
        if src.override.profile and src.override.profile not in known:
            m.problems.append(
                Problem(
                    src.file, src.line, "overrides.profile", "unknown profile", src.override.profile, True
                )
            )


def _merged_ruleset(m: _Merge, docs: list[Document | Invalid]) -> RuleSet | None:
    """The RuleSet of the merged fields, or None with the inconsistency added to `m.problems`."""
    try:
        rs = RuleSet(**m.merged, overrides=tuple(m.overrides), origins=m.origins)
        merged_order = [
            (rs.budget_red_below, rs.budget_yellow_below),
            (rs.cumulative_red_below, rs.cumulative_yellow_below),
            (rs.cumulative_yellow_below, rs.cumulative_blue_from),
        ]
        if any(a > b for a, b in merged_order):
            raise ValueError(
                "thresholds out of order once the files are merged (red_below ≤ yellow_below ≤ blue_from)"
            )
    except (ValidationError, ValueError) as exc:
        where = docs[-1].name if docs and isinstance(docs[-1], Document) else "rules"
        m.problems.append(Problem(where, None, "", f"merged rules are inconsistent: {exc}"))
        return None
    return rs


def rules_from_content(content: str) -> RuleSet:
    """Rebuild a RuleSet from the stored content of a rule version (re-evaluate with old rules)."""
    from monitor.config.yamlfile import parse_yaml

    texts: dict[str, str] = json.loads(content)
    return build_rules(
        [_parse_or_problems(Path(name), text, parse_yaml) for name, text in sorted(texts.items())]
    )


def _parse_or_problems(path: Path, text: str, parse: Any) -> Document | Invalid:
    try:
        doc: Document = parse(path, text)
        return doc
    except Invalid as exc:
        return exc

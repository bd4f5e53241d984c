"""Rule files in, one validated RuleSet out: `rules/*.yaml` merged in file-name order (later files
override scalars, add profiles and append overrides), every value checked with its `file:line`, and
a content hash that identifies the exact rules a run used. Owns the records of the rules in force
(RuleSet, Origin, OverrideSource). The file's models are in schema.py, its cross-field checks in
checks.py, the section → field map in fields.py; compilation for evaluation is in policy.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from monitor.config.yamlfile import (
    Document,
    Invalid,
    Problem,
    load_yaml,
    parse_yaml,
    validation_problems,
)
from monitor.rules.checks import file_problems
from monitor.rules.fields import FIELD_PATHS, patch_fields
from monitor.rules.schema import Override, RuleFile, Share, Strict


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

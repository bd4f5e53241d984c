"""Where a rule set comes from: the rules folder in force, a candidate file or folder, or a stored
rule version, each rebuilt with its files so every value keeps its file:line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.config.yamlfile import Document, Invalid, Problem, parse_yaml
from monitor.rules.load import RuleSet, build_rules, load_or_problems, rule_files


@dataclass(frozen=True)
class RuleSource:
    """A rule set with where it came from, and its files (for file:line of every value)."""

    label: str
    rules: RuleSet
    docs: tuple[Document, ...]


def _build(label: str, docs: Sequence[Document | Invalid]) -> RuleSource:
    rules = build_rules(list(docs))  # raises Invalid with every problem
    return RuleSource(label, rules, tuple(d for d in docs if isinstance(d, Document)))


def in_force(rules_dir: Path) -> RuleSource:
    """The rules of the rules folder, as `monitor run` would load them now."""
    files = rule_files(rules_dir)
    if not files:
        raise Invalid([Problem(str(rules_dir), None, "", "no rule files (*.yaml) in this folder")])
    return _build(f"rules in force ({rules_dir})", [load_or_problems(p) for p in files])


def candidate(path: Path, rules_dir: Path) -> RuleSource:
    """Candidate rules: a folder is a whole rule set; a file is merged over the rules folder's files
    (in place of the file of the same path if it is one of them, else last)."""
    if path.is_dir():
        source = in_force(path)
        return RuleSource(f"candidate rules ({path})", source.rules, source.docs)
    if not path.is_file():
        raise Invalid([Problem(str(path), None, "", "no such rule file or folder")])
    files = rule_files(rules_dir)
    same = [p for p in files if p.resolve() == path.resolve()]
    paths = files if same else [*files, path]
    return _build(f"candidate rules ({path} over {rules_dir})", [load_or_problems(p) for p in paths])


def from_content(label: str, content: str) -> RuleSource:
    """A stored rule version (RULE_VERSION.content: {file name: text}) rebuilt with its line numbers."""
    texts: dict[str, str] = json.loads(content)
    docs: list[Document | Invalid] = []
    for name, text in sorted(texts.items()):
        try:
            docs.append(parse_yaml(Path(name), text))
        except Invalid as exc:
            docs.append(exc)
    return _build(label, docs)

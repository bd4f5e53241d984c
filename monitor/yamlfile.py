"""YAML in, plain data plus a line map out: every value remembers the `file:line` it came from, so
config and rule errors can point at the exact line. Floats are read as exact Decimals (0.60 stays
0.60), duplicate keys are errors, and pydantic errors become `file:line: field: message (got VALUE)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Problem:
    """One error in a config or rule file."""

    file: str
    line: int | None
    field: str
    message: str
    value: Any = None
    has_value: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        shown = self.value if isinstance(self.value, Decimal | int | float) else repr(self.value)
        got = f" (got {shown})" if self.has_value else ""
        name = f" {self.field}:" if self.field else ""
        return f"{where}:{name} {self.message}{got}"


class Invalid(Exception):
    """Raised with every problem found, never just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Document:
    """A parsed YAML file: its data and the line of every value (1-based), keyed by path."""

    path: Path
    text: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path)

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while True:
            if loc in self.lines:
                return self.lines[loc]
            if not loc:
                return None
            loc = loc[:-1]

    def problem(self, loc: Loc, message: str, *, value: Any = None, has_value: bool = False) -> Problem:
        return Problem(self.name, self.line_of(loc), dotted(loc), message, value, has_value)


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Builder:
    def __init__(self, doc: Document, loader: yaml.SafeLoader) -> None:
        self.doc = doc
        self.loader = loader
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.doc.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)
                if not isinstance(key, str | int):
                    key = str(key)
                if key in out:
                    line = key_node.start_mark.line + 1
                    self.problems.append(
                        Problem(self.doc.name, line, dotted((*loc, key)), "duplicate key", key, True)
                    )
                out[key] = self.build(value_node, (*loc, key))
                self.doc.lines[(*loc, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == "tag:yaml.org,2002:float" and node.style is None:
            try:
                return Decimal(node.value.replace("_", ""))
            except ArithmeticError:
                pass
        return self.loader.construct_object(node)


def parse_yaml(path: Path, text: str) -> Document:
    """Parse `text` (the content of `path`); raises Invalid with the line of any syntax error."""
    doc = Document(path, text, None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        builder = _Builder(doc, loader)
        doc.data = builder.build(node, ()) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise Invalid([Problem(str(path), line, "", f"YAML syntax error: {exc.problem or exc}")]) from exc
    finally:
        loader.dispose()
    if builder.problems:
        raise Invalid(builder.problems)
    return doc


def load_yaml(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid([Problem(str(path), None, "", f"cannot read file: {exc}")]) from exc
    return parse_yaml(path, text)


def validation_problems(exc: ValidationError, doc: Document, prefix: Loc = ()) -> list[Problem]:
    """Turn every pydantic error into a Problem with the file:line of the offending value."""
    out = []
    for err in exc.errors():
        loc: Loc = (*prefix, *err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
            value, has_value = loc[-1], True
        elif kind == "missing":
            message = "required field is missing"
            value, has_value = None, False
        else:
            message = err["msg"].removeprefix("Value error, ")
            value, has_value = err.get("input"), "input" in err
            if isinstance(value, dict | list):
                has_value = False
        out.append(doc.problem(loc, message, value=value, has_value=has_value))
    return out


def validate_model(model: type[M], doc: Document) -> M:
    """Validate `doc.data` as `model`; raises Invalid listing every error with its line."""
    try:
        return model.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        raise Invalid(validation_problems(exc, doc)) from exc

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
from pydantic import AfterValidator, BaseModel, ValidationError

from monitor.core.errors import BadInput

Loc = tuple[str | int, ...]
SHOWN_MAX = 200  # a bad value is shown up to this many characters
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
        shown = str(self.value) if isinstance(self.value, Decimal | int | float) else repr(self.value)
        if len(shown) > SHOWN_MAX:
            shown = shown[: SHOWN_MAX - 1] + "…"
        got = f" (got {shown})" if self.has_value else ""
        name = f" {self.field}:" if self.field else ""
        return f"{where}:{name} {self.message}{got}"


class Invalid(BadInput):
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


MAX_BYTES = 1024 * 1024  # a rule, rule-test or config file may be at most 1 MiB ...
MAX_DEPTH = 32  # ... nested at most this deep (the deepest real file needs about 8 levels)
_NOT_YET = object()  # a mapping waiting for its next key
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: same events


class _Frame:
    """A mapping or sequence being built; `record` is False inside a complex (non-scalar) key."""

    __slots__ = ("key", "key_line", "loc", "out", "record")

    def __init__(self, out: dict[Any, Any] | list[Any], loc: Loc, record: bool) -> None:
        self.out, self.loc, self.record = out, loc, record
        self.key: Any = _NOT_YET
        self.key_line = 0


class _Builder:
    """Plain data and the line of every value, built from the parser's events without ever composing
    a node graph: an alias (`*name`) is refused where it stands, so a "billion laughs" file cannot
    expand, and nesting deeper than MAX_DEPTH is refused before anything recurses."""

    def __init__(self, doc: Document, loader: Any) -> None:
        self.doc = doc
        self.loader = loader
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.root: Any = None

    def build(self) -> Any:
        documents = 0
        while self.loader.check_event():
            event = self.loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self._stop(line, "", "a file holds one YAML document: remove the second `---`")
            elif isinstance(event, yaml.AliasEvent):
                raise self._stop(
                    line,
                    dotted(self._child_loc()),
                    f"YAML aliases (*{event.anchor}) are not allowed in rule and config files:"
                    " write the value out",
                )
            elif isinstance(event, yaml.ScalarEvent):
                self._place(self._scalar(event, line), line)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(self.stack) >= MAX_DEPTH:
                    raise self._stop(
                        line, dotted(self._child_loc()), f"nested deeper than {MAX_DEPTH} levels"
                    )
                parent = self.stack[-1] if self.stack else None
                as_key = parent is not None and isinstance(parent.out, dict) and parent.key is _NOT_YET
                record = parent is None or (parent.record and not as_key)  # a key: only its text matters
                loc = self._child_loc()
                if record:
                    self.doc.lines[loc] = line
                container: dict[Any, Any] | list[Any] = (
                    {} if isinstance(event, yaml.MappingStartEvent) else []
                )
                self.stack.append(_Frame(container, loc, record))
            elif isinstance(event, yaml.CollectionEndEvent):
                frame = self.stack.pop()
                self._place(frame.out, line, recorded=True)
        return self.root if documents else {}

    def _stop(self, line: int, where: str, message: str) -> Invalid:
        return Invalid([*self.problems, Problem(self.doc.name, line, where, message)])

    def _child_loc(self) -> Loc:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.out, list):
            return (*top.loc, len(top.out))
        return (*top.loc, top.key) if top.key is not _NOT_YET else top.loc

    def _scalar(self, event: Any, line: int) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == "tag:yaml.org,2002:merge":
            raise self._stop(
                line, dotted(self._child_loc()), "YAML merge keys (<<) are not allowed: write the values out"
            )
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        top = self.stack[-1] if self.stack else None
        is_key = top is not None and isinstance(top.out, dict) and top.key is _NOT_YET
        if (
            not is_key and tag == "tag:yaml.org,2002:float" and not event.style
        ):  # plain (libyaml says "", PyYAML None)
            try:
                return Decimal(event.value.replace("_", ""))
            except ArithmeticError:
                pass
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # a constructor refusing the text: 2025-13-45, an int of 5,000 digits
            where = top.loc if is_key and top is not None else self._child_loc()
            self.problems.append(
                Problem(
                    self.doc.name, line, dotted(where), f"cannot read this value: {exc}", event.value, True
                )
            )
            return event.value if is_key else None

    def _place(self, value: Any, line: int, recorded: bool = False) -> None:
        if not self.stack:
            self.root = value
            if not recorded:
                self.doc.lines[()] = line
            return
        top = self.stack[-1]
        if isinstance(top.out, list):
            if top.record and not recorded:
                self.doc.lines[(*top.loc, len(top.out))] = line
            top.out.append(value)
            return
        if top.key is _NOT_YET:
            key = value if isinstance(value, str | int) else str(value)
            if key in top.out and top.record:
                self.problems.append(
                    Problem(self.doc.name, line, dotted((*top.loc, key)), "duplicate key", key, True)
                )
            top.key, top.key_line = key, line
            return
        top.out[top.key] = value
        if top.record:
            self.doc.lines[(*top.loc, top.key)] = top.key_line
        top.key = _NOT_YET


def parse_yaml(path: Path, text: str) -> Document:
    """Parse `text` (the content of `path`); raises Invalid with the line of any syntax error, of an
    alias, of nesting deeper than MAX_DEPTH, of a character YAML refuses, or of a value it cannot read."""
    doc = Document(path, text, None)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise Invalid([too_large(path, size)])
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad:
        message = f"character U+{ord(bad.group()):04X} is not allowed in a YAML file"
        raise Invalid([Problem(str(path), text.count("\n", 0, bad.start()) + 1, "", message)])
    loader = _Loader(text)
    builder = _Builder(doc, loader)
    try:
        doc.data = builder.build()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = Problem(str(path), line, "", f"YAML syntax error: {exc.problem or exc}")
        raise Invalid([*builder.problems, problem]) from exc
    except yaml.YAMLError as exc:
        raise Invalid([*builder.problems, Problem(str(path), None, "", f"YAML error: {exc}")]) from exc
    finally:
        loader.dispose()
    if builder.problems:
        raise Invalid(builder.problems)
    return doc


def too_large(path: Path, size: int) -> Problem:
    return Problem(str(path), None, "", f"file too large: {size} bytes (at most {MAX_BYTES} bytes, 1 MiB)")


def load_yaml(path: Path) -> Document:
    """Read and parse a UTF-8 file of at most MAX_BYTES."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise Invalid([Problem(str(path), None, "", f"cannot read file: {exc}")]) from exc
    if len(data) > MAX_BYTES:
        raise Invalid([too_large(path, path.stat().st_size)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        message = f"not UTF-8 text: byte 0x{byte} cannot be decoded (save the file as UTF-8)"
        raise Invalid([Problem(str(path), line, "", message)]) from exc
    return parse_yaml(path, text)


def places(limit: int) -> AfterValidator:
    """A pydantic validator: a Decimal with at most `limit` decimal places (trailing zeros do not count;
    the value is kept as written, 0.80 stays 0.80). Exact arithmetic on 1e-999999999 would not end."""

    def check(v: Decimal) -> Decimal:
        _, digits, exponent = v.as_tuple()
        if isinstance(exponent, int) and exponent < 0:
            significant = "".join(map(str, digits)).rstrip("0")  # "" for a zero
            if significant and -(exponent + len(digits) - len(significant)) > limit:
                raise ValueError(f"at most {limit} decimal places")
        return v

    return AfterValidator(check)


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

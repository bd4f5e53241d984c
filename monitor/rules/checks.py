"""Checks across the fields of one rule file, run on every section that is well-typed even when
others are not: thresholds in order, profiles of 12 non-decreasing shares ending at 1, each problem at
its own `file:line`.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.config.yamlfile import Document, Loc, Problem
from monitor.rules.schema import BudgetPatch, CumulativePatch

_M = TypeVar("_M", bound=BaseModel)


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

"""docs/architecture.md matches the tree: its table names every package of monitor/ (and the two
top-level modules, app and pipeline) and nothing that does not exist, and the layers of the
import-linter contract in pyproject.toml are the same parts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitor"


def parts_in_the_tree() -> set[str]:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    return packages | modules


def parts_in_the_document() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("## What each package owns", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.M))


def parts_in_the_contract() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers"]
    return {name.strip() for layer in layers["layers"] for name in re.split(r"[|:]", layer)} - {"__main__"}


def test_the_architecture_page_names_every_package_and_only_those() -> None:
    assert parts_in_the_document() == parts_in_the_tree()


def test_the_contract_orders_the_same_parts_as_the_page() -> None:
    assert parts_in_the_contract() == parts_in_the_tree()

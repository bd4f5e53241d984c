"""ruff (lint and format) and mypy are part of the test suite: style and types regress like behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, cwd=ROOT)


def test_ruff_lint_is_clean() -> None:
    res = run("ruff", "check", "monitor", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format_is_clean() -> None:
    res = run("ruff", "format", "--check", "monitor", "tests", "bench")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_is_clean() -> None:
    """The package and its tests (a test's helper typed wrong is a check that may check nothing)."""
    res = run("mypy", "monitor", "tests")
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_shipped_yaml_file_passes_yamllint_relaxed() -> None:
    """yamllint's relaxed rules, with a missing space after a comma an error: in a flow list
    `[序时目标50,000头, …]` reads as two items, a mistake it found in rules/tests/indicators.yaml."""
    config = "{extends: relaxed, rules: {commas: {level: error}}}"
    res = run("yamllint", "-d", config, "-f", "parsable", "config.yaml", "rules", "deploy")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_architecture_contract_is_kept() -> None:
    """import-linter's contracts of pyproject.toml ([tool.importlinter]): the layers of
    docs/architecture.md, every package of monitor/ named in them."""
    res = run("lint-imports", "--no-cache")
    assert res.returncode == 0, res.stdout + res.stderr

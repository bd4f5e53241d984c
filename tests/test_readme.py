"""The README stays true: its Quick start has exactly the two commands, and its alias table is
the one the importer uses."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.ingest.columns import alias_table_markdown

TEST_COMMAND = (
    "bash tests/system-packages.sh && python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'"
    " && .venv/bin/python -m pytest"
)
README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/monitor demo",
        TEST_COMMAND,
    ]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in ci


def test_readme_alias_table_is_the_importers() -> None:
    table = README.split("<!-- ALIASES -->", 1)[1].split("<!-- /ALIASES -->", 1)[0]
    assert alias_table_markdown().strip() in table

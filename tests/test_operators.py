"""Issue 18, operators: what the CLI, the rule files and /healthz tell the people who run the service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from monitor.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture
def loaded(workdir: Path) -> Path:
    res = cli(workdir, "import", str(EXAMPLES))
    assert res.exit_code == 0, res.output
    return workdir


def test_results_can_filter_the_not_reported_projects(loaded: Path) -> None:
    # nothing is reported for June in the worked examples; May has every project reported
    for cp in ("2025-05", "2025-06"):
        assert cli(loaded, "run", "--checkpoint", cp, "--no-send").exit_code == 0
    res = cli(loaded, "results", "--checkpoint", "2025-06", "--light", "not_reported", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 5 and {r["status"] for r in rows} == {"not_reported"}
    res = cli(loaded, "results", "--checkpoint", "2025-05", "--light", "not_reported", "--format", "json")
    assert res.exit_code == 0 and json.loads(res.output) == []
    red = cli(loaded, "results", "--checkpoint", "2025-05", "--light", "red", "--format", "json")
    assert len(json.loads(red.output)) == 4


def test_a_run_with_nothing_new_does_not_say_it_held_messages_back(loaded: Path) -> None:
    first = cli(loaded, "run", "--checkpoint", "2025-06", "--no-send")
    assert "not sent (--no-send)" in first.output
    again = cli(loaded, "run", "--checkpoint", "2025-06", "--no-send")
    assert again.exit_code == 0, again.output
    assert "messages: none new" in again.output
    assert "not sent" not in again.output


def test_a_failing_rule_case_names_each_light_once(workdir: Path) -> None:
    case = workdir / "wrong.yaml"
    case.write_text(
        "checkpoint: 2025-05\ncases:\n  - name: wrong on purpose\n    projects:\n"
        "      - {budget: 300, executed: 30, expect: {budget: green, light: green}}\n",
        encoding="utf-8",
    )
    res = cli(workdir, "test-rules", str(case))
    assert res.exit_code == 1, res.output
    assert "light light" not in res.output and "budget light light" not in res.output
    assert "project light: expected green, got red" in res.output
    assert "budget light: expected green, got red" in res.output


FILE_NAME = re.compile(r"[\w./-]+\.(?:yaml|yml|md|csv|xlsx|py|html|j2|txt)\b")


def test_every_file_the_shipped_rules_name_is_in_the_repository() -> None:
    missing = []
    for path in sorted((ROOT / "rules").rglob("*.yaml")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            comment = line.partition("#")[2]
            for name in FILE_NAME.findall(comment):
                places = [(base / name).resolve() for base in (ROOT, path.parent, ROOT / "rules")]
                if not any(p.exists() and p.is_relative_to(ROOT) for p in places):
                    missing.append(f"{path.relative_to(ROOT)}:{n}: {name}")
    assert missing == []


def test_check_says_it_only_checked_the_syntax_of_rule_tests(workdir: Path) -> None:
    (workdir / "rules" / "tests" / "wrong.yaml").write_text(
        "checkpoint: 2025-05\ncases:\n  - name: fails under these rules\n    projects:\n"
        "      - {budget: 300, executed: 30, expect: {budget: green}}\n",
        encoding="utf-8",
    )
    res = cli(workdir, "check")
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if "wrong.yaml" in x)
    assert line.endswith("wrong.yaml: syntax OK (run `monitor test-rules` to run its cases)")
    assert "default.yaml: OK" in res.output
    assert cli(workdir, "test-rules").exit_code == 1


def test_no_shipped_yaml_splits_a_number_in_a_flow_list() -> None:
    """`[序时目标50,000头, …]` is two items, `序时目标50` and `000头`: a comma glued to the next item
    in a [flow list] is a thousands separator someone meant as text (yamllint's commas rule)."""
    glued = []
    for path in sorted([*(ROOT / "rules").rglob("*.yaml"), *(ROOT / "deploy").rglob("*.yaml")]):
        text = path.read_text(encoding="utf-8")
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.FlowEntryToken):
                after = text[token.end_mark.index : token.end_mark.index + 1]
                if after not in (" ", "\n", "\r", ""):
                    glued.append(f"{path.relative_to(ROOT)}:{token.start_mark.line + 1}")
    assert glued == []
    cases = yaml.safe_load((ROOT / "rules" / "tests" / "indicators.yaml").read_text(encoding="utf-8"))
    reasons = [
        r for c in cases["cases"] for p in c["projects"] for r in p.get("expect", {}).get("reasons", [])
    ]
    assert "序时目标50,000头" in reasons

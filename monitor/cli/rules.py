"""CLI commands for admins' rule tooling: `test-rules`, `preview`, `explain` and `rules history`.
Arguments in, the work done by ruletests.py / preview.py / explain.py, text or JSON out. Heavy
modules are imported inside the commands so `monitor --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, fail, make_app, rules_version_option


@click.command("test-rules")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@common
def test_rules(files: tuple[str, ...], config: str | None, rules_dir: str | None) -> None:
    """Run rule test cases (default: rules/tests/*.yaml) against the rules in force.

    Each case passes or fails with the difference shown; exit status 1 on any failure."""
    from monitor.tools import ruletests

    app = make_app(config, rules_dir)
    folder = app.settings.rules_dir
    paths = [Path(f) for f in files] or ruletests.default_files(folder)
    if not paths:
        fail([f"{folder / 'tests'}: no rule test files (*.yaml) to run"])
    reports = ruletests.run_files(paths, folder)
    for line in ruletests.report_lines(reports):
        click.echo(line)
    if not ruletests.all_passed(reports):
        sys.exit(1)


@click.command("preview")
@click.option(
    "--rules",
    "candidate",
    required=True,
    type=click.Path(exists=True),
    help="Candidate rules: a folder (the whole rule set) or a file (merged over the rules folder).",
)
@checkpoint_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@rules_version_option(
    "--against", "Compare with the rules folder now, or with the rules the checkpoint's last run used."
)
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None, help="config.yaml.")
@click.option(
    "--rules-dir",
    "rules_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The rules in force (default: rules_dir in config.yaml).",
)
def preview_cmd(
    candidate: str, checkpoint: Any, fmt: str, against: str, config: str | None, rules_dir: str | None
) -> None:
    """What a rule change would do to a checkpoint's stored data, without writing anything.

    Shows the project-light transitions, the changed projects with their reasons, the units whose
    e-mail would differ and how many messages the change adds or removes."""
    import json

    from monitor.db import ruleversions
    from monitor.rules import sources
    from monitor.tools import preview

    app = make_app(config, rules_dir)
    folder, cp = app.settings.rules_dir, str(checkpoint)
    before = ruleversions.base_source(app.engine, folder, cp, against)
    after = sources.candidate(Path(candidate), folder)
    result = preview.preview(app.engine, app.settings, checkpoint, before, after, app.clock())
    if result.projects == 0:
        fail(["no projects in the database: import data first (`monitor import`)"])
    if fmt == "json":
        click.echo(json.dumps(preview.as_json(result), ensure_ascii=False, indent=2))
    else:
        for line in preview.as_text(result):
            click.echo(line)


@click.command("explain")
@click.argument("project_code")
@checkpoint_option
@rules_version_option("--rules-version", "The rules folder now, or the rules the checkpoint's last run used.")
@common
def explain_cmd(
    project_code: str, checkpoint: Any, rules_version: str, config: str | None, rules_dir: str | None
) -> None:
    """The whole chain behind one project's lights: inputs, time progress, rule layers with
    file:line, ratios and thresholds, lights, and the notifications sent about it."""
    from monitor.db import ruleversions
    from monitor.tools import explain

    app = make_app(config, rules_dir)
    folder, cp = app.settings.rules_dir, str(checkpoint)
    source = ruleversions.base_source(app.engine, folder, cp, rules_version)
    zone = app.settings.time_zone
    result = explain.explain(app.engine, project_code, checkpoint, source, zone)
    for line in explain.as_text(result):
        click.echo(line)


@click.group("rules")
def rules_group() -> None:
    """Rule versions: every run stores the exact rules it used and their hash."""


@rules_group.command("history")
@common
def rules_history(config: str | None, rules_dir: str | None) -> None:
    """Each stored rule version: its hash, when first seen, and the runs that used it."""
    from monitor.config.yamlfile import Invalid
    from monitor.rules import sources
    from monitor.tools import preview

    app = make_app(config, rules_dir)
    try:
        current: str | None = sources.in_force(app.settings.rules_dir).rules.hash
    except Invalid:
        current = None
    with app.engine.connect() as conn:
        versions = preview.history(conn)
    for line in preview.history_lines(versions, current, app.settings.time_zone):
        click.echo(line)


@rules_group.command("sql")
@checkpoint_option
@common
def rules_sql(checkpoint: Any, config: str | None, rules_dir: str | None) -> None:
    """The two SQL statements that compute a checkpoint's lights under the rules in force, as
    `monitor run` would run them on this database (read them; nothing is written)."""
    from monitor.evaluate import sql
    from monitor.rules.policy import Policies

    app = make_app(config, rules_dir)
    policies = Policies(app.rules())
    with app.engine.connect() as conn, conn.begin() as tx:
        try:
            for table, statement in sql.statements(conn, policies, checkpoint):
                click.echo(
                    f"-- {table} of {checkpoint} (rules {policies.rules.hash[:12]}, {conn.dialect.name})"
                )
                click.echo(statement.strip() + ";\n")
        finally:
            tx.rollback()


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    for command in (test_rules, preview_cmd, explain_cmd, rules_group):
        group.add_command(command)

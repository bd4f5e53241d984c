"""Data in and out (what an operator does with files): `monitor import` reads units, projects,
indicators, reports and units' answers from CSV/XLSX; `monitor results` shows a checkpoint's stored
results as a table, JSON or CSV; `monitor sample` writes a realistic dataset to try it on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import app_has_run, checkpoint_option, common, console, fail, make_app
from monitor.core.rows import StoredResult


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--errors",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every problem to this file (default: a temporary file when there are more than 50).",
)
@common
def import_cmd(paths: tuple[str, ...], errors: str | None, config: str | None, rules_dir: str | None) -> None:
    """Import units, projects, indicators and reports from CSV/XLSX files or folders (one transaction)."""
    from monitor.ingest.importer import ImportFailed, import_paths, problem_report

    app = make_app(config, rules_dir)
    warnings: list[str] = []
    try:
        counts = import_paths(app.engine, [Path(p) for p in paths], app.clock(), warnings)
    except ImportFailed as exc:
        fail(problem_report(exc.problems, Path(errors) if errors else None))
    click.echo("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for line in warnings:
        click.echo(f"warning: {line}", err=True)


@click.command()
@checkpoint_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "exchange"]), default="table")
@click.option("--unit", default=None, help="Only this unit's projects.")
@click.option(
    "--light",
    type=click.Choice(["green", "yellow", "red", "not_reported"]),
    default=None,
    help="Only projects with this light (not_reported: 未报送).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write to a file (CSV gets a BOM for Excel)."
)
@common
def results(
    checkpoint: Any,
    fmt: str,
    unit: str | None,
    light: str | None,
    out: str | None,
    config: str | None,
    rules_dir: str | None,
) -> None:
    """Show the stored results of a checkpoint as a table, JSON or CSV, or write them as the exchange
    table of the 一体化 systems with the lights added (--format exchange)."""
    from monitor.app import results_csv, results_json

    app = make_app(config, rules_dir)
    rows = app.results(checkpoint, unit, light)
    if not rows and not app_has_run(app, checkpoint):
        fail([f"no results for checkpoint {checkpoint}: run `monitor run --checkpoint {checkpoint}` first"])
    if fmt == "json":
        text = results_json(rows) + "\n"
    elif fmt == "csv":
        text = results_csv(rows)
    elif fmt == "exchange":  # the 一体化 systems' table with the lights added (reports.exchange)
        from monitor.reports.exchange import exchange_csv

        with app.engine.connect() as conn:
            text = exchange_csv(conn, str(checkpoint), rows)
    else:
        from monitor.cases.exemptions import active, local_day

        with app.engine.connect() as conn:
            exempt = active(conn, local_day(app.clock(), app.settings.time_zone))
        print_results_table(rows, exempt)
        return
    if out:
        bom = fmt in ("csv", "exchange")  # Excel reads UTF-8 text files with a BOM
        Path(out).write_text(text, encoding="utf-8-sig" if bom else "utf-8", newline="")
        click.echo(f"wrote {len(rows)} project(s) to {out}", err=True)
    else:
        click.echo(text, nl=False)


def print_results_table(rows: Sequence[StoredResult], exempt: Collection[str] = ()) -> None:
    """The results as a table; a project in `exempt` (exempted from warnings today) is marked 已豁免."""
    from rich.table import Table

    from monitor.core.wording import percent, progress

    colours: dict[str | None, str] = {"green": "green", "yellow": "yellow", "red": "red"}
    words: dict[str | None, str] = {"green": "绿", "yellow": "黄", "red": "红", "blue": "蓝"}
    t = Table()
    for col in ("项目编码", "项目名称", "单位", "执行率", "序时", "预算灯", "目标灯", "项目灯"):
        t.add_column(col)
    for r in rows:
        rate = percent(r["execution_rate"]) or "-"
        t.add_row(
            r["project_code"],
            r["project_name"],
            r["unit_code"],
            rate,
            progress(r["time_progress"]),
            words.get(r["budget_light"], "-"),
            words.get(r["target_light"], "-"),
            f"[{colours.get(r['light'], 'dim')}]{words.get(r['light'], '未报送')}[/]"
            + ("（已豁免）" if r["project_code"] in exempt else ""),
        )
    console().print(t)


@click.command()
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Folder to write the CSV files into."
)
@click.option("--projects", type=click.IntRange(min=1), default=2450, show_default=True)
@click.option("--seed", type=int, default=2025, show_default=True)
@click.option("--year", type=int, default=2025, show_default=True)
@click.option(
    "--may-only", is_flag=True, help="Only the May reports (what the bureau holds at its May checkpoint)."
)
def sample(out: str, projects: int, seed: int, year: int, may_only: bool) -> None:
    """Write a realistic prefecture dataset (units, projects, indicators, May and August reports)."""
    from monitor.tools.sample import write_sample

    paths = write_sample(Path(out), projects=projects, seed=seed, year=year, may_only=may_only)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    for command in (import_cmd, results, sample):
        group.add_command(command)

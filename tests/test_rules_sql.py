"""`monitor rules sql --checkpoint YYYY-MM`: the two statements that compute a checkpoint's lights
under the rules in force, printed for an admin or an engineer to read, exactly as `monitor run`
builds them on this database; nothing is written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import func, select

from monitor.cli.main import main
from monitor.db.engine import PROJECT_RESULT, make_engine

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")])


def test_rules_sql_prints_both_statements_and_writes_nothing(workdir: Path, db_url: str) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    res = cli(workdir, "rules", "sql", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    heads = [line for line in res.output.splitlines() if line.startswith("-- ")]
    assert [h.split(" of ")[0] for h in heads] == ["-- indicator_result", "-- project_result"]
    assert all("2025-05 (rules " in h for h in heads)
    assert "INSERT INTO indicator_result" in res.output and "INSERT INTO project_result" in res.output
    assert "'2025-05'" in res.output  # the checkpoint is in the statements, not a placeholder
    engine = make_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(PROJECT_RESULT)).scalar_one()
    engine.dispose()
    assert stored == 0
    run = cli(workdir, "run", "--checkpoint", "2025-05", "--no-send")  # the database is as it was
    assert run.exit_code == 0, run.output


def test_the_statements_follow_the_rules_in_force(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    first = cli(workdir, "rules", "sql", "--checkpoint", "2025-05")
    (workdir / "rules" / "local.yaml").write_text("combine: matrix\n", encoding="utf-8")
    second = cli(workdir, "rules", "sql", "--checkpoint", "2025-05")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    before, after = first.output, second.output
    assert before.splitlines()[0] != after.splitlines()[0]  # another rules hash
    assert before != after

"""The set-based evaluation: the rules in force turned into SQL, so the database computes every light
of a checkpoint in two INSERT … SELECT statements instead of a Python loop over a million rows.

Each light rule writes its own SQL form beside its Python judgement (monitor.evaluate.lights); this
module assembles them into the statements and prepares what they join:
- policies are not re-derived: Policies computes the thresholds of every distinct combination of
  matching overrides (a handful), which the statements join as small tables of their own
  (monitor.evaluate.prepare);
- what a target or an actual *is* (a number, a date, an answer) is decided by the core's own parsers
  (monitor.evaluate.shapes) once per distinct text, not by SQL string tests;
- comparisons are exact integer cross-multiplications where the numbers are small (the boundaries
  people actually write, r = 0.60 exactly among them), floating point elsewhere with a guard band:
  within a relative 1e-9 of a threshold the row is marked uncertain (`?`) and the core judges it;
- a project whose budget light is uncertain is evaluated again by the core, whole.
The statements take a Part (a range of project codes and the tables to write): monitor.evaluate.halves
runs them in two halves on two connections at once.
Reasons are stored as facts: each result names its policy (stored with the run, run_policy) and keeps
the values its reason states; monitor.evaluate.reasons formats them when read.
`monitor rules sql --checkpoint YYYY-MM` prints the two statements for the rules in force (`statements`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from monitor.core.model import Checkpoint, Direction, Indicator, IndicatorReport, Kind
from monitor.db import partitions
from monitor.db.results import save_policies
from monitor.evaluate.core import judge_indicator
from monitor.evaluate.lights import budget, combine, indicator
from monitor.evaluate.lights.not_reported import project_sql as project_words_sql
from monitor.evaluate.lights.registry import kind_sql
from monitor.evaluate.prepare import Answers, drop_temporary, key_of, prepare_all, run
from monitor.evaluate.sqltext import Dialect, Spelling, lit
from monitor.rules.policy import Policies

RESULT_COLUMNS = (
    "checkpoint, project_code, indicator_code, name, kind, light, ratio, reason, target, actual,"
    " measure_unit, direction, policy, reported, possibility"
)
PROJECT_RESULT_COLUMNS = (
    "checkpoint, project_code, run_id, unit_code, project_name, status, budget, executed,"
    " execution_rate, time_progress, budget_light, target_light, light, reasons, policy, carryover"
)


@dataclass(frozen=True)
class Part:
    """The projects a statement covers, from `lo` (included) to `hi` (excluded), either end open when
    None, and the tables their results go to (monitor.evaluate.halves: a scratch database's)."""

    lo: str | None = None
    hi: str | None = None
    indicators: str = "indicator_result"
    projects: str = "project_result"

    def where(self, column: str) -> str:
        bounds = [f"{column} >= {lit(self.lo)}"] if self.lo is not None else []
        bounds += [f"{column} < {lit(self.hi)}"] if self.hi is not None else []
        return " WHERE " + " AND ".join(bounds) if bounds else ""


ALL = Part()


def indicator_sql(d: Dialect, checkpoint: Checkpoint, answers: Answers, part: Part = ALL) -> str:
    """INSERT … SELECT of every indicator result of the checkpoint (reason left empty) of the `part`'s
    projects, into its indicator table (RESULT_COLUMNS): indicator_select's rows."""
    select = indicator_select(d, checkpoint, answers, part)
    return f"INSERT INTO {part.indicators} ({RESULT_COLUMNS}) {select}"


def indicator_select(d: Dialect, checkpoint: Checkpoint, answers: Answers, part: Part = ALL) -> str:
    """SELECT of every indicator result of the checkpoint (reason left empty) of the `part`'s projects,
    its columns RESULT_COLUMNS in that order (`part.indicators` is not read). The shape
    of every distinct target and actual was decided by the pure core's own parsers (_ev_val);
    comparisons are exact in integers where the numbers are small, else in floats with a guard band
    (`?`)."""
    cp = lit(str(checkpoint))
    s = Spelling(d, checkpoint)
    kind = kind_sql(s)
    inner = (
        "SELECT i.project_code, i.code, i.name, i.level2, i.direction, i.target, i.measure_unit,"
        f" {kind} AS kind, ir.actual, CASE WHEN ir.project_code IS NULL THEN 0 ELSE 1 END AS reported,"
        " CASE WHEN ir.actual IS NULL OR ir.actual = '' THEN 1 ELSE 0 END AS an,"
        f" {answers.impossible} AS imp, {answers.qualitative} AS qual,"
        " ip.red, ip.yellow, ip.blue, ip.tol, ip.rn, ip.rd, ip.yn, ip.yd, ip.bn, ip.bd, ip.tn, ip.td,"
        " ip.pn, ip.pd, ip.psmall, ip.id AS policy, ir.possibility,"
        " vt.isnum AS tnum, vt.f AS tf, vt.n AS t_n, vt.d AS t_d, vt.small AS tsmall, vt.pos AS tpos,"
        " vt.zero AS tzero, vt.isdate AS tdate, vt.iso AS tiso,"
        " COALESCE(va.isnum, 0) AS anum, va.f AS af, va.n AS a_n, va.d AS a_d,"
        " COALESCE(va.small, 0) AS asmall,"
        " COALESCE(va.isdate, 0) AS adate, va.iso AS aiso"
        # each project's key once, then its indicators (on SQLite CROSS JOIN fixes that order)
        f" FROM _ev_pkey pk {d.ordered_join} indicator i ON i.project_code = pk.code"
        " JOIN _ev_ipol ip ON ip.kp = pk.kp AND ip.level2 = i.level2 AND ip.own = COALESCE(i.profile, '')"
        " JOIN _ev_val vt ON vt.v = i.target"
        f" LEFT JOIN indicator_report ir ON ir.checkpoint = {cp} AND ir.project_code = i.project_code"
        " AND ir.indicator_code = i.code"
        " LEFT JOIN _ev_val va ON va.v = ir.actual"
    )
    inner += part.where("pk.code")
    light, ratio_sql = indicator.light_sql(s), indicator.ratio_sql(s)
    return (
        f"SELECT {cp}, b.project_code, b.code, b.name, b.kind, {light}, {ratio_sql}, '', b.target, b.actual,"
        f" b.measure_unit, b.direction, b.policy, b.reported, {indicator.impossible_sql()} FROM ({inner}) b"
    )


def project_sql(d: Dialect, checkpoint: Checkpoint, run_id: int, part: Part = ALL) -> str:
    """INSERT … SELECT of every project result of the `part`'s projects into its project table, from
    the indicator results just written into its indicator table."""
    cp = lit(str(checkpoint))
    base = budget.base_sql()
    budget_light = budget.light_sql(d)
    # PostgreSQL: one grouped pass over the indicator results; SQLite: a lookup per project in its
    # clustered table
    grouped = d.pg
    worst_of = "w.worst" if grouped else combine.worst_sql(part.indicators, cp)
    target, combined = combine.target_sql(), combine.project_sql()
    not_reported = project_words_sql(checkpoint)
    inner = (
        "SELECT p.code, p.unit_code, p.name, p.budget, r.executed, pp.id AS policy, p.carryover,"
        " CASE WHEN r.project_code IS NULL THEN 0 ELSE 1 END AS reported,"
        f" CASE WHEN r.project_code IS NOT NULL AND {base} > 0"
        f" THEN {d.real('r.executed')} / {base} END AS rate,"
        f" pp.pf, {budget_light} AS budget_light, {worst_of} AS worst, pp.matrix"
        " FROM project p JOIN _ev_pkey pk ON pk.code = p.code JOIN _ev_ppol pp ON pp.kp = pk.kp"
        f" LEFT JOIN project_report r ON r.checkpoint = {cp} AND r.project_code = p.code"
        + (combine.worst_join_sql(part.indicators, cp) if grouped else "")
        + part.where("p.code")
    )
    return (
        f"WITH b AS MATERIALIZED ({inner})"
        f" INSERT INTO {part.projects} ({PROJECT_RESULT_COLUMNS})"
        f" SELECT {cp}, b.code, {run_id}, b.unit_code, b.name,"
        " CASE WHEN b.reported = 1 THEN 'reported' ELSE 'not_reported' END,"
        " b.budget, b.executed, b.rate, b.pf,"
        f" CASE WHEN b.reported = 1 THEN b.budget_light END,"
        f" CASE WHEN b.reported = 1 THEN ({target}) END, {combined},"
        f" CASE WHEN b.reported = 1 THEN '' ELSE {not_reported} END, b.policy, b.carryover FROM b"
    )


def judge_uncertain(
    conn: Connection, policies: Policies, checkpoint: Checkpoint, results: str = "indicator_result"
) -> int:
    """Judge the indicator rows the statement left uncertain (in `results`) with the pure core
    (exactly), in place."""
    cp = str(checkpoint)
    q = (
        "SELECT i.project_code, i.code, i.level1, i.level2, i.name, i.direction, i.target, i.measure_unit,"
        " i.kind, i.profile, pk.k, pp.profile, ir.checkpoint, ir.actual, ir.forecast,"
        " ir.possibility, ir.causes, ir.cause_text, ir.measures"
        f" FROM {results} x"
        " JOIN indicator i ON i.project_code = x.project_code AND i.code = x.indicator_code"
        " JOIN _ev_pkey pk ON pk.code = i.project_code JOIN _ev_ppol pp ON pp.kp = pk.kp"
        " LEFT JOIN indicator_report ir ON ir.checkpoint = x.checkpoint AND ir.project_code = i.project_code"
        f" AND ir.indicator_code = i.code WHERE x.checkpoint = {lit(cp)} AND x.light = '?'"
    )
    updates = []
    for r in conn.exec_driver_sql(q).all():
        ind = Indicator(
            r[0], r[1], r[2], r[3], r[4], Direction(r[5]), r[6], r[7], Kind(r[8]) if r[8] else None, r[9]
        )
        report = IndicatorReport(cp, r[0], r[1], *r[13:19]) if r[12] is not None else None
        res = judge_indicator(policies, checkpoint, key_of(r[10]), r[11], ind, report)
        updates.append((res.kind.value, res.light.value, res.ratio, cp, r[0], r[1]))
    if updates:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(
            f"UPDATE {results} SET kind = {mark}, light = {mark}, ratio = {mark}"
            f" WHERE checkpoint = {mark} AND project_code = {mark} AND indicator_code = {mark}",
            updates,
        )
    return len(updates)


def evaluate(conn: Connection, policies: Policies, checkpoint: Checkpoint, run_id: int) -> list[str]:
    """Write the checkpoint's results (after db.results.clear_results, unless `clears_itself`: on
    PostgreSQL into fresh tables swapped in as its partitions): indicators by one statement, the
    uncertain ones judged again by the pure core, then projects by one statement. Returns the codes
    of the projects whose budget light was left uncertain, for the caller to evaluate with the core.
    (monitor.evaluate.halves does the same in two halves on two cores.)"""
    if Dialect(conn.dialect.name).pg:
        # compiling these long CASE expressions costs PostgreSQL's JIT more than it saves
        # (100k projects: 8.7 s -> 7.0 s for the indicator statement); for this transaction only
        conn.exec_driver_sql("SET LOCAL jit = off")
    d = Dialect(conn.dialect.name)
    if d.pg:
        # hash the joins and distinct texts, and sort the fresh results' keys, in memory
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        analyze_inputs(conn)
    rows = prepare_all(conn, policies, checkpoint)
    fresh = partitions.fresh(conn, str(checkpoint), run_id) if partitions.partitioned(conn) else None
    part = Part(indicators=fresh.indicators, projects=fresh.projects) if fresh else ALL
    if d.pg:
        analyze_temporary(conn)
    save_policies(conn, run_id, rows.facts)
    if fresh:  # CREATE TABLE … AS: its reading planned in parallel (INSERT … SELECT never is)
        select = indicator_select(d, checkpoint, rows.answers, part)
        made = partitions.create_as(conn, "indicator_result", fresh.indicators, RESULT_COLUMNS, select)
        run(conn, made, whole=True)
        partitions.shaped(conn, "indicator_result", fresh.indicators)
    else:
        run(conn, indicator_sql(d, checkpoint, rows.answers, part), whole=True)
    finish(conn, policies, checkpoint, run_id, part)
    if fresh:  # the fresh results replace the checkpoint's partitions: nothing deleted and written again
        partitions.swap(conn, str(checkpoint), fresh)
    drop_temporary(conn)
    return uncertain(conn, checkpoint)


def clears_itself(conn: Connection) -> bool:
    """Whether `evaluate` replaces the checkpoint's results itself (partitions swapped, PostgreSQL), so
    the caller must not delete them first."""
    return partitions.partitioned(conn)


INPUTS = ("project", "indicator", "project_report", "indicator_report")


def analyze_inputs(conn: Connection) -> None:
    """The input tables' statistics brought up to date where a tenth of their rows changed since the
    last ANALYZE (an import just before the run: autovacuum has not caught up yet, and the planner,
    taking a million rows for a few, picks nested loops: 100k projects right after an import 16.7 s
    against 10 s)."""
    names = ", ".join(f"'{t}'" for t in INPUTS)
    stale = (
        conn.exec_driver_sql(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname IN"
            f" ({names}) AND (coalesce(last_analyze, last_autoanalyze) IS NULL"
            " OR n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000))"
        )
        .scalars()
        .all()
    )
    if stale:
        conn.exec_driver_sql("ANALYZE " + ", ".join(sorted(stale)))


def analyze_temporary(conn: Connection) -> None:
    """PostgreSQL never analyzes temporary tables, nor tables made in the transaction, by itself: without
    their sizes it joins 600,000 indicators to them by nested index lookups; analyzed, and with the
    memory to hash them (work_mem for the transaction), by hash joins (100k projects: the indicator
    statement's reading 9.4 s -> 3.4 s)."""
    conn.exec_driver_sql("ANALYZE _ev_pkey, _ev_val, _ev_ipol, _ev_ppol")


def statements(conn: Connection, policies: Policies, checkpoint: Checkpoint) -> list[tuple[str, str]]:
    """(table, statement) of the evaluation of `checkpoint` under `policies`, as `evaluate` would run
    them (project results of run 0), for people to read. Prepares the same temporary tables in
    `conn`'s transaction, which the caller rolls back; writes nothing else."""
    d = Dialect(conn.dialect.name)
    answers = prepare_all(conn, policies, checkpoint).answers
    return [
        ("indicator_result", indicator_sql(d, checkpoint, answers)),
        ("project_result", project_sql(d, checkpoint, 0, ALL)),
    ]


def finish(
    conn: Connection, policies: Policies, checkpoint: Checkpoint, run_id: int, part: Part = ALL
) -> None:
    """Once the `part`'s indicator results are written: the uncertain ones judged by the pure core,
    then its project results written."""
    judge_uncertain(conn, policies, checkpoint, part.indicators)
    run(conn, project_sql(Dialect(conn.dialect.name), checkpoint, run_id, part), whole=True)


def uncertain(conn: Connection, checkpoint: Checkpoint) -> list[str]:
    """The codes of the projects whose light the statements left uncertain ('?')."""
    return [
        r[0]
        for r in conn.exec_driver_sql(
            f"SELECT project_code FROM project_result WHERE checkpoint = {lit(str(checkpoint))}"
            " AND light = '?' ORDER BY project_code"
        )
    ]

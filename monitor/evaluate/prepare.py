"""What the set-based evaluation's statements join, prepared per checkpoint as small tables of its own
(temporary; on PostgreSQL unlogged, in its work schema, for parallel reading):
each project's override key (which overrides match it) and profile, the project and indicator
policies of every key that occurs with their time progress resolved and their facts (stored with the
run: reasons are formatted from them), and what the pure core's parsers make of every distinct target
and actual (monitor.evaluate.shapes), so SQL never parses a number or re-derives a policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from monitor.core.model import Checkpoint
from monitor.evaluate.facts import indicator_facts, project_facts
from monitor.evaluate.shapes import answer, date, ratio
from monitor.evaluate.sqltext import BUDGET_SMALL, SMALL, Dialect, lit
from monitor.rules.policy import Policies

TEMP_TABLES = ("_ev_pkey", "_ev_ppol", "_ev_ipol", "_ev_val")


def _match_sql(policies: Policies, i: int) -> str:
    m = policies.matches[i]
    parts = []

    def within(col: str, values: Iterable[str] | None) -> None:
        if values is not None:
            vs = sorted(values)
            parts.append(f"{col} IN ({', '.join(lit(v) for v in vs)})" if vs else "1 = 0")

    within("p.fund_flag", m.fund_flag)
    within("p.unit_code", m.unit)
    if m.department is not None:
        vs = ", ".join(lit(v) for v in sorted(m.department)) or "NULL"
        parts.append(f"(u.supervisor_code IN ({vs}) OR p.unit_code IN ({vs}))")
    within("p.code", m.project)
    within("p.category", m.category)
    if m.budget_min is not None:
        parts.append(f"p.budget >= {m.budget_min}")
    if m.budget_max is not None:
        parts.append(f"p.budget < {m.budget_max}")
    return " AND ".join(parts) or "1 = 1"


def key_of(k: str) -> tuple[int, ...]:
    return tuple(i for i, ch in enumerate(k) if ch == "1")


def run(conn: Connection, sql: str, whole: bool = False) -> None:
    """Execute a statement that carries its values as literals, passed to the driver without a
    parameter list (psycopg would otherwise read a '%' in a literal as a placeholder). `whole`: it
    reads whole tables (every indicator, every report), so on PostgreSQL it is planned with hashes,
    without nested loops or sorts: the planner, misjudging the rows that match a policy by three columns
    (15k for 600k), looked up 600,000 indicator reports one by one (100k projects: 4.7 s where one hashed
    pass takes 2.9 s), and, knowing nothing of the fresh results (monitor.db.partitions), sorted 600,000
    of them by project to group them (0.9 s; hashed 0.15 s)."""
    pg = whole and conn.dialect.name == "postgresql"
    if pg:
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
    conn.exec_driver_sql(sql, execution_options={"no_parameters": True})
    if pg:
        conn.exec_driver_sql("SET LOCAL enable_nestloop = on")
        conn.exec_driver_sql("SET LOCAL enable_sort = on")


@dataclass(frozen=True)
class Answers:
    """The qualitative answers and the impossible possibilities of the indicator policies in force,
    as CASE expressions over a class number each policy row carries (ip.qclass, ip.xclass): no
    lookup per row for what a handful of distinct policies say."""

    qualitative: str  # the light the policy gives va.answer, or NULL
    impossible: str  # 1 where the policy finds ir.possibility impossible, else 0


def _answers(qmaps: list[dict[str, str]], xsets: list[frozenset[str]], said: list[str]) -> Answers:
    def lights(m: dict[str, str]) -> str:
        return " ".join(f"WHEN {lit(a)} THEN {lit(c)}" for a, c in sorted(m.items()))

    qual = " ".join(f"WHEN {j} THEN (CASE va.answer {lights(m)} END)" for j, m in enumerate(qmaps) if m)
    imp = " ".join(
        f"WHEN {j} THEN (CASE WHEN ir.possibility IN ({', '.join(lit(v) for v in vs)}) THEN 1 ELSE 0 END)"
        for j, vs in enumerate(sorted(v for v in said if v.strip() in s) for s in xsets)
        if vs
    )
    return Answers(
        f"(CASE ip.qclass {qual} END)" if qual else "NULL",
        f"(CASE ip.xclass {imp} ELSE 0 END)" if imp else "0",
    )


def prepare_all(conn: Connection, policies: Policies, checkpoint: Checkpoint) -> PolicyRows:
    """The temporary tables the statements join (see prepare_policies and prepare_values)."""
    drop_temporary(conn)
    work = work_schema(conn)  # PostgreSQL: readable by parallel workers
    rows = prepare_policies(conn, policies, checkpoint, schema=work)
    prepare_values(conn, checkpoint, schema=work)
    return rows


def drop_temporary(conn: Connection) -> None:
    """Drop this connection's evaluation tables (named in the temporary schema: a scratch database
    attached beside may hold a table of the same name), and on PostgreSQL its work schema."""
    pg = Dialect(conn.dialect.name).pg
    schema = "pg_temp" if pg else "temp"
    for name in TEMP_TABLES:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{name}")
    if pg:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_work_name(conn)} CASCADE")


def _work_name(conn: Connection) -> str:
    """The work schema of this PostgreSQL session: no two sessions at once have the same."""
    return f"ev_work_{int(conn.exec_driver_sql('SELECT pg_backend_pid()').scalar_one())}"


def work_schema(conn: Connection) -> str | None:
    """PostgreSQL: a schema of this session's own (ev_work_<backend pid>), made in the caller's
    transaction and put first on its search path, for the evaluation's tables: as UNLOGGED tables there
    PostgreSQL's parallel workers can read them, which they cannot read as temporary tables (the
    indicator results at 100k projects: 3.9 s in one process, 2.5 s with two workers). Made and dropped
    with the transaction: a run killed midway leaves nothing behind. None where the role may not create
    a schema (the tables are temporary then, read by one process) or on SQLite."""
    if not Dialect(conn.dialect.name).pg:
        return None
    name = _work_name(conn)
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {name}")
    except DBAPIError:  # no CREATE privilege on the database
        return None
    path = f"'{name}, ' || current_setting('search_path')"
    conn.exec_driver_sql(f"SELECT set_config('search_path', {path}, true)")  # SET LOCAL
    return name


def _creator(conn: Connection, schema: str | None = None) -> Callable[[str], None]:
    """CREATE TABLE for the evaluation's own tables: temporary, or in `schema`: an attached scratch
    database (SQLite: clustered on their keys, keyed lookups only: one B-tree to descend, not two), the
    work schema (PostgreSQL: UNLOGGED, work_schema)."""
    pg = Dialect(conn.dialect.name).pg
    suffix = "" if pg else " WITHOUT ROWID"

    def create(columns: str) -> None:
        if schema is None:
            conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {columns}{suffix}")
        elif pg:
            conn.exec_driver_sql(f"CREATE UNLOGGED TABLE {schema}.{columns}")
        else:
            conn.exec_driver_sql(f"CREATE TABLE {schema}.{columns}{suffix}")

    return create


@dataclass(frozen=True)
class PolicyRows:
    """What prepare_policies decided: the rows of its tables, the answers' expressions, which
    another connection of the same transaction's data writes as they are (monitor.evaluate.halves),
    and each policy's facts by id (stored with the run: reasons are formatted from them)."""

    ppol: list[tuple[Any, ...]]
    ipol: list[tuple[Any, ...]]
    answers: Answers
    facts: list[tuple[int, str]]


def prepare_policies(
    conn: Connection,
    policies: Policies,
    checkpoint: Checkpoint,
    given: PolicyRows | None = None,
    schema: str | None = None,
) -> PolicyRows:
    """The temporary tables of the policies: each project's override key and profile (kp), the
    project policy and time progress of every kp that occurs, the indicator policy of every (kp,
    level2, the indicator's own profile or '') with its time progress resolved. `given`: the rows
    decided on another connection (only each project's key is computed again here)."""
    n = len(policies.matches)
    if n:
        key = " || ".join(f"(CASE WHEN {_match_sql(policies, i)} THEN '1' ELSE '0' END)" for i in range(n))
    else:
        key = "''"
    create = _creator(conn, schema)  # the work schema is first on the search path
    # kp: the override key and the project's own profile, which together decide every policy and
    # time progress of the project and of its indicators without their own profile
    create(
        f"_ev_pkey (code VARCHAR(21) PRIMARY KEY, k VARCHAR({max(n, 1)}) NOT NULL, pprofile TEXT,"
        " kp TEXT NOT NULL)"
    )
    run(
        conn,
        "INSERT INTO _ev_pkey (code, k, pprofile, kp)"
        " SELECT code, k, pprofile, k || '/' || COALESCE(pprofile, '')"
        f" FROM (SELECT p.code, {key} AS k, NULLIF(p.profile, '') AS pprofile"
        " FROM project p LEFT JOIN unit u ON u.code = p.unit_code) s",
    )
    rows = given if given is not None else _policy_rows(conn, policies, checkpoint)
    dbl = Dialect(conn.dialect.name).double
    create(
        f"_ev_ppol (kp TEXT PRIMARY KEY, id INTEGER, plus INTEGER, red {dbl}, yellow {dbl}, matrix INTEGER,"
        f" profile TEXT, rn BIGINT, rd BIGINT, yn BIGINT, yd BIGINT, pn BIGINT, pd BIGINT, pf {dbl})"
    )
    create(
        f"_ev_ipol (kp TEXT, level2 TEXT, own TEXT, id INTEGER, red {dbl}, yellow {dbl}, blue {dbl},"
        f" tol {dbl}, rn BIGINT, rd BIGINT, yn BIGINT, yd BIGINT, bn BIGINT, bd BIGINT, tn BIGINT, td BIGINT,"
        " pn BIGINT, pd BIGINT, psmall INTEGER, qclass INTEGER, xclass INTEGER,"
        " PRIMARY KEY (kp, level2, own))"
    )
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for table, values in (("_ev_ppol", rows.ppol), ("_ev_ipol", rows.ipol)):
        if values:
            conn.exec_driver_sql(f"INSERT INTO {table} VALUES ({', '.join([mark] * len(values[0]))})", values)
    return rows


def _policy_rows(conn: Connection, policies: Policies, checkpoint: Checkpoint) -> PolicyRows:
    """The policy of every kp in _ev_pkey, for every level2 indicators have, with and without each
    profile indicators name as their own."""
    kps = conn.exec_driver_sql("SELECT DISTINCT kp, k, pprofile FROM _ev_pkey").all()
    # the 二级 and the indicators' own profiles in one pass over the indicators
    pairs = conn.exec_driver_sql("SELECT DISTINCT level2, COALESCE(profile, '') FROM indicator").all()
    level2s = sorted({r[0] for r in pairs})
    owns = ["", *sorted({r[1] for r in pairs} - {""})]
    said = [
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT DISTINCT possibility FROM indicator_report"
            f" WHERE checkpoint = {lit(str(checkpoint))} AND possibility IS NOT NULL AND possibility <> ''"
        )
    ]
    rows = _Rows(policies, checkpoint)
    for kp, k, pprofile in kps:
        project_profile = rows.project(kp, key_of(k), pprofile)
        for level2 in level2s:
            for own in owns:
                rows.indicator(kp, key_of(k), level2, own, project_profile)
    return PolicyRows(rows.ppol, rows.ipol, _answers(rows.qmaps, rows.xsets, said), rows.facts)


class _Rows:
    """The policy rows being decided, each naming its facts by id: one id per distinct policy and
    time progress (rows of many keys, 二级 and profiles share a few)."""

    def __init__(self, policies: Policies, checkpoint: Checkpoint) -> None:
        self.policies, self.checkpoint = policies, checkpoint
        self.ppol: list[tuple[Any, ...]] = []
        self.ipol: list[tuple[Any, ...]] = []
        self.facts: list[tuple[int, str]] = []
        self._ids: dict[tuple[Any, ...], int] = {}
        self.qmaps: list[dict[str, str]] = []
        self.xsets: list[frozenset[str]] = []

    def ident(self, key: tuple[Any, ...], facts: Callable[[], str]) -> int:
        """The id of the facts `key` names (the policy object, P, its note), made once."""
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self.facts)
            self.facts.append((found, facts()))
        return found

    def progress(self, name: str | None) -> tuple[Fraction, str]:
        return self.policies.progress(self.checkpoint, name or None)

    def project(self, kp: str, key: tuple[int, ...], pprofile: str | None) -> str | None:
        """The project policy row of `kp`; returns the profile its projects' time progress follows."""
        pp = self.policies.project_policy(key)
        project_profile = pp.profile or pprofile or None
        p, note = self.progress(project_profile)
        ident = self.ident(("p", id(pp), p, note), lambda: project_facts(pp, p, note))
        plus = pp.budget_base == "budget_plus_carryover"
        exact = budget_exact(pp.budget_red, pp.budget_yellow)
        red, yellow = float(pp.budget_red), float(pp.budget_yellow)
        matrix = int(pp.combine == "matrix")
        self.ppol.append(
            (
                kp,
                ident,
                int(plus),
                red,
                yellow,
                matrix,
                project_profile,
                *exact,
                p.numerator,
                p.denominator,
                float(p),
            )
        )
        return project_profile

    def indicator(
        self, kp: str, key: tuple[int, ...], level2: str, own: str, project_profile: str | None
    ) -> None:
        ip = self.policies.indicator_policy(key, level2)
        fracs = (ip.red, ip.yellow, ip.blue, ip.tolerance)
        exact: tuple[int | None, ...] = tuple(x for f in fracs for x in (f.numerator, f.denominator))
        if not _small(*(x for x in exact if x is not None)):
            exact = (None,) * 8
        p, note = self.progress(own or ip.profile or project_profile)
        ident = self.ident(("i", id(ip), p, note, bool(own)), lambda: indicator_facts(ip, p, note, bool(own)))
        small = int(_small(p.numerator, p.denominator))
        qclass, xclass = _class_of(self.qmaps, ip.qualitative), _class_of(self.xsets, ip.impossible)
        floats = (float(f) for f in fracs)
        self.ipol.append(
            (kp, level2, own, ident, *floats, *exact, p.numerator, p.denominator, small, qclass, xclass)
        )


def _class_of(classes: list[Any], value: Any) -> int:
    if value not in classes:
        classes.append(value)
    return classes.index(value)


def prepare_values(conn: Connection, checkpoint: Checkpoint, schema: str | None = None) -> None:
    """The table _ev_val: what the pure core's parsers make of every distinct target and actual of
    the checkpoint. Temporary, or in `schema`: the attached scratch database (monitor.evaluate.halves),
    the work schema (PostgreSQL, work_schema)."""
    d = Dialect(conn.dialect.name)
    create = _creator(conn, schema)
    dbl = d.double
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    into = f"{schema}._ev_val" if schema else "_ev_val"
    create(
        f"_ev_val (v TEXT PRIMARY KEY, isnum INTEGER, f {dbl}, n BIGINT, d BIGINT, small INTEGER,"
        " pos INTEGER, zero INTEGER, isdate INTEGER, iso TEXT, answer TEXT)"
    )
    texts = [
        r[0]
        for r in conn.exec_driver_sql(
            "SELECT target FROM indicator UNION SELECT actual FROM indicator_report"
            f" WHERE checkpoint = {lit(str(checkpoint))} AND actual IS NOT NULL"
        )
    ]
    for i in range(0, len(texts), 20000):
        rows = value_rows(texts[i : i + 20000])
        if d.pg:  # COPY: a third of the time of an executemany of the same rows
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(f"COPY {into} FROM STDIN") as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
            continue
        conn.exec_driver_sql(f"INSERT INTO {into} VALUES ({', '.join([mark] * 11)})", rows)


def _fits(*xs: int) -> bool:
    return all(abs(x) < 1 << 62 for x in xs)


def _small(*xs: int) -> bool:
    return all(abs(x) < SMALL for x in xs)


def budget_exact(*thresholds: Fraction) -> tuple[int | None, ...]:
    """Numerators and denominators of the budget thresholds, or NULLs when too large to multiply."""
    out = tuple(x for f in thresholds for x in (f.numerator, f.denominator))
    return out if all(abs(x) < BUDGET_SMALL for x in out) else (None,) * len(out)


def value_rows(texts: Iterable[str]) -> list[tuple[object, ...]]:
    """What the pure core makes of each distinct text (kinds.ratio, kinds.date, the qualitative answer):
    (text, is number, float, numerator, denominator, small, positive, zero, is date, iso date, answer)."""
    out: list[tuple[object, ...]] = []
    for v in texts:
        r, day = ratio(v), date(v)
        n, dd = r if r is not None else (None, None)
        positive, zero = r is not None and r[0] > 0, r is not None and r[0] == 0  # before n may go
        f = None
        if n is not None and dd is not None:
            with contextlib.suppress(OverflowError):
                f = n / dd  # None beyond a double: such rows are left to the pure core
            if not _fits(n, dd):
                n = dd = None  # only plain floats (and the core) for numbers beyond 64 bits
        out.append(
            (
                v,
                int(r is not None),
                f,
                n,
                dd,
                int(n is not None and dd is not None and _small(n, dd)),
                int(positive),
                int(zero),
                int(day is not None),
                day.isoformat() if day else None,
                answer(v),
            )
        )
    return out

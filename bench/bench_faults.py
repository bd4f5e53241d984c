"""Faults: kill -9 at random moments of `monitor run` (evaluation, queueing, delivery) against a slow
SMTP server, and kill -9 of the running instance of two `monitor serve` on one PostgreSQL database
(each in its own UTS namespace, with its own host name). After each kill the work is recovered the
way an operator or the other instance would, and the benchmark counts, against what the outbox holds
(and what a clean run queues for the same data):

- expected: (Message-ID, recipient) pairs of every outbox message (recipients refused for good by the
  server excluded; this server refuses none);
- delivered: expected pairs the server accepted at least once;
- duplicated: extra copies of a pair the server accepted more than once (same Message-ID);
- lost: expected pairs never accepted, plus (kind, unit, recipient) a clean run queues that the
  outbox lacks after the recovery (a run that ended without its messages);
- in flight: outbox rows `sending` right after the kill, the bound of the duplicates;
- takeover (two instances): from the kill until the other instance owns the duty, and until every
  message is delivered.

Goals it prints: 0 lost in every case; duplicated messages at most the messages in flight at the kill
(and only those); takeover under 60 s. Exits 0 whether they are met or not (it is a measurement).

    .venv/bin/python bench/bench_faults.py [--kills 8] [--seed 1] [--projects 1500] [--delay-ms 30]
        [--database-url postgresql+psycopg://user:pw@127.0.0.1:5432/db] [--failovers 1] [--keep]

Case 1 runs on a SQLite file, and on PostgreSQL too with --database-url; case 2 needs --database-url
and `unshare` (root). Every process and scratch database it starts is removed at the end. All mail
goes to the benchmark's own server on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.policy
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CHECKPOINT = "2025-05"
RUN_DUTY = f"run:{CHECKPOINT}"
# The May run is due at 09:00 on June 11 (deadline May 31 + 10 days, run the day after): the service
# clock starts ten seconds before it.
CLOCK_START = "2025-06-11T08:59:50+08:00"
DONE = ("sent", "partial", "failed")
LOUD = "*** NOT met ***"


# --- the slow SMTP server -------------------------------------------------------------------------


class SlowRecorder:
    """aiosmtpd handler: takes `delay` seconds per DATA, then accepts the message for every recipient
    and counts each (Message-ID, recipient) it accepted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._lock = threading.Lock()
        self._copies: Counter[tuple[str, str]] = Counter()
        self._parser = BytesHeaderParser(policy=email.policy.compat32)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content or b""
        mid = norm_id(str(self._parser.parsebytes(raw).get("Message-ID") or ""))
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self._copies[(mid, rcpt.lower())] += 1
        return "250 2.0.0 OK: queued"

    def reset(self) -> None:
        with self._lock:
            self._copies.clear()

    def copies(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._copies)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def slow_server(delay: float) -> Iterator[tuple[SlowRecorder, int]]:
    recorder = SlowRecorder(delay)
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, server_hostname="localhost")
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def norm_id(mid: str) -> str:
    return mid.strip().strip("<>").strip()


# --- processes --------------------------------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any MONITOR_* override (database, SMTP host, failpoints)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


_started: list[subprocess.Popen[bytes]] = []


def spawn(
    cmd: list[str], log: Path, cwd: Path, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A process in a session of its own (so its helper processes can be ended with it)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=child_env(extra), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _started.append(proc)
    return proc


def end(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Kill `proc`'s process group (its own session: only what it started), then reap it."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def end_all() -> None:
    for proc in _started:
        if proc.poll() is None:
            end(proc)
        else:  # the leader is gone; its helpers may not be
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


def monitor(args: list[str], cfg: Path, log: Path, timeout: float = 300) -> int:
    """Run `monitor ARGS --config CFG` to the end (bounded); its exit status (-9 if it had to be killed)."""
    proc = spawn([PY, "-m", "monitor", *args, "--config", str(cfg)], log, cfg.parent)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        end(proc)
        with log.open("a") as out:
            out.write(f"\n[bench] {' '.join(args)} killed after {timeout:.0f} s\n")
        return -9


def tail(log: Path, lines: int = 6) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- databases --------------------------------------------------------------------------------------


def engine_for(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)


class Databases:
    """Scratch databases holding the imported sample: SQLite files copied from one imported file, or
    PostgreSQL databases created from an imported template database. All dropped by cleanup()."""

    def __init__(self, work: Path, base_url: str | None) -> None:
        self.work = work
        self.tag = f"bf_{uuid.uuid4().hex[:8]}"
        self.pg = base_url is not None
        self.admin_url = base_url
        self.created: list[str] = []
        if base_url is None:
            self.base = f"sqlite:///{work / 'base.db'}"
        else:
            self.base = self._create(f"{self.tag}_base")

    @property
    def kind(self) -> str:
        return "PostgreSQL" if self.pg else "SQLite"

    def _admin(self) -> Engine:
        assert self.admin_url is not None
        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def _create(self, name: str, template: str | None = None) -> str:
        assert self.admin_url is not None
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        admin = self._admin()
        try:
            for attempt in range(40):  # a template must have no session (autovacuum may hold one)
                try:
                    with admin.connect() as conn:
                        conn.execute(text(sql))
                    break
                except DBAPIError:
                    if attempt == 39:
                        raise
                    time.sleep(0.25)
        finally:
            admin.dispose()
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def load(self, data: Path, cfg: Path, log: Path) -> None:
        rc = monitor(["import", str(data)], cfg, log, timeout=600)
        if rc != 0:
            raise RuntimeError(f"monitor import failed ({rc}):\n{tail(log)}")

    def fresh(self, name: str) -> str:
        if self.pg:
            return self._create(f"{self.tag}_{name}", template=f"{self.tag}_base")
        src = self.work / "base.db"
        dst = self.work / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{src}{suffix}").exists():
                shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
        return f"sqlite:///{dst}"

    def drop(self, url: str) -> None:
        if not self.pg:
            path = make_url(url).database or ""
            for suffix in ("", "-wal", "-shm"):
                with suppress(OSError):
                    os.unlink(f"{path}{suffix}")
            return
        name = make_url(url).database or ""
        admin = self._admin()
        try:
            for attempt in range(40):
                try:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    break
                except DBAPIError:
                    if attempt == 39:
                        raise
                    time.sleep(0.25)
        finally:
            admin.dispose()
        with suppress(ValueError):
            self.created.remove(name)

    def cleanup(self) -> None:
        if not self.pg:
            return
        for name in list(reversed(self.created)):
            try:
                self.drop(make_url(self.base).set(database=name).render_as_string(hide_password=False))
            except Exception as exc:
                print(f"  could not drop scratch database {name}: {exc}", file=sys.stderr)


def write_config(folder: Path, name: str, url: str, port: int) -> Path:
    """A deployment's config.yaml: the database, SMTP to the benchmark's server on 127.0.0.1; every
    other key (leases, intervals, retries, connections) at its shipped default."""
    cfg = folder / f"config-{name}.yaml"
    cfg.write_text(
        f"database:\n  url: {url}\nrules_dir: rules\ntemplates_dir: templates\n"
        f"mail:\n  mode: smtp\n  file_dir: outbox-{name}\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n",
        encoding="utf-8",
    )
    return cfg


@dataclass
class State:
    """What the database says: each outbox row, the runs of the checkpoint, refused recipients."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # statuses of the checkpoint's runs, oldest first
    refused: set[tuple[str, str]] = field(default_factory=set)  # (Message-ID, recipient) failed for good
    event: tuple[str, str] | None = None  # the run duty: (status, owner)

    def status(self, *wanted: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] in wanted]

    @property
    def settled(self) -> bool:
        return bool(self.rows) and not self.status("pending", "sending")

    @property
    def finished(self) -> bool:
        return "finished" in self.runs

    def pairs(self) -> set[tuple[str, str]]:
        return {(r["mid"], a) for r in self.rows for a in r["to"]} - self.refused

    def triples(self) -> Counter[tuple[str, str, str]]:
        """(kind, unit, recipient) of every message: what a run queued, Message-IDs aside."""
        return Counter((r["kind"], r["unit"], a) for r in self.rows for a in r["to"])

    def messages(self) -> Counter[tuple[str, str]]:
        return Counter((r["kind"], r["unit"]) for r in self.rows)

    def outbox_line(self) -> str:
        c = Counter(r["status"] for r in self.rows)
        return ", ".join(f"{k} {c[k]}" for k in ("pending", "sending", *DONE) if c[k]) or "empty"


def read_state(url: str) -> State:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            names = set(engine.dialect.get_table_names(conn))
            st = State()
            if "outbox" in names:
                q = "SELECT id, message_id, kind, unit_code, recipients, status FROM outbox ORDER BY id"
                for r in conn.execute(text(q)):
                    to = tuple(
                        sorted({a.strip().lower() for a in (r.recipients or "").split(";") if a.strip()})
                    )
                    st.rows.append(
                        {
                            "id": r.id,
                            "mid": norm_id(r.message_id),
                            "kind": r.kind,
                            "unit": r.unit_code or "",
                            "to": to,
                            "status": r.status,
                        }
                    )
            if "outbox_recipient" in names:
                q = (
                    "SELECT o.message_id, r.address FROM outbox_recipient r JOIN outbox o"
                    " ON o.id = r.outbox_id WHERE r.status = 'failed'"
                )
                st.refused = {(norm_id(m), a.lower()) for m, a in conn.execute(text(q))}
            if "run" in names:
                q = "SELECT status FROM run WHERE checkpoint = :cp ORDER BY id"
                st.runs = [s for (s,) in conn.execute(text(q), {"cp": CHECKPOINT})]
            if "scheduled_event" in names:
                q = "SELECT status, owner FROM scheduled_event WHERE key = :k"
                row = conn.execute(text(q), {"k": RUN_DUTY}).first()
                st.event = None if row is None else (str(row[0]), str(row[1] or ""))
            return st
    finally:
        engine.dispose()


# --- counting ----------------------------------------------------------------------------------------


@dataclass
class Count:
    messages: int
    expected: int  # (Message-ID, recipient) pairs
    delivered: int
    duplicated: int  # extra copies of pairs accepted more than once
    dup_messages: int  # messages with at least one duplicated pair
    dup_outside: int  # of those, messages that were not `sending` at the kill
    lost: int
    missing: int  # (kind, unit, recipient) of the clean run absent from the outbox (counted in lost)
    queued_twice: int  # messages beyond the clean run's per (kind, unit)
    stray: int  # pairs received that no outbox message names
    lost_examples: list[str] = field(default_factory=list)


def count(
    final: State,
    copies: Counter[tuple[str, str]],
    clean: State | None,
    in_flight: set[str],
    once: tuple[str, ...] | None = None,
) -> Count:
    """The figures of one round from the final outbox, what the server accepted, the clean run's
    outbox and the Message-IDs in flight at the kill. `once`: the kinds a (kind, unit) is queued once
    for (None: all; the service's reminder rounds queue reminders of their own)."""
    expected = final.pairs()
    delivered = {p for p in expected if copies[p] > 0}
    dups = {p: n - 1 for p, n in copies.items() if n > 1}
    dup_mids = {mid for mid, _ in dups}
    never = sorted(expected - delivered)
    missing: list[tuple[str, str, str]] = []
    queued_twice = 0
    if clean is not None:
        have = final.triples()
        missing = [t for t in clean.triples() if have[t] == 0]
        theirs = clean.messages()
        queued_twice = sum(
            max(n - theirs[k], 0)
            for k, n in final.messages().items()
            if theirs[k] and (once is None or k[0] in once)
        )
    named = {(r["mid"], a) for r in final.rows for a in r["to"]}
    examples = [f"{mid} → {rcpt}" for mid, rcpt in never[:3]] + [
        f"{k}/{u} → {a} (never queued)" for k, u, a in missing[:3]
    ]
    return Count(
        messages=len(final.rows),
        expected=len(expected),
        delivered=len(delivered),
        duplicated=sum(dups.values()),
        dup_messages=len(dup_mids),
        dup_outside=len(dup_mids - in_flight),
        lost=len(never) + len(missing),
        missing=len(missing),
        queued_twice=queued_twice,
        stray=sum(1 for p in copies if p not in named),
        lost_examples=examples,
    )


# --- case 1: kill -9 of `monitor run` ----------------------------------------------------------------


@dataclass
class Round:
    label: str  # "t=3.2s" or the failpoint's name
    killed: bool  # False: the process ended before the kill (or the failpoint was not reached)
    at_kill: str  # the run's status and the outbox at the kill
    in_flight: int
    steps: str  # the recovery: send / run, in order
    recovery: float  # seconds
    settled: bool  # the outbox ended with nothing pending or sending, and the run finished
    c: Count


def clean_run(db: Databases, work: Path, server: SlowRecorder, port: int) -> tuple[float, State]:
    """One run + delivery to the end on a fresh copy: how long it takes, and what it queues."""
    url = db.fresh("clean")
    try:
        cfg = write_config(work, "clean", url, port)
        server.reset()
        t0 = time.monotonic()
        rc = monitor(["run", "--checkpoint", CHECKPOINT], cfg, work / "clean.log")
        seconds = time.monotonic() - t0
        if rc != 0:
            raise RuntimeError(f"the clean run failed ({rc}):\n{tail(work / 'clean.log')}")
        st = read_state(url)
        c = count(st, server.copies(), None, set())
        if not st.settled or c.lost or c.duplicated:
            raise RuntimeError(f"the clean run did not deliver everything once: {c}")
        return seconds, st
    finally:
        db.drop(url)


def recover(url: str, cfg: Path, log: Path) -> tuple[str, bool]:
    """What an operator does after the crash: `monitor send` (completes a run left without its
    messages, releases the dead process's claims, delivers); `monitor run` again if no run of the
    checkpoint finished; until nothing is pending or sending. Bounded: four turns."""
    steps: list[str] = []
    for _ in range(4):
        rc = monitor(["send"], cfg, log)
        steps.append("send" if rc == 0 else f"send({rc})")
        st = read_state(url)
        if not st.finished:
            rc = monitor(["run", "--checkpoint", CHECKPOINT], cfg, log)
            steps.append("run" if rc == 0 else f"run({rc})")
            st = read_state(url)
        if st.finished and st.settled:
            return "+".join(steps), True
    return "+".join(steps), False


def kill_round(
    db: Databases,
    work: Path,
    server: SlowRecorder,
    port: int,
    clean: State,
    name: str,
    *,
    after: float | None = None,
    failpoint: str | None = None,
) -> Round:
    url = db.fresh(name)
    try:
        cfg = write_config(work, name, url, port)
        log = work / f"{name}.log"
        server.reset()
        extra = {"MONITOR_FAILPOINTS": failpoint} if failpoint else None
        cmd = [PY, "-m", "monitor", "run", "--checkpoint", CHECKPOINT, "--config", str(cfg)]
        proc = spawn(cmd, log, work, extra)
        killed = False
        try:
            proc.wait(timeout=after if after is not None else 300)
            killed = failpoint is not None and proc.returncode == -signal.SIGKILL
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # the fault: the process alone, at once
            proc.wait()
            killed = failpoint is None
        at = read_state(url)  # right after the kill: nothing has run since
        end(proc)  # then its helper processes, if any were left
        in_flight = {r["mid"] for r in at.status("sending")}
        run_status = at.runs[-1] if at.runs else "none"
        at_kill = f"run {run_status}; outbox {at.outbox_line()}"
        t0 = time.monotonic()
        steps, settled = recover(url, cfg, log)
        recovery = time.monotonic() - t0
        time.sleep(0.2)  # a DATA the killed process left on the wire ends within the server's delay
        final = read_state(url)
        c = count(final, server.copies(), clean, in_flight)
        label = f"t={after:.1f}s" if after is not None else str(failpoint)
        return Round(label, killed, at_kill, len(in_flight), steps, recovery, settled, c)
    finally:
        db.drop(url)


def failpoints_in_code() -> list[str]:
    """The failpoints `monitor run` can reach (monitor/*.py: failpoints.hit("run:…"/"send:…"))."""
    found: set[str] = set()
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        for m in re.finditer(r"failpoints\.hit\(\s*[\"']([^\"']+)[\"']", path.read_text(encoding="utf-8")):
            if m.group(1).split(":")[0] in ("run", "send", "deliver", "queue"):
                found.add(m.group(1))
    return sorted(found)


def print_rounds(rounds: list[Round]) -> None:
    print(
        f"  {'kill at':<26} {'killed':>6}  {'state at the kill':<52} {'in flight':>9} {'msgs':>5} "
        f"{'expected':>8} {'delivered':>9} {'dup':>4} {'dup msgs':>8} {'lost':>4}  {'recovery':<18}"
    )
    for r in rounds:
        c = r.c
        rec = f"{r.steps} {r.recovery:.1f}s" + ("" if r.settled else " UNSETTLED")
        print(
            f"  {r.label:<26} {'yes' if r.killed else 'no':>6}  {r.at_kill:<52} {r.in_flight:>9} "
            f"{c.messages:>5} {c.expected:>8} {c.delivered:>9} {c.duplicated:>4} {c.dup_messages:>8} "
            f"{c.lost:>4}  {rec:<18}"
        )
        notes = []
        if c.dup_outside:
            notes.append(f"{c.dup_outside} duplicated message(s) were not in flight at the kill")
        if c.queued_twice:
            notes.append(f"{c.queued_twice} message(s) queued again for a (kind, unit) already queued")
        if c.missing:
            notes.append(f"{c.missing} recipient(s) of the clean run's messages never queued")
        if c.stray:
            notes.append(f"{c.stray} pair(s) received that no outbox message names")
        if c.lost_examples:
            notes.append("lost e.g. " + "; ".join(c.lost_examples))
        for n in notes:
            print(f"  {'':<26} {'':>6}  ! {n}")
    killed = [r for r in rounds if r.killed]
    tot = [r.c for r in rounds]
    print(
        f"  totals over {len(rounds)} round(s) ({len(killed)} killed): "
        f"expected {sum(c.expected for c in tot)}, "
        f"delivered {sum(c.delivered for c in tot)}, duplicated {sum(c.duplicated for c in tot)} "
        f"({sum(c.dup_messages for c in tot)} message(s), {sum(r.in_flight for r in rounds)} in flight at "
        f"the kills), lost {sum(c.lost for c in tot)}"
    )
    if rounds:
        print(
            f"  medians: in flight {statistics.median(r.in_flight for r in rounds):g}, duplicated messages "
            f"{statistics.median(c.dup_messages for c in tot):g}, recovery "
            f"{statistics.median(r.recovery for r in rounds):.1f} s"
        )


def case_kills(
    db: Databases, work: Path, server: SlowRecorder, port: int, args: argparse.Namespace, rng: random.Random
) -> tuple[list[Round], float, State]:
    seconds, clean = clean_run(db, work, server, port)
    pairs = len(clean.pairs())
    multi = sum(1 for r in clean.rows if len(r["to"]) > 1)
    print(
        f"  clean run + delivery: {seconds:.1f} s (process start to exit); it queues {len(clean.rows)} "
        f"messages ({multi} with several recipients), {pairs} (Message-ID, recipient) pairs"
    )
    rounds = []
    for i in range(args.kills):
        after = rng.uniform(0, seconds)
        rounds.append(kill_round(db, work, server, port, clean, f"k{i}", after=after))
        print(f"    round {i + 1}/{args.kills}: killed at {after:.1f} s, {rounds[-1].at_kill}", flush=True)
    if not args.no_failpoints:
        for j, fp in enumerate(failpoints_in_code()):
            rounds.append(kill_round(db, work, server, port, clean, f"f{j}", failpoint=fp))
            print(f"    failpoint {fp}: {rounds[-1].at_kill}", flush=True)
    return rounds, seconds, clean


# --- case 2: kill -9 of the running instance of two ---------------------------------------------------


@dataclass
class Failover:
    victim: str
    at_kill: str
    in_flight: int
    duty: float | None  # seconds from the kill until the other instance owned the duty
    delivered_at: float | None  # ... until every message was delivered (and the duty finished)
    waited: float
    c: Count
    note: str = ""


def serve_cmd(cfg: Path, host: str) -> list[str]:
    """`monitor serve` in a UTS namespace of its own named `host`: unshare and sh exec, so the pid
    Popen gives is the service's python process."""
    inner = (
        f"hostname {host} && exec {PY} -m monitor serve --config {cfg} --clock-start {CLOCK_START} "
        f"--instance {host}"
    )
    return ["unshare", "--uts", "sh", "-c", inner]


def failover_round(
    db: Databases,
    work: Path,
    server: SlowRecorder,
    port: int,
    clean: State,
    name: str,
    timeout: float,
    rng: random.Random,
) -> Failover:
    url = db.fresh(name)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        cfg = write_config(work, name, url, port)
        server.reset()
        for host in ("host-a", "host-b"):
            procs[host] = spawn(serve_cmd(cfg, host), work / f"{name}-{host}.log", work)
        # wait until one instance is delivering the run: the duty running, outbox rows sending
        deadline = time.monotonic() + 180
        owner = ""
        while time.monotonic() < deadline:
            st = read_state(url)
            if st.event and st.event[0] == "running" and st.status("sending"):
                owner = st.event[1]
                break
            if st.event and st.event[0] != "running":
                break
            if any(p.poll() is not None for p in procs.values()):
                break
            time.sleep(0.1)
        if not owner:
            logs = "\n".join(f"--- {h}:\n{tail(work / f'{name}-{h}.log')}" for h in procs)
            raise RuntimeError(f"never saw an instance delivering the run (duty: {st.event}):\n{logs}")
        time.sleep(rng.uniform(0, 0.5))  # a random moment of the delivery
        victim = owner.split(":")[0]
        proc = procs[victim]
        os.kill(proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        proc.wait()
        at = read_state(url)
        end(proc)
        in_flight = {r["mid"] for r in at.status("sending")}
        at_kill = f"duty {at.event[0] if at.event else '-'} by {owner}; outbox {at.outbox_line()}"
        print(f"    killed {owner} (pid {proc.pid}): {at_kill}", flush=True)
        duty = delivered = None
        survivor = procs["host-b" if victim == "host-a" else "host-a"]
        note = ""
        while time.monotonic() - t_kill < timeout:
            st = read_state(url)
            now = time.monotonic() - t_kill
            if duty is None and st.event and st.event[1] and st.event[1] != owner:
                duty = now
                print(f"    duty taken over by {st.event[1]} after {duty:.1f} s", flush=True)
            expected = st.pairs()
            copies = server.copies()
            if (
                delivered is None
                and st.settled
                and st.event
                and st.event[0] == "finished"
                and all(copies[p] for p in expected)
            ):
                delivered = now
                print(f"    every message delivered, duty finished, after {delivered:.1f} s", flush=True)
            if duty is not None and delivered is not None:
                break
            if survivor.poll() is not None:
                note = f"the surviving instance exited ({survivor.returncode})"
                break
            time.sleep(0.25)
        waited = time.monotonic() - t_kill
        final = read_state(url)
        c = count(final, server.copies(), clean, in_flight, once=("warning", "summary", "all_clear"))
        if not note and (duty is None or delivered is None):
            note = (
                f"not done {timeout:.0f} s after the kill: duty {final.event}, outbox {final.outbox_line()}"
            )
        return Failover(owner, at_kill, len(in_flight), duty, delivered, waited, c, note)
    finally:
        for p in procs.values():
            if p.poll() is None:
                end(p, signal.SIGTERM)
            end(p)
        db.drop(url)


def print_failovers(fos: list[Failover]) -> None:
    print(
        f"  {'killed instance':<22} {'state at the kill':<58} {'in flight':>9} {'msgs':>5} {'expected':>8} "
        f"{'delivered':>9} {'dup':>4} {'dup msgs':>8} {'lost':>4} {'duty taken':>10} {'all delivered':>13}"
    )

    def secs(s: float | None, waited: float) -> str:
        return f"{s:.1f} s" if s is not None else f"> {waited:.0f} s"

    for f in fos:
        c = f.c
        print(
            f"  {f.victim:<22} {f.at_kill:<58} {f.in_flight:>9} {c.messages:>5} {c.expected:>8} "
            f"{c.delivered:>9} {c.duplicated:>4} {c.dup_messages:>8} {c.lost:>4} "
            f"{secs(f.duty, f.waited):>10} {secs(f.delivered_at, f.waited):>13}"
        )
        if f.note:
            print(f"  ! {f.note}")
        if c.dup_outside:
            print(f"  ! {c.dup_outside} duplicated message(s) were not in flight at the kill")
        if c.missing:
            print(f"  ! {c.missing} recipient(s) of the clean run's messages never queued")
        if c.lost_examples:
            print("  ! lost e.g. " + "; ".join(c.lost_examples))
    if len(fos) > 1:
        taken = [f.duty for f in fos if f.duty is not None]
        whole = [f.delivered_at for f in fos if f.delivered_at is not None]
        print(
            f"  medians over {len(fos)} rounds: duty taken "
            + (f"{statistics.median(taken):.1f} s" if taken else "-")
            + ", all delivered "
            + (f"{statistics.median(whole):.1f} s" if whole else "-")
        )


# --- main --------------------------------------------------------------------------------------------


def goal(text_: str, met: bool, figure: str) -> None:
    print(f"  {'met' if met else LOUD:<15}  {text_}: {figure}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=8, help="kill -9 rounds at random moments, per database")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--projects", type=int, default=1500, help="sample size (1500: ~320 messages)")
    ap.add_argument("--delay-ms", type=float, default=30, help="the SMTP server's time per DATA")
    ap.add_argument(
        "--database-url", default=None, help="PostgreSQL (admin) URL: case 1 there too, and case 2"
    )
    ap.add_argument("--failovers", type=int, default=1, help="two-instance rounds (PostgreSQL)")
    ap.add_argument("--failover-timeout", type=float, default=420, help="seconds to wait after the kill")
    ap.add_argument("--no-failpoints", action="store_true", help="skip the rounds killed at failpoints")
    ap.add_argument("--no-sqlite", action="store_true", help="case 1 on PostgreSQL only")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, configs)")
    args = ap.parse_args()

    from monitor.config.settings import RetryConfig, ScheduleConfig, SmtpConfig

    sched, retry, smtp = ScheduleConfig(), RetryConfig(), SmtpConfig()
    rng = random.Random(args.seed)
    started = time.monotonic()
    print(
        f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{dt.date.today().isoformat()}; seed {args.seed}"
    )
    print(
        f"shipped defaults used: schedule.lease_seconds {sched.lease_seconds:g}, reconcile_seconds "
        f"{sched.reconcile_seconds:g}, delivery_interval_minutes {sched.delivery_interval_minutes:g}; "
        f"mail.retry.lease_seconds {retry.lease_seconds:g}; mail.smtp.connections {smtp.connections}"
    )
    print(f"SMTP server: aiosmtpd on 127.0.0.1, {args.delay_ms:g} ms per DATA, refuses nobody\n")

    work = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    dbs: list[Databases] = []
    rounds: dict[str, list[Round]] = {}
    fos: list[Failover] = []
    failed: list[str] = []  # rounds that could not be measured
    try:
        shutil.copytree(ROOT / "rules", work / "rules")
        shutil.copytree(ROOT / "templates", work / "templates")
        cmd = [PY, "-m", "monitor", "sample", "--out", str(work / "data"), "--projects", str(args.projects)]
        subprocess.run(
            [*cmd, "--seed", str(args.seed), "--may-only"], check=True, capture_output=True, env=child_env()
        )
        with slow_server(args.delay_ms / 1000) as (server, port):
            kinds: list[str | None] = [] if args.no_sqlite else [None]
            if args.database_url:
                kinds.append(args.database_url)
            clean_pg: State | None = None
            pg: Databases | None = None
            for base in kinds:
                db = Databases(work, base)
                dbs.append(db)
                db.load(
                    work / "data", write_config(work, f"base-{db.kind}", db.base, port), work / "import.log"
                )
                print(f"case 1, {db.kind}: {args.kills} kill -9 of `monitor run --checkpoint {CHECKPOINT}` "
                      f"at random moments of run + delivery ({args.projects} projects)")  # fmt: skip
                done, _, clean = case_kills(db, work, server, port, args, rng)
                rounds[db.kind] = done
                print_rounds(done)
                print()
                if db.pg:
                    pg, clean_pg = db, clean
            if args.database_url and args.failovers:
                if shutil.which("unshare") is None:
                    print("case 2 skipped: no `unshare`")
                else:
                    assert pg is not None and clean_pg is not None
                    print(
                        "case 2, PostgreSQL: two `monitor serve` (host-a, host-b, each in its own UTS "
                        "namespace); kill -9 of the one delivering the May run"
                    )
                    for i in range(args.failovers):
                        try:
                            fos.append(
                                failover_round(
                                    pg, work, server, port, clean_pg, f"fo{i}", args.failover_timeout, rng
                                )
                            )
                        except RuntimeError as exc:
                            failed.append(f"failover round {i + 1}: {exc}")
                            print(f"  {LOUD} failover round {i + 1} could not be measured: {exc}")
                    print_failovers(fos)
                    print()
    finally:
        end_all()
        for db in dbs:
            db.cleanup()
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    every = [r for rs in rounds.values() for r in rs]
    counts = [r.c for r in every] + [f.c for f in fos]
    print(f"goals (issue 16), {time.monotonic() - started:.0f} s in all:")
    lost = sum(c.lost for c in counts)
    goal("0 lost in every case", lost == 0, f"{lost} lost over {len(counts)} round(s)")
    over = [r for r in every if r.c.dup_messages > r.in_flight] + [
        f for f in fos if f.c.dup_messages > f.in_flight
    ]
    outside = sum(c.dup_outside for c in counts)
    dup = sum(c.dup_messages for c in counts)
    worst = max((c.dup_messages for c in counts), default=0)
    flight = sum(r.in_flight for r in every) + sum(f.in_flight for f in fos)
    goal(
        "duplicates at most the messages in flight at the kill",
        not over and outside == 0,
        f"{dup} duplicated message(s) ({worst} at most in one kill) / {flight} in flight; "
        f"{len(over)} round(s) over the bound, {outside} duplicated message(s) not in flight",
    )
    twice = sum(c.queued_twice for c in counts)
    goal("no message queued twice (same kind and unit, new Message-ID)", twice == 0, f"{twice}")
    unsettled = [r.label for r in every if not r.settled]
    goal("every round recovered (nothing left pending/sending)", not unsettled, ", ".join(unsettled) or "all")
    if fos:
        worst_duty = max((f.duty if f.duty is not None else f.waited + 1e9) for f in fos)
        worst_all = max((f.delivered_at if f.delivered_at is not None else f.waited + 1e9) for f in fos)

        def show(s: float) -> str:
            return f"{s:.1f} s" if s < 1e9 else "never (within the wait)"

        goal("takeover under 60 s: the duty owned by the other instance", worst_duty < 60, show(worst_duty))
        goal("takeover under 60 s: every message delivered", worst_all < 60, show(worst_all))
    if failed:
        goal("every failover round measured", False, f"{len(failed)} not (see above)")
    elif not fos:
        why = "--failovers 0" if args.database_url else "needs --database-url, PostgreSQL"
        print(f"  takeover under 60 s: not measured ({why})")


if __name__ == "__main__":
    main()

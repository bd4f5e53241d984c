"""What a rule change would do, before it takes effect: one checkpoint's stored inputs and two rule
sets in (the rules in force, or those a run used, against a candidate folder or file); the light
transitions, the changed projects and the e-mails that would differ out. Writes nothing. Also the
rule sources and versions (`rules history`) that preview and explain choose between.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from monitor.config.settings import Settings
from monitor.core.model import Checkpoint, Inputs, ProjectResult
from monitor.core.rows import RunRecord, StoredResult
from monitor.core.workdays import as_utc, local_time
from monitor.db.engine import RULE_VERSION
from monitor.db.inputs import load_inputs
from monitor.db.reads import result_lights
from monitor.db.results import runs as stored_runs
from monitor.deliver import outbox
from monitor.evaluate.core import evaluate
from monitor.notify import decide as notify
from monitor.notify import messages
from monitor.rules.load import RuleSet
from monitor.rules.policy import Policies
from monitor.rules.sources import RuleSource

KEYS = ("green", "yellow", "red", "not_reported")


@dataclass(frozen=True)
class Version:
    hash: str
    first_seen: dt.datetime
    files: tuple[str, ...]
    runs: tuple[RunRecord, ...]


def history(conn: Connection) -> list[Version]:
    """Every stored rule version, oldest first, with the runs that used it."""
    by_hash: dict[str, list[RunRecord]] = {}
    for run in stored_runs(conn):
        by_hash.setdefault(run["rules_hash"], []).append(run)
    rows = conn.execute(select(RULE_VERSION).order_by(RULE_VERSION.c.created_at))
    return [
        Version(
            r.hash,
            as_utc(r.created_at),
            tuple(sorted(json.loads(r.content))),
            tuple(by_hash.get(r.hash, ())),
        )
        for r in rows
    ]


def history_lines(
    versions: Sequence[Version], current: str | None, time_zone: str = "Asia/Shanghai"
) -> list[str]:
    """`monitor rules history` output: one block per version, the runs that used it indented (times
    in `time_zone`)."""
    if not versions:
        return ["no rule versions stored yet: every `monitor run` stores the rules it used"]
    lines = []
    for i, v in enumerate(versions, 1):
        mark = "  ← the rules folder now" if v.hash == current else ""
        seen = local_time(v.first_seen, time_zone)
        lines.append(f"version {i}  {v.hash[:12]}  first seen {seen}  files: {', '.join(v.files)}{mark}")
        for run in v.runs:
            when = local_time(run["started_at"], time_zone)
            lines.append(f"    run {run['id']}  {run['checkpoint']}  {when}  {run['status']}")
        if not v.runs:
            lines.append("    (no runs)")
    if current is not None and current not in {v.hash for v in versions}:
        lines.append(f"the rules folder now ({current[:12]}) has not been used by any run yet")
    return lines


# --- evaluating twice ---------------------------------------------------------------------------


def result_row(r: ProjectResult) -> StoredResult:
    """A result in the shape db.reads.load_results gives (what notify.decide and views read)."""
    return {
        "project_code": r.project_code,
        "project_name": r.project_name,
        "unit_code": r.unit_code,
        "checkpoint": r.checkpoint,
        "status": r.status.value,
        "budget_light": r.budget_light.value if r.budget_light else None,
        "target_light": r.target_light.value if r.target_light else None,
        "light": r.light.value if r.light else None,
        "execution_rate": r.execution_rate,
        "time_progress": r.time_progress,
        "budget": r.budget,
        "executed": r.executed,
        "reasons": list(r.reasons),
        "indicators": [
            {
                "indicator_code": i.indicator_code,
                "name": i.name,
                "kind": str(i.kind),  # str() of a StrEnum is its value, and cheaper than .value
                "light": str(i.light),
                "ratio": i.ratio,
                "reason": i.reason,
                "target": i.target,
                "actual": i.actual,
                "measure_unit": i.measure_unit,
                "direction": i.direction,
            }
            for i in r.indicators
        ],
    }


def light_key(row: StoredResult) -> str:
    return str(row["light"]) if row["light"] else "not_reported"


def _lights(row: StoredResult) -> tuple[object, ...]:
    return (
        row["light"],
        row["budget_light"],
        row["target_light"],
        tuple(i["light"] for i in row["indicators"]),
    )


@dataclass(frozen=True)
class MailChange:
    kind: str  # warning / reminder / overdue / summary / all_clear
    unit_code: str | None
    unit_name: str
    change: str  # new / gone / changed
    detail: str


@dataclass
class Preview:
    checkpoint: str
    before: RuleSource
    after: RuleSource
    projects: int
    transitions: Counter[tuple[str, str]]
    changed: list[tuple[StoredResult, StoredResult]]  # (before, after) rows of changed projects
    mail: list[MailChange] = field(default_factory=list)
    messages_before: int = 0
    messages_after: int = 0
    rerun_messages: int = 0  # what a re-run with the candidate would queue now, given the outbox


def preview(
    engine: Engine,
    settings: Settings,
    checkpoint: Checkpoint,
    before: RuleSource,
    after: RuleSource,
    now: dt.datetime,
) -> Preview:
    """Evaluate the stored inputs of `checkpoint` with both rule sets and compare; writes nothing."""

    cp = str(checkpoint)
    previous_cp = checkpoint.previous_in(list(settings.checkpoint_months))
    with engine.connect() as conn:
        inputs = load_inputs(conn, cp)
        previous = result_lights(conn, str(previous_cp)) if previous_cp else {}
        sent = outbox.sent_snapshots(conn, cp)
    rows_before = rows_of(before.rules, checkpoint, inputs)
    rows_after = rows_of(after.rules, checkpoint, inputs)
    out = Preview(cp, before, after, len(inputs.projects), Counter(), [])
    for b, a in zip(rows_before, rows_after, strict=True):
        out.transitions[(light_key(b), light_key(a))] += 1
        if _lights(b) != _lights(a):
            out.changed.append((b, a))
    out.changed.sort(key=lambda ba: ba[0]["light"] == ba[1]["light"])  # project light changes first
    decide = MailDecision(
        cp,
        inputs,
        previous,
        str(previous_cp) if previous_cp and previous else None,
        messages.options(settings, checkpoint, now),
    )
    notices_before, notices_after = decide(rows_before, {}), decide(rows_after, {})
    out.mail = mail_changes(notices_before, notices_after, inputs)
    out.messages_before, out.messages_after = len(notices_before), len(notices_after)
    out.rerun_messages = len(decide(rows_after, sent))
    return out


def rows_of(rules: RuleSet, checkpoint: Checkpoint, inputs: Inputs) -> list[StoredResult]:
    return [result_row(r) for r in evaluate(Policies(rules), checkpoint, inputs)]


@dataclass(frozen=True)
class MailDecision:
    """notify.decide with everything but the results and the outbox fixed, so both sides compare."""

    checkpoint: str
    inputs: Inputs
    previous: Mapping[str, str | None]
    previous_checkpoint: str | None
    options: notify.Options

    def __call__(
        self, rows: Sequence[StoredResult], sent: Mapping[tuple[str, str | None], Mapping[str, Any]]
    ) -> list[notify.Notice]:
        return notify.decide(
            self.checkpoint,
            rows,
            self.inputs.units,
            self.previous,
            self.previous_checkpoint,
            sent,
            self.options,
        )


def mail_changes(
    before: Sequence[notify.Notice], after: Sequence[notify.Notice], inputs: Inputs
) -> list[MailChange]:
    """Per (kind, unit): a message that appears, disappears or states something else."""
    b = {(n.kind, n.unit_code): n.snapshot for n in before}
    a = {(n.kind, n.unit_code): n.snapshot for n in after}
    out = []
    for key in sorted(set(b) | set(a), key=lambda k: (k[1] or "", k[0])):
        kind, unit = key
        name = (
            inputs.units[unit].name if unit and unit in inputs.units else ("bureau" if unit is None else unit)
        )
        if key not in b:
            out.append(MailChange(kind, unit, name, "new", describe(kind, None, a[key])))
        elif key not in a:
            out.append(MailChange(kind, unit, name, "gone", describe(kind, b[key], None)))
        elif a[key] != b[key]:
            out.append(MailChange(kind, unit, name, "changed", describe(kind, b[key], a[key])))
    return out


def describe(kind: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """What differs in a message, in a few words: for a digest, each project whose entry changes."""
    if kind != "warning":
        return "content differs" if before and after else ""
    b, a = before or {}, after or {}
    return ", ".join(
        entry_change(code, b.get(code), a.get(code))
        for code in sorted(set(b) | set(a))
        if b.get(code) != a.get(code)
    )


def entry_change(code: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """One digest entry before → after: `CODE yellow→green`, or `CODE red: budget yellow→green`."""
    lb = before["light"] if before else "green"
    la = after["light"] if after else "green"
    if lb != la or not before or not after:
        return f"{code} {lb}→{la}"
    parts = [
        f"{k} {before[k] or '-'}→{after[k] or '-'}" for k in ("budget", "target") if before[k] != after[k]
    ]
    bi, ai = before["indicators"], after["indicators"]
    parts += [
        f"{i} {bi.get(i, 'green')}→{ai.get(i, 'green')}"
        for i in sorted(set(bi) | set(ai))
        if bi.get(i) != ai.get(i)
    ]
    return f"{code} {la}: " + ", ".join(parts)


# --- output ---------------------------------------------------------------------------------------


def as_json(p: Preview) -> dict[str, Any]:
    """The stable JSON shape of `monitor preview --format json`."""
    return {
        "checkpoint": p.checkpoint,
        "before": {"rules": p.before.label, "hash": p.before.rules.hash},
        "after": {"rules": p.after.label, "hash": p.after.rules.hash},
        "projects": p.projects,
        "matrix": {b: {a: p.transitions[(b, a)] for a in KEYS} for b in KEYS},
        "transitions": [
            {"from": b, "to": a, "count": n} for (b, a), n in sorted(p.transitions.items()) if b != a
        ],
        "changed": [
            {
                "project_code": a["project_code"],
                "project_name": a["project_name"],
                "unit_code": a["unit_code"],
                "before": _brief(b),
                "after": _brief(a),
            }
            for b, a in p.changed
        ],
        "mail": [m.__dict__ for m in p.mail],
        "messages": {
            "before": p.messages_before,
            "after": p.messages_after,
            "difference": p.messages_after - p.messages_before,
            "rerun_would_queue": p.rerun_messages,
        },
    }


def _brief(row: StoredResult) -> dict[str, Any]:
    return {
        "light": row["light"],
        "budget_light": row["budget_light"],
        "target_light": row["target_light"],
        "indicators": {i["indicator_code"]: i["light"] for i in row["indicators"]},
        "reasons": row["reasons"],
    }


def as_text(p: Preview, limit: int = 200) -> list[str]:
    """The table format: header, transition matrix, changed projects, e-mails, message counts."""
    lines = [
        f"preview of {p.checkpoint}: {p.projects} project(s), stored inputs, nothing written",
        f"  before: {p.before.label}  {p.before.rules.hash[:12]}",
        f"  after:  {p.after.label}  {p.after.rules.hash[:12]}",
        "",
        *matrix_lines(p.transitions),
        "",
    ]
    moves = [f"{b}→{a} {n}" for (b, a), n in sorted(p.transitions.items()) if b != a]
    lines.append("project lights that change: " + (", ".join(moves) if moves else "none"))
    lines += changed_lines(p.changed, limit)
    lines += ["", *mail_lines(p)]
    return lines


def matrix_lines(transitions: Counter[tuple[str, str]]) -> list[str]:
    width = 14
    head = "before \\ after".ljust(width) + "".join(k.rjust(width) for k in KEYS)
    rows = [b.ljust(width) + "".join(str(transitions[(b, a)]).rjust(width) for a in KEYS) for b in KEYS]
    return [head, *rows]


def changed_lines(changed: Sequence[tuple[StoredResult, StoredResult]], limit: int) -> list[str]:
    if not changed:
        return ["no project changes any light"]
    out = [f"changed projects ({len(changed)}): light, budget, target before → after; reason after"]
    for b, a in changed[:limit]:
        trio = " ".join(
            f"{k}:{x or '-'}→{y or '-'}"
            for k, x, y in (
                ("light", b["light"], a["light"]),
                ("budget", b["budget_light"], a["budget_light"]),
                ("target", b["target_light"], a["target_light"]),
            )
        )
        out.append(f"  {a['project_code']}  {a['unit_code']}  {a['project_name']}  {trio}")
        out.append(f"      {a['reasons'][0] if a['reasons'] else ''}")
    if len(changed) > limit:
        out.append(f"  … and {len(changed) - limit} more (use --format json for all)")
    return out


def mail_lines(p: Preview) -> list[str]:
    diff = p.messages_after - p.messages_before
    out = [f"e-mails that would differ ({len(p.mail)}):" if p.mail else "e-mails: no message would differ"]
    for m in p.mail:
        who = f"{m.unit_code} {m.unit_name}" if m.unit_code else "bureau"
        out.append(f"  {who}: {m.kind} {m.change}" + (f" ({m.detail})" if m.detail else ""))
    out.append(f"messages for this checkpoint: {p.messages_before} → {p.messages_after} ({diff:+d})")
    out.append(f"a re-run with the candidate rules now would queue {p.rerun_messages} message(s)")
    return out

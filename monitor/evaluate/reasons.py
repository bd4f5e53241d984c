"""Reasons rendered when they are read. The compiled evaluation (monitor.evaluate.sql) stores lights and
ratios only; the Chinese reasons are the pure core's words, so the reader that needs them (an e-mail
digest, the results table, a report) has the pure core evaluate those projects again, with the exact
rules their run used, and fills them in. Results evaluated by the core itself carry their reasons.

If the inputs changed after the run (a unit reported again), the core's lights no longer match the
stored ones: the reasons then say so first, and that the checkpoint should be run again.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, MutableMapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.core.model import Checkpoint, ProjectResult
from monitor.db.engine import PROJECT_RESULT, RULE_VERSION, RUN
from monitor.db.inputs import load_inputs, load_units
from monitor.evaluate.core import evaluate
from monitor.rules.load import RuleSet, rules_from_content
from monitor.rules.policy import Policies

CHANGED = "注意：本期评价后基础数据已变更，以下说明按变更后的数据生成，请重新运行本期监控"
GONE = "本期评价后该项目已从基础数据中删除，无法生成说明"
_BATCH = 500
_known: dict[str, RuleSet] = {}  # rules evaluated in this process, by hash (content may be empty)


def remember(rules: RuleSet) -> None:
    """Called by the evaluation: these rules may be needed to render what it stored."""
    _known[rules.hash] = rules


def known() -> Mapping[str, RuleSet]:
    """The rules remembered in this process (for a worker process to remember them too)."""
    return dict(_known)


@functools.lru_cache(maxsize=8)
def _policies(rules_hash: str, content: str) -> Policies:
    rules = _known.get(rules_hash)
    if rules is None:
        rules = rules_from_content(content)
    return Policies(rules)


def missing(result: MutableMapping[str, Any]) -> bool:
    """A stored result whose reasons were not rendered at evaluation."""
    return not result["reasons"] or any(i["reason"] == "" for i in result["indicators"])


def fill(
    conn: Connection,
    checkpoint: str,
    results: Sequence[MutableMapping[str, Any]],
    lights: Collection[str | None] | None = None,
) -> None:
    """Render the missing reasons of `results` (db.reads.load_results dicts) in place; with `lights`,
    only for projects whose light is among them."""
    todo = [r for r in results if missing(r) and (lights is None or r["light"] in lights)]
    if not todo:
        return
    run = RUN
    q = (
        select(run.c.rules_hash, RULE_VERSION.c.content)
        .join(PROJECT_RESULT, PROJECT_RESULT.c.run_id == run.c.id)
        .join(RULE_VERSION, RULE_VERSION.c.hash == run.c.rules_hash)
        .where(
            PROJECT_RESULT.c.checkpoint == checkpoint,
            PROJECT_RESULT.c.project_code == todo[0]["project_code"],
        )
    )
    row = conn.execute(q).first()
    if row is None:
        raise LookupError(f"the rules of {checkpoint}'s stored results were not stored")
    policies = _policies(row[0], row[1])
    cp = Checkpoint.parse(checkpoint)
    units = load_units(conn, {r["unit_code"] for r in todo})
    for i in range(0, len(todo), _BATCH):
        batch = todo[i : i + _BATCH]
        inputs = load_inputs(conn, checkpoint, [r["project_code"] for r in batch], units)
        fresh = {r.project_code: r for r in evaluate(policies, cp, inputs)}
        for r in batch:
            result = fresh.get(r["project_code"])
            if result is None:
                r["reasons"] = r["reasons"] or [GONE]
            else:
                _apply(r, result)


def _apply(r: MutableMapping[str, Any], fresh: ProjectResult) -> None:
    words = {i.indicator_code: i for i in fresh.indicators}
    same = (fresh.light and fresh.light.value) == r["light"]
    for ind in r["indicators"]:
        mine = words.get(ind["indicator_code"])
        same = same and mine is not None and mine.light.value == ind["light"]
        if ind["reason"] == "":
            ind["reason"] = mine.reason if mine else GONE
    if not r["reasons"]:
        r["reasons"] = list(fresh.reasons)
    if not same and r["reasons"][:1] != [CHANGED]:
        r["reasons"] = [CHANGED, *r["reasons"]]

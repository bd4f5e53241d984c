"""Reasons formatted from stored facts. The SQL form (monitor.evaluate.sql) stores each light with the
facts its reason needs: the measured values (executed, budget and carry-over; target, actual,
whether reported, the possibility that forced red) and the run's policy (thresholds, answers, time
progress, where each value was set: run_policy). A reader that needs the reasons (an e-mail digest,
the results table, a report, a web page) formats them here with the rules' own `words`, without
deciding any light again. Results evaluated by the pure core carry their reasons as text already.

When the inputs stated in a reason changed after the run (a unit reported again), the reasons say so
first, and that the checkpoint should be run again: the stored facts are compared with the current
rows (monitor.db.reads.changed_projects), nothing is evaluated.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from monitor.core.model import Checkpoint, Direction, Indicator, Kind, Light
from monitor.core.rows import Reasoned
from monitor.db.reads import changed_projects, reason_facts
from monitor.db.results import load_policies
from monitor.evaluate.core import cited, project_reasons
from monitor.evaluate.facts import Context, Stored, stored
from monitor.evaluate.grounds import grounds
from monitor.evaluate.lights import budget, indicator

CHANGED = "注意：本期评价后基础数据已变更，以下说明按评价时的数据生成，请重新运行本期监控"
UNKNOWN = "本期结果由早期版本生成，未保存说明所需数据，请重新运行本期监控以生成说明"
_BATCH = 500
WARNED = ("yellow", "red")  # the indicators a project's reasons cite (evaluate.core.project_reasons)


def missing(result: Reasoned) -> bool:
    """A stored result whose reasons were left to be formatted when read."""
    return not result["reasons"] or any(i["reason"] == "" for i in result["indicators"])


def fill(
    conn: Connection,
    checkpoint: str,
    results: Sequence[Reasoned],
    lights: Collection[str | None] | None = None,
    indicator_lights: Collection[str] | None = None,
    known: Mapping[str, tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]] | None = None,
) -> None:
    """Format the missing reasons of `results` (result dicts: db.reads.load_results' shape, with or
    without their indicators) in place; with `lights`, only for projects whose light is among them;
    with `indicator_lights`, only for indicators whose light is among them (the others' stay missing:
    a warning shows the yellow and red ones' alone, and a project's reasons cite those alone). `known`:
    projects' reason facts already read (db.reads.unit_results), not read again."""
    todo = [r for r in results if missing(r) and (lights is None or r["light"] in lights)]
    if not todo:  # nothing to format (the board of a database with no run yet asks for checkpoint "")
        return
    cp = Checkpoint.parse(checkpoint)
    policies: dict[tuple[int, int], Stored] = {}  # read once per run, whatever the number of batches
    for i in range(0, len(todo), _BATCH):
        batch = todo[i : i + _BATCH]
        codes = [r["project_code"] for r in batch]
        unknown = [c for c in codes if known is None or c not in known]
        facts = reason_facts(conn, checkpoint, unknown) if unknown else {}
        if known is not None:
            facts.update((c, known[c]) for c in codes if c in known)
        runs = {p["run_id"] for p, _ in facts.values()} - {run for run, _ in policies}
        if runs:
            policies.update({k: stored(v) for k, v in load_policies(conn, runs).items()})
        changed = changed_projects(conn, checkpoint, codes)
        for r in batch:
            found = facts.get(r["project_code"])
            lines, words = _format(cp, found, policies, indicator_lights) if found else ([UNKNOWN], {})
            for ind in r["indicators"]:
                if ind["reason"] == "" and (indicator_lights is None or ind["light"] in indicator_lights):
                    ind["reason"] = words.get(ind["indicator_code"], UNKNOWN)
            if not r["reasons"]:
                r["reasons"] = list(lines)
            if r["project_code"] in changed and r["reasons"][:1] != [CHANGED]:
                r["reasons"] = [CHANGED, *r["reasons"]]


def _format(
    cp: Checkpoint,
    found: tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]],
    policies: Mapping[tuple[int, int], Stored],
    indicator_lights: Collection[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """A project's reasons and its indicators' (by code; with `indicator_lights`, of those whose light
    is among them alone), from its stored facts."""
    p, inds = found
    words = {
        i["indicator_code"]: i["reason"] or _indicator(cp, p["run_id"], i, policies)
        for i in inds
        if indicator_lights is None or i["light"] in indicator_lights or i["light"] in WARNED
    }
    if p["reasons"]:
        return [s for s in p["reasons"].split("\n") if s], words
    pol = policies.get((p["run_id"], p["policy"])) if p["policy"] is not None else None
    if pol is None or pol.project is None or p["executed"] is None or p["budget_light"] is None:
        return [UNKNOWN], words
    amount = budget.base(p["budget"], p["carryover"] or 0, pol.project)
    light = Light(p["budget_light"])
    said = budget.words(p["executed"], amount, pol.progress, pol.note, cp.month, pol.project, light)
    named = [(i["name"], Light(i["light"]), words.get(i["indicator_code"], "")) for i in inds]
    target = Light(p["target_light"]) if p["target_light"] else None
    return list(project_reasons(said.text + grounds(pol.project.origins, said.uses), named, target)), words


def _indicator(
    cp: Checkpoint, run_id: int, i: Mapping[str, Any], policies: Mapping[tuple[int, int], Stored]
) -> str:
    pol = policies.get((run_id, i["policy"])) if i["policy"] is not None else None
    if pol is None or pol.indicator is None:
        return UNKNOWN
    kind, light = Kind(i["kind"]), Light(i["light"])
    ind = Indicator(
        i["project_code"], i["indicator_code"], "", "", i["name"], Direction(i["direction"]),
        i["target"], i["measure_unit"], kind, None,
    )  # fmt: skip
    ctx = Context(cp, pol.progress, pol.note, pol.indicator)
    said = indicator.words(ind, kind, i["actual"], bool(i["reported"]), i["possibility"], ctx, light)
    return said.text + grounds(pol.indicator.origins, cited(said, kind, pol.own))

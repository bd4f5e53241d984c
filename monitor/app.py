"""The composition root: settings in, the engine, rules and stage functions out. The CLI (and
tests, and later the service) call these functions; nothing here runs at import time.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from monitor.config.settings import Settings
from monitor.config.yamlfile import Invalid, Problem
from monitor.core.model import Checkpoint
from monitor.core.rows import OutboxEntry, StoredResult
from monitor.db.claims import Holder
from monitor.deliver.transport import Transport
from monitor.notify.render import Templates
from monitor.pipeline.evaluation import Progress
from monitor.pipeline.runs import Completed, RunOutcome
from monitor.rules.load import RuleSet


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class App:
    settings: Settings
    clock: Any = field(default=utc_now)
    shared_engine: Engine | None = None  # an engine to reuse: the service keeps its pool across reloads

    @cached_property
    def engine(self) -> Engine:
        if self.shared_engine is not None:
            return self.shared_engine
        from monitor.db.engine import create_schema, make_engine

        engine = make_engine(self.settings.database_url)
        create_schema(engine)
        return engine

    def rules(self) -> RuleSet:
        from monitor.rules.load import load_rules

        return load_rules(self.settings.rules_dir)

    def check(self) -> dict[str, list[Problem]]:
        """Validate every rule file (each reported separately), the merged set and the rule tests
        under rules/tests/; {file: problems}."""
        from monitor.rules.load import build_rules, load_or_problems, rule_files
        from monitor.tools.ruletests import check_tests

        out: dict[str, list[Problem]] = {str(self.settings.config_path): []}
        files = rule_files(self.settings.rules_dir)
        if not files:
            out[str(self.settings.rules_dir)] = [
                Problem(str(self.settings.rules_dir), None, "", "no rule files")
            ]
        docs = [load_or_problems(p) for p in files]
        for path, doc in zip(files, docs, strict=True):
            try:
                build_rules([doc])
                out[str(path)] = []
            except Invalid as exc:
                out[str(path)] = exc.problems
        if files and not any(out[str(p)] for p in files):
            try:
                build_rules(docs)
            except Invalid as exc:
                for p in exc.problems:
                    out.setdefault(p.file, []).append(p)
        out.update(check_tests(self.settings.rules_dir))  # rules/tests/*.yaml, each OK or file:line errors
        out.update(self.check_templates())
        return out

    def check_templates(self) -> dict[str, list[Problem]]:
        """Compile every template and render it against an example view; {folder or file: problems}."""
        from monitor.notify.examples import examples
        from monitor.notify.render import TemplateErrors, TemplateProblem, Templates

        folder = str(self.settings.templates_dir)
        try:
            templates = Templates(self.settings.templates_dir, self.settings.template_override_dir)
        except TemplateErrors as exc:
            return {folder: [Problem(p.name, p.line, "", p.message) for p in exc.problems]}
        from monitor.reports.examples import compile_problems

        problems = [
            Problem(f, line, "", m)
            for f, line, m in compile_problems(
                self.settings.templates_dir, self.settings.template_override_dir
            )
        ]
        from monitor.notify import followup

        for kind, view in {**examples(), **followup.examples()}.items():
            try:
                templates.render(kind, view)
            except TemplateProblem as p:
                problems.append(Problem(p.name, p.line, "", p.message))
        return {folder: problems}

    def rules_used(self, checkpoint: Checkpoint) -> RuleSet:
        """The rules the last run of `checkpoint` used (LookupError if it never ran)."""
        from monitor.db.ruleversions import used_by_run

        with self.engine.connect() as conn:
            return used_by_run(conn, str(checkpoint)).rules

    def templates(self) -> Templates:
        from monitor.notify.render import Templates

        return Templates(self.settings.templates_dir, self.settings.template_override_dir)

    def transport(self) -> Transport:
        from monitor.deliver.transport import make_transport

        s = self.settings
        return make_transport(s.mail, s.mail_dir, s.smtp_password)

    def import_paths(self, paths: Sequence[Path]) -> dict[str, int]:
        from monitor.ingest.importer import import_paths

        return import_paths(self.engine, paths, self.clock())

    def run(
        self,
        checkpoint: Checkpoint,
        progress: Progress | None = None,
        send: bool = True,
        rules_version: str = "current",
        wait: float = 0,
        on_wait: Callable[[Holder], None] | None = None,
    ) -> RunOutcome:
        """Evaluate, store, queue the messages and (unless send=False) deliver them. With
        `rules_version="used"`, evaluate with the exact rules the checkpoint's last run used. Another
        run of the checkpoint under way: wait up to `wait` seconds for it (`on_wait` told once), else
        claims.Busy with nothing written."""
        from monitor.pipeline.runs import run_checkpoint

        rules = self.rules() if rules_version == "current" else self.rules_used(checkpoint)
        templates = self.templates()  # rules and templates are validated before anything is written
        transport = self.transport() if send else None
        return run_checkpoint(
            self.engine,
            rules,
            self.settings,
            templates,
            checkpoint,
            self.clock,
            transport=transport,
            progress=progress,
            wait=wait,
            on_wait=on_wait,
        )

    def complete_runs(self) -> list[Completed]:
        """Complete the runs stopped between storing their results and queueing their messages."""
        from monitor.pipeline.runs import complete_pending

        return complete_pending(self.engine, self.settings, self.templates(), self.clock)

    def send(self, should_stop: Callable[[], bool] = lambda: False) -> Counter[str]:
        from monitor.pipeline.runs import deliver

        return deliver(self.engine, self.settings, self.transport(), self.clock, should_stop)

    def outbox(self, status: str | None = None) -> list[OutboxEntry]:
        from monitor.deliver import outbox

        with self.engine.connect() as conn:
            return outbox.messages(conn, status)

    def retry(self, ids: Sequence[int] | None) -> int:
        from monitor.deliver import outbox

        with self.engine.begin() as conn:
            return outbox.requeue(conn, ids, self.clock())

    def preview_mail(self, checkpoint: Checkpoint, out: Path, unit: str | None = None) -> list[Path]:
        """Render the messages a run would send now, as if none had been sent, into `out`; queue nothing."""
        from email import message_from_bytes, policy

        from monitor.cases import exemptions
        from monitor.core.safe import safe_name
        from monitor.db.inputs import load_units
        from monitor.db.reads import result_lights
        from monitor.evaluate.stored import load_results
        from monitor.notify import decide as notify
        from monitor.notify import messages

        templates = self.templates()
        now = self.clock()
        cp = str(checkpoint)
        previous_cp = checkpoint.previous_in(list(self.settings.checkpoint_months))
        with self.engine.connect() as conn:
            results = load_results(conn, cp)
            units = load_units(conn)
            previous = result_lights(conn, str(previous_cp)) if previous_cp else {}
            exempt = exemptions.active(conn, exemptions.local_day(now, self.settings.time_zone))
        prev_label = str(previous_cp) if previous_cp and previous else None
        options = messages.options(self.settings, checkpoint, now)
        notices = notify.decide(cp, results, units, previous, prev_label, {}, options, exempt)
        if unit:
            notices = [n for n in notices if n.unit_code == unit]
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for i, row in enumerate(messages.compose_all(notices, cp, templates, self.settings, now), 1):
            # a code from an older database may hold '/' or '..': the name is built from its safe form
            stem = safe_name(f"{i:04d}-{row['kind']}-{row['unit_code'] or 'bureau'}")
            raw = row["raw"].encode("ascii")
            (out / f"{stem}.eml").write_bytes(raw)
            msg = message_from_bytes(raw, policy=policy.default)
            html = msg.get_body(("html",))
            if html is not None:
                (out / f"{stem}.html").write_text(html.get_content(), encoding="utf-8")
            written.append(out / f"{stem}.eml")
        return written

    def results(
        self, checkpoint: Checkpoint, unit: str | None = None, light: str | None = None
    ) -> list[StoredResult]:
        from monitor.evaluate.stored import load_results

        with self.engine.connect() as conn:
            return load_results(conn, str(checkpoint), unit, light)


CSV_COLUMNS = [
    "project_code",
    "project_name",
    "unit_code",
    "checkpoint",
    "status",
    "budget_light",
    "target_light",
    "light",
    "execution_rate",
    "time_progress",
    "reasons",
]


def results_json(rows: Sequence[StoredResult]) -> str:
    """The stable JSON shape: one object per project (see README); budgets are not part of it."""
    ind_keys = ("indicator_code", "name", "kind", "light", "ratio", "reason")
    out = [
        {
            **_pick(r, CSV_COLUMNS),
            "indicators": [_pick(i, ind_keys) for i in r["indicators"]],
        }
        for r in rows
    ]
    return json.dumps(out, ensure_ascii=False, indent=2)


def _pick(row: Mapping[str, object], keys: Sequence[str]) -> dict[str, object]:
    """The cells of a typed row under `keys`, in their order."""
    return {k: row[k] for k in keys}


def results_csv(rows: Sequence[StoredResult]) -> str:
    """The CSV of `monitor results`: text cells a spreadsheet would run are neutralised (safe.CsvWriter)."""
    from monitor.core.safe import CsvWriter

    buf = io.StringIO()
    w = CsvWriter(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        cells = {**_pick(r, CSV_COLUMNS), "reasons": "；".join(r["reasons"])}
        w.writerow(["" if v is None else v for v in cells.values()])
    return buf.getvalue()

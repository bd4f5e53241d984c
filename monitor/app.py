"""The composition root: settings in, the engine, rules and stage functions out. The CLI (and
tests, and later the service) call these functions; nothing here runs at import time.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from monitor.model import Checkpoint
from monitor.pipeline import Progress, RunOutcome
from monitor.rules import RuleSet
from monitor.settings import Settings
from monitor.yamlfile import Invalid, Problem


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class App:
    settings: Settings
    clock: Any = field(default=utc_now)

    @cached_property
    def engine(self) -> Engine:
        from monitor import store

        engine = store.make_engine(self.settings.database_url)
        store.create_schema(engine)
        return engine

    def rules(self) -> RuleSet:
        from monitor.rules import load_rules

        return load_rules(self.settings.rules_dir)

    def check(self) -> dict[str, list[Problem]]:
        """Validate every rule file (each reported separately) and the merged set; {file: problems}."""
        from monitor.rules import build_rules, load_or_problems, rule_files

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
        return out

    def import_paths(self, paths: Sequence[Path]) -> dict[str, int]:
        from monitor.importer import import_paths

        return import_paths(self.engine, paths)

    def run(self, checkpoint: Checkpoint, progress: Progress | None = None) -> RunOutcome:
        from monitor.pipeline import run_checkpoint

        return run_checkpoint(self.engine, self.rules(), checkpoint, self.clock, progress)

    def results(
        self, checkpoint: Checkpoint, unit: str | None = None, light: str | None = None
    ) -> list[dict[str, Any]]:
        from monitor import store

        with self.engine.connect() as conn:
            return store.load_results(conn, str(checkpoint), unit, light)


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


def results_json(rows: list[dict[str, Any]]) -> str:
    """The stable JSON shape: one object per project (see README); budgets are not part of it."""
    keep = [*CSV_COLUMNS, "indicators"]
    return json.dumps([{k: r[k] for k in keep} for r in rows], ensure_ascii=False, indent=2)


def results_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [("；".join(r[c]) if c == "reasons" else ("" if r[c] is None else r[c])) for c in CSV_COLUMNS]
        )
    return buf.getvalue()

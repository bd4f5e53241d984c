"""config.yaml in, a typed Settings object out: parsed once at the edge, unknown keys rejected,
every error reported with `file:line`. Relative paths resolve against the config file's folder;
environment variables (MONITOR_DATABASE_URL, ...) override per deployment. Nothing else reads YAML or env.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.yamlfile import Invalid, Problem, load_yaml, validate_model

# Every environment variable the program reads, with what it overrides (documented in the README).
ENV_VARS = {
    "MONITOR_CONFIG": "path of config.yaml (default ./config.yaml)",
    "MONITOR_DATABASE_URL": "database.url: any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(Strict):
    url: str | None = None  # any SQLAlchemy URL; wins over path
    path: str = "monitor.db"  # SQLite file, relative to the config file's folder


class MonitoringConfig(Strict):
    checkpoint_months: tuple[int, ...] = Field(default=(5, 8), min_length=1)
    progress_bar_min_projects: int = Field(default=5000, ge=0)


class ConfigFile(Strict):
    database: DatabaseConfig = DatabaseConfig()
    rules_dir: str = "rules"
    templates_dir: str = "templates"
    time_zone: str = "Asia/Shanghai"
    monitoring: MonitoringConfig = MonitoringConfig()
    language: Literal["zh"] = "zh"


@dataclass(frozen=True)
class Settings:
    """The resolved configuration every command works from."""

    config_path: Path
    database_url: str
    rules_dir: Path
    templates_dir: Path
    time_zone: str
    checkpoint_months: tuple[int, ...]
    progress_bar_min_projects: int

    def redacted_url(self) -> str:
        """The database URL with any password shown as ***."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)


def config_path(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    return Path(explicit or env.get("MONITOR_CONFIG") or "config.yaml")


def load_settings(path: Path, rules_dir: str | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Load and validate config.yaml; raises Invalid with every problem. A missing file is an error."""
    if not path.is_file():
        raise Invalid(
            [Problem(str(path), None, "", "config file not found (use --config or MONITOR_CONFIG)")]
        )
    doc = load_yaml(path)
    cfg = validate_model(ConfigFile, doc)
    base = path.resolve().parent

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    url = env.get("MONITOR_DATABASE_URL") or cfg.database.url or f"sqlite:///{resolve(cfg.database.path)}"
    bad = [m for m in cfg.monitoring.checkpoint_months if not 1 <= m <= 12]
    if bad:
        raise Invalid(
            [
                doc.problem(
                    ("monitoring", "checkpoint_months"), "months must be 1..12", value=bad, has_value=True
                )
            ]
        )
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(cfg.time_zone)
    except Exception as exc:
        raise Invalid(
            [doc.problem(("time_zone",), "unknown time zone", value=cfg.time_zone, has_value=True)]
        ) from exc
    return Settings(
        config_path=path,
        database_url=url,
        rules_dir=Path(rules_dir) if rules_dir else resolve(cfg.rules_dir),
        templates_dir=resolve(cfg.templates_dir),
        time_zone=cfg.time_zone,
        checkpoint_months=tuple(sorted(set(cfg.monitoring.checkpoint_months))),
        progress_bar_min_projects=cfg.monitoring.progress_bar_min_projects,
    )

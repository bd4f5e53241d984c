"""Logging for the CLI and the service: one line per event on stderr, timestamps with time zone
(readable by journald), or one JSON object per line with --log-format json."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys


class _Text(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Route the `monitor` loggers (and APScheduler's warnings) to stderr in `fmt`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _Json() if fmt == "json" else _Text("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("monitor").setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

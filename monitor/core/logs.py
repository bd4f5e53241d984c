"""Logging for the CLI and the service: one line per event on stderr, timestamps with time zone
(readable by journald), or one JSON object per line with --log-format json."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
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
            out["exc"] = record.exc_text or self.formatException(record.exc_info)  # masked by MaskTokens
        return json.dumps(out, ensure_ascii=False)


# a signed link's path: a unit's answers (/u/), its reporting page (/r/), a department's review (/d/)
UNIT_LINK = re.compile(r"/([urd])/([A-Za-z0-9_\-]{6})[A-Za-z0-9_.\-]*")


def mask_tokens(text: str) -> str:
    """`text` with every signed link token cut to its first 6 characters: /u/WyIzMD… (a whole token opens
    the unit's or the department's page)."""
    return UNIT_LINK.sub(r"/\1/\2…", text)


class MaskTokens(logging.Filter):
    """Rewrites each record it sees (message and traceback) with the unit link tokens masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_tokens(record.exc_text)
        return True


def one_line(exc: BaseException) -> str:
    """An exception as one line: the first line of the underlying error's message (a database driver's,
    for SQLAlchemy's wrappers), or its type."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0].strip() if lines else type(orig).__name__


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Route the `monitor` loggers (and APScheduler's warnings) to stderr in `fmt`, unit link tokens
    masked in every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MaskTokens())
    handler.setFormatter(
        _Json() if fmt == "json" else _Text("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("monitor").setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)

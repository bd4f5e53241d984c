"""Stored results read back with their reasons: monitor.db.reads' results, the reasons the SQL form
left to be formatted formatted from their stored facts (monitor.evaluate.reasons). What every reader
that shows reasons calls (digests, reports, `monitor results`, the web pages, `explain`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Connection

from monitor.core.rows import StoredResult
from monitor.core.summary import BureauFigures
from monitor.db import reads
from monitor.db.figures import bureau_figures as figures_of
from monitor.evaluate import reasons


def load_results(
    conn: Connection, checkpoint: str, unit: str | None = None, light: str | None = None
) -> list[StoredResult]:
    """db.reads.load_results with every reason."""
    out = reads.load_results(conn, checkpoint, unit, light)
    reasons.fill(conn, checkpoint, out)
    return out


def unit_results(conn: Connection, checkpoint: str, first: str, last: str) -> list[StoredResult]:
    """db.reads.unit_results with the yellow and red projects' reasons and their yellow and red
    indicators' (what a warning shows: the others' are not formatted)."""
    facts: dict[str, tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]] = {}
    chunk = reads.unit_results(conn, checkpoint, first, last, facts)
    reasons.fill(conn, checkpoint, chunk, reads.WARNED, reads.WARNED, facts)
    return chunk


def iter_unit_results(
    conn: Connection, checkpoint: str, chunk_units: int = 2000
) -> Iterator[list[StoredResult]]:
    """db.reads.iter_unit_results with the yellow and red projects' reasons."""
    for first, last in reads.unit_chunks(conn, checkpoint, chunk_units):
        yield unit_results(conn, checkpoint, first, last)


def bureau_figures(conn: Connection, checkpoint: str, previous: str | None, top_red: int) -> BureauFigures:
    """db.figures.bureau_figures with the reasons of the red projects it lists."""
    figures = figures_of(conn, checkpoint, previous, top_red)
    rows = [r.copy() for r in figures.top_red]
    reasons.fill(conn, checkpoint, rows)
    return replace(figures, top_red=[*rows])

"""How the set-based evaluation spells SQL: string literals, the few expressions SQLite and
PostgreSQL write differently, and the guard band around a threshold compared in floating point.
The light rules (monitor.evaluate.lights) write their SQL form with these; monitor.evaluate.sql
assembles the statements."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.model import Checkpoint

EPS = 1e-9  # relative guard band around every threshold (float error here is below 1e-15)
SMALL = 1 << 15  # integers below this multiply four at a time without leaving 64 bits
BUDGET_SMALL = 1 << 10  # P and budget thresholds this small times amounts below 2^40 fen: below 2^60


def lit(value: str | None) -> str:
    """A SQL string literal."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def near(r: str, threshold: str) -> str:
    """r lies within the guard band of `threshold`: a float comparison there is left to the core."""
    return f"abs({r} - {threshold}) <= {EPS} * abs({threshold})"


@dataclass(frozen=True)
class Dialect:
    """The few expressions SQLite and PostgreSQL spell differently."""

    name: str

    @property
    def pg(self) -> bool:
        return self.name == "postgresql"

    @property
    def double(self) -> str:
        """The 8-byte float type (PostgreSQL's REAL has 4 bytes)."""
        return "DOUBLE PRECISION" if self.pg else "REAL"

    @property
    def ordered_join(self) -> str:
        """An inner join whose left side SQLite must scan first (PostgreSQL plans joins itself)."""
        return "JOIN" if self.pg else "CROSS JOIN"

    def real(self, x: str) -> str:
        return f"CAST({x} AS {self.double})"

    def has_percent(self, x: str) -> str:
        # chr(37) is '%', which psycopg would take for a placeholder
        return f"strpos({x}, chr(37)) > 0" if self.pg else f"instr({x}, '%') > 0"

    def truth(self, condition: str) -> str:
        """A boolean CASE result usable as a condition (SQLite's CASE yields 0/1)."""
        return condition if self.pg else f"({condition}) = 1"


@dataclass(frozen=True)
class Spelling:
    """What a rule's SQL form may depend on: the database and the checkpoint."""

    dialect: Dialect
    checkpoint: Checkpoint

"""What is wrong with an import, and where. In: the place of a bad value (file, sheet, row, column, the
header as written) and a message. Out: `Problem`s, the `ImportFailed` that carries them all, and the
lines a refused import prints (`problem_report`). `Source` is a located table, as problems name it.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.core.cells import cell_text, is_blank
from monitor.core.errors import BadInput


@dataclass(frozen=True)
class Problem:
    """One bad input: where it is (file, sheet, 1-based row as Excel shows it, canonical column and
    the header as written) and what is wrong with the value."""

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    sheet: str | None = None
    header: str | None = None
    cell: str | None = None  # a form's cell, A1-style (ingest.form_read): named instead of the row

    def __str__(self) -> str:
        text = self.file + (f"[{self.sheet}]" if self.sheet else "")
        text += f":row {self.row}" if self.row is not None else ""
        if self.cell:  # a form's cell
            text = f"{self.file}: {self.sheet}!{self.cell}"
        if self.column:
            text += f": {self.column}" + (
                f" ({self.header})" if self.header not in (None, self.column) else ""
            )
        return text + f": {self.message}" + (f" (got {self.value!r})" if self.value is not None else "")


class ImportFailed(BadInput):
    """The import was refused; `problems` lists every problem found, and nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[:50]] + (
            [f"… and {len(problems) - 50} more"] if len(problems) > 50 else []
        )
        super().__init__(
            f"{len(problems)} problem(s), nothing imported（导入失败，未写入任何数据）:\n" + "\n".join(lines)
        )


SHOWN_PROBLEMS = 50  # problems printed on the terminal; all of them go to a file beyond that


def problem_report(problems: Sequence[Problem], errors: Path | None = None) -> list[str]:
    """The lines to print for a refused import: the first SHOWN_PROBLEMS problems, the count of problems
    per column, and the file that holds them all: `errors` if given, else (when some are not shown)
    a new file in the temporary folder."""
    lines = [str(p) for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"… and {len(problems) - SHOWN_PROBLEMS} more")
        per_column = Counter(p.column or "(file)" for p in problems)
        lines.append("problems per column: " + ", ".join(f"{c}: {n}" for c, n in per_column.most_common()))
    if errors is not None or len(problems) > SHOWN_PROBLEMS:
        try:
            if errors is None:
                fd, name = tempfile.mkstemp(prefix="monitor-import-errors-", suffix=".txt")
                os.close(fd)
                errors = Path(name)
            with errors.open("w", encoding="utf-8") as f:
                f.writelines(f"{p}\n" for p in problems)
            lines.append(f"all problems: {errors}")
        except OSError as exc:
            lines.append(f"could not write the list of all problems: {exc}")
    lines.append(f"{len(problems)} problem(s); nothing was imported.")
    return lines


@dataclass(frozen=True)
class Source:
    """A table read from a file or sheet: its kind, and its header cells as written."""

    file: str
    sheet: str | None
    kind: str
    columns: dict[str, tuple[int, ...]]  # canonical column -> header indexes, best first
    headers: tuple[str, ...]  # header text by index
    cells: Mapping[int, str] | None = None  # a form's cells by index: a column letter or a cell (form_read)

    def problem(
        self, row: int | None, column: str | None, value: object, message: str, index: int = -1
    ) -> Problem:
        if index < 0 and column in self.columns:
            index = self.columns[column][0]
        header = self.headers[index] if 0 <= index < len(self.headers) else None
        shown = None if is_blank(value) else cell_text(value)[:200]
        cell = self.cells.get(index) if self.cells else None  # a form's cell
        if cell and cell[-1].isalpha() and row is not None:
            cell += str(row)
        return Problem(self.file, row, column, shown, message, self.sheet, header, cell)

    def where(self, row: int) -> str:
        return self.file + (f"[{self.sheet}]" if self.sheet else "") + f":row {row}"

"""The pieces of ``summary.md``: headline rows checked against goals, detail tables, formats.

A row holds numbers formatted once and a goal that is checked here, from the
numbers, on every render: nothing in the summary is written by hand, so
nothing in it can go stale when a benchmark is run again. What the numbers
mean is ``analysis.md``'s job; each row can name the heading there that
reads it.
"""

import re
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Goal:
    """A bound on a figure: ``op limit`` (``shown`` is how the goal reads in the table)."""

    op: Literal["<=", ">="]
    limit: float
    shown: str

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit


@dataclass
class Row:
    """One figure against its peer in the same run.

    The goal is checked against ``value`` when given (a figure whose goal is
    on its own value, not on the ratio), else against ``ratio``.
    """

    figure: str
    ours: str
    peer: str
    ratio: float
    digits: int
    goal: Goal | None = None
    machine: str | None = None
    value: float | None = None
    topic: str = ""

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.goal.met(self.ratio if self.value is None else self.value)

    @property
    def ratio_text(self) -> str:
        return f"{self.ratio:.{self.digits}f}"


@dataclass
class Table:
    """A detail table: the measurements a headline figure is made of."""

    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Part:
    """What one section (one or a few result files) adds to the summary."""

    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 1 else f"{value:.2f} s"


def mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%"


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; a ``|`` inside a cell is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading (lower case, punctuation dropped)."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")

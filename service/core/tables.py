"""Printing rich tables in the command line so that ids come out whole, on a terminal or down a pipe."""

from __future__ import annotations

from collections.abc import Collection

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

UNLIMITED_WIDTH = 100_000


class TextTable(Table):
    """A rich table whose string cells print as they are: a name with brackets (``ops [/bold]``) is no markup to
    rich, which would fail on it or swallow it."""

    def add_row(self, *renderables: RenderableType | None, style: StyleType | None = None,
                end_section: bool = False) -> None:
        super().add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in renderables), style=style,
                        end_section=end_section)


def print_table(console: Console, table: TextTable, *, whole: Collection[str] = ("id",)) -> None:
    """Print ``table``: the cells of the columns headed ``whole`` (ids, prefixes, serials: what users copy) are
    never wrapped nor cut short. Output that is no terminal (a pipe, a file) gets the table at its natural width,
    one line per row, whatever width the console assumes."""
    for column in table.columns:
        if column.header in whole:
            column.no_wrap = True
            column.min_width = max((cell_len(str(cell)) for cell in column.cells), default=0) or None
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(UNLIMITED_WIDTH), table).maximum
    assumed = console.width
    console.width = max(assumed, natural)
    try:
        console.print(table)
    finally:
        console.width = assumed

"""What the master tools print: tables and JSON on stdout, progress and traces on stderr.

Tables use rich without colour when stdout is not a terminal, so output can be piped.
The progress bar goes to stderr and only when stderr is a terminal.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def render_table(columns: Sequence[str], rows: Sequence[Sequence[object]], *,
                 width: int = 200) -> str:
    """A plain-text table (header, rule, one line per row), no colour, no trailing spaces."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    buffer = io.StringIO()
    Console(file=buffer, width=width, no_color=True, highlight=False, force_terminal=False,
            color_system=None).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]], *,
                title: str | None = None, stream: TextIO | None = None) -> None:
    """``title`` on its own line, then the table."""
    out = stream if stream is not None else sys.stdout
    width = shutil.get_terminal_size((200, 24)).columns if out.isatty() else 200
    if title:
        out.write(title + "\n")
    out.write(render_table(columns, rows, width=width))


def print_json(data: Any, *, stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return value.hex(" ").upper()
    if isinstance(value, frozenset | set | tuple):
        return list(value)
    return str(value)


def print_line(text: str, *, stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(text + "\n")


def note(text: str) -> None:
    """A remark for the user on stderr (keeps stdout clean for tables and JSON)."""
    sys.stderr.write(text + "\n")


def hex_bytes(data: bytes) -> str:
    return data.hex(" ").upper()


class Ticker(Protocol):
    def __call__(self, advance: int = 1, *, description: str | None = None) -> None: ...


@contextmanager
def progress(description: str, total: int | None, *, stream: TextIO | None = None) -> Iterator[Ticker]:
    """A progress bar on stderr, off when stderr is not a terminal. Yields ``tick(n, description=)``.
    Without a ``total`` there is no bar, only the description (which then says how far it
    got) and the time elapsed."""
    out = stream if stream is not None else sys.stderr
    enabled = out.isatty()
    counted = (BarColumn(), MofNCompleteColumn()) if total is not None else ()
    bar = Progress(TextColumn("{task.description}"), *counted, TimeElapsedColumn(),
                   console=Console(file=out), transient=True, disable=not enabled)
    with bar:
        task = bar.add_task(description, total=total)

        def tick(advance: int = 1, *, description: str | None = None) -> None:
            if description is None:
                bar.advance(task, advance)
            else:
                bar.update(task, advance=advance, description=description)

        yield tick

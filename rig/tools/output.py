"""What the master tools print: tables and JSON on stdout, progress and traces on stderr.

Tables use rich without colour when stdout is not a terminal, so output can be piped.
The progress bar goes to stderr and only when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _console(stream: TextIO) -> Console:
    is_tty = stream.isatty()
    return Console(file=stream, highlight=False, soft_wrap=False,
                   width=None if is_tty else 120, no_color=not is_tty,
                   force_terminal=False if not is_tty else None)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]], *,
                title: str | None = None, stream: TextIO | None = None) -> None:
    """A plain table: one header row, one row per item, every cell as text."""
    out = stream if stream is not None else sys.stdout
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    _console(out).print(table)


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
    """A progress bar on stderr, off when stderr is not a terminal. Yields ``tick(n, description=)``."""
    out = stream if stream is not None else sys.stderr
    enabled = out.isatty()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(file=out), transient=True,
                   disable=not enabled)
    with bar:
        task = bar.add_task(description, total=total)

        def tick(advance: int = 1, *, description: str | None = None) -> None:
            if description is None:
                bar.advance(task, advance)
            else:
                bar.update(task, advance=advance, description=description)

        yield tick

"""Terminal output shared by the `opsready` CLI and the dev tools (rich): tables that fit
the terminal, and progress on long operations that stays out of pipes and logs."""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

# Piped output is read by scripts and grep: no width limit, so no value is ever cut.
PIPE_WIDTH = 1_000


def table(*columns: Column | str) -> Table:
    """A borderless table: a header line, then one line per row, columns two spaces apart.
    Give long free-text columns `Column(..., overflow="ellipsis", no_wrap=True)` and
    identifiers `no_wrap=True` with `min_width`, so they shrink last and never wrap."""
    return Table(*columns, box=None, pad_edge=False, show_edge=False, header_style="")


def table_text(rows: Table, width: int | None = None) -> str:
    """The table as plain text as wide as the terminal (cells that do not fit end in an
    ellipsis); on a pipe as wide as it needs."""
    if width is None:
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else PIPE_WIDTH
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False, markup=False).print(rows)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def progress() -> Progress:
    """A progress bar on stderr (`add_task`, then `advance` after each step), cleared when
    done; nothing at all when stderr is not a terminal, so reports and logs stay as they
    are. It redraws only on `advance`: no drawing thread eats the CPU a bench measures."""
    console = _stderr()
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
        disable=not console.is_terminal,
    )


def advance(bar: Progress, task: TaskID, description: str | None = None) -> None:
    """One step done (and what comes next), drawn now."""
    bar.update(task, advance=1, description=description)
    bar.refresh()


@contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner with `message` on stderr while a long wait runs (terminals only)."""
    console = _stderr()
    with console.status(message) if console.is_terminal else nullcontext():
        yield

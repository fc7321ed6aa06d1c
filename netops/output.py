"""Shared CLI plumbing: JSON or rich output, tables, progress (exit codes and errors: ``errors``)."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from . import escape

class Out:
    """Where a verb's output goes. ``capture``: the JSON document is kept in ``captured`` instead of
    printed (the cycle runs verbs and collects their results this way)."""

    def __init__(self, json_mode: bool = False, capture: bool = False):
        self.json_mode = json_mode
        self.capture = capture
        self.captured = None
        # not a terminal (a pipe, CI log): wide enough that tables are not cut
        self.console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def interactive(self) -> bool:
        return not self.json_mode and self.err.is_terminal

    def json(self, data) -> None:
        if self.capture:
            self.captured = data
            return
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")

    def print(self, *args, **kw) -> None:
        if not self.json_mode:
            self.console.print(*args, **kw)

    def note(self, msg: str) -> None:
        """A progress line for people; silent under --json or when stderr is not a terminal."""
        if self.interactive:
            self.err.print(msg)

    def table(self, title: str, columns: list[str], rows: list[list]) -> None:
        """A table of data: every cell is text as given (escaped, never read as Rich markup)."""
        t = Table(title=title, title_justify="left", header_style="bold")
        for c in columns:
            t.add_column(c)
        for r in rows:
            t.add_row(*("" if v is None else escape.rich(v) for v in r))
        self.console.print(t)

    @contextmanager
    def progress(self, description: str, total: int):
        """Yields advance(n=1, label=None); a live bar on a terminal, nothing otherwise."""
        if not self.interactive:
            yield lambda n=1, label=None: None
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[label]}"), console=self.err, transient=True) as p:
            task = p.add_task(description, total=total, label="")

            def advance(n: int = 1, label: str | None = None) -> None:
                p.update(task, advance=n, label=label or "")

            yield advance

"""What every `leadscore` sub-command shares: consoles, one-line errors, usage problems.

Commands raise :class:`~leadscore.features.errors.LeadscoreError` (or let a library's error of
that kind through); :class:`CommandGroup` prints it as ``error: ...`` lines on stderr and exits
1, or 2 for a :class:`UsageProblem`. Anything else is a bug: one line that says so, and
``--debug`` (or ``LEADSCORE_DEBUG=1``) shows the traceback instead. Light imports only: this
module is loaded for ``leadscore --help``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from leadscore.features.errors import LeadscoreError, UsageProblem
from leadscore.features.schema import date_only_moment

DEBUG_ENV = "LEADSCORE_DEBUG"
WIDE = 160  # when writing to a file or a pipe: wide enough that tables do not wrap


def _width() -> int | None:
    return None if sys.stdout.isatty() else WIDE


def out() -> Console:
    """A console on standard output (results, tables)."""
    return Console(width=_width(), highlight=False, soft_wrap=False)


def err() -> Console:
    """A console on standard error (progress, notes, errors)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_blocks(blocks: list[Any]) -> None:
    """Print text lines (never read as markup) and rich tables, in order, on stdout."""
    console = out()
    for block in blocks:
        if isinstance(block, str):
            console.print(block, markup=False)
        else:
            console.print(block)


def note(message: str) -> None:
    """A progress or context line on stderr (dim), never read as markup."""
    err().print(message, style="dim", markup=False)


def debugging(ctx: typer.Context | None = None) -> bool:
    """Whether tracebacks are wanted (``--debug`` on the root command, or LEADSCORE_DEBUG)."""
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        return True
    root = ctx.find_root() if ctx is not None else None
    return bool(root and root.params.get("debug"))


def report(exc: BaseException) -> int:
    """Print an error as ``error: ...`` lines on stderr; return the exit code."""
    if isinstance(exc, LeadscoreError):
        lines, code = exc.lines() or [type(exc).__name__], 2 if isinstance(exc, UsageProblem) else 1
    else:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        lines = [
            f"unexpected {type(exc).__name__}: {first} (a bug in leadscore; rerun with --debug "
            "for the traceback and report it)"
        ]
        code = 1
    console = err()
    for line in lines:
        console.print("error: " + line, style="red", markup=False, highlight=False)
    return code


class CommandGroup(TyperGroup):
    """A typer group whose commands' errors become one line each (see the module docstring)."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own: --help, usage errors, exit codes
        except Exception as exc:
            if debugging(ctx):
                raise
            raise typer.Exit(report(exc)) from None


def group(help_text: str) -> typer.Typer:
    """A sub-command group with the shared error handling."""
    return typer.Typer(help=help_text, no_args_is_help=True, cls=CommandGroup)


def parse_moment(text: str, option: str) -> datetime:
    """An ISO-8601 date or date-time from the command line, as naive UTC (a date alone is the end
    of that day, as everywhere); a :class:`UsageProblem` naming the option otherwise."""
    day = date_only_moment(text)
    if day is not None:
        return day
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageProblem(
            f"{option} {text!r} is not a date: give an ISO-8601 date or date-time, e.g. "
            "2024-02-01 or 2024-02-01T09:00:00Z"
        ) from None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def text_table(
    header: Sequence[str], body: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> Table:
    """A plain table of text cells (columns in `right` right-aligned); cells are never read as
    markup."""
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, highlight=False,
        show_header=any(header),  # key-value summaries have no header
    )  # fmt: skip
    for i, name in enumerate(header):
        table.add_column(name, justify="right" if i in right else "left", overflow="fold")
    for row in body:
        table.add_row(*(Text(cell) for cell in row))
    return table


def render(renderable: Any, width: int = WIDE) -> str:
    """A table (or any rich renderable) as plain text, for files and logs."""
    import io

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, highlight=False).print(renderable)
    return buffer.getvalue()

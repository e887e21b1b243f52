"""The one output layer of the CLI: the --format option, emitters, progress, messages.

Every command ends with one ``emit(data, fmt, ...)``. Data goes to stdout, diagnostics to
stderr. Rich is imported only when a table or progress bar is actually drawn, so
``agentpm --help`` and ``agentpm lint`` stay instant.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Sequence
from enum import Enum
from functools import cache
from typing import Any

import typer

from agentpm.display import clean, csv_cell

Columns = Sequence[tuple[str, str]]


@cache
def choices(*values: str) -> type[Enum]:
    """One enum per set of values (the same set gives the same class): typer's way to a choice."""
    return Enum("Choice_" + "_".join(values), {value: value for value in values}, type=str)  # type: ignore[return-value]


def formats(*values: str) -> type[Enum]:
    """The formats one command can write: table, json, csv, markdown, yaml, md, html."""
    return choices(*values)


# The format sets of the commands: one family, each set a choice of the same values.
LIST_FORMATS = formats("table", "json", "csv")
SHOW_FORMATS = formats("table", "json")
TAXONOMY_FORMATS = formats("table", "json", "yaml")
TREND_FORMATS = formats("table", "json", "csv", "markdown")
REPORT_FORMATS = formats("md", "html", "json")
DRAFT_FORMATS = formats("md", "yaml")


def format_option(
    formats_enum: type[Enum], default: str | None = "table", help: str = "Output format."
) -> Any:
    """The one --format/-f option definition."""
    return typer.Option(
        formats_enum(default) if default else None,
        "--format",
        "-f",
        help=help,
        show_default=default is not None,
    )


def value(choice: Any) -> str | None:
    """The plain string of an enum choice (None stays None)."""
    return None if choice is None else getattr(choice, "value", choice)


def stdout_console() -> Any:
    from rich.console import Console

    # A pipe gets a wide, colourless table instead of one wrapped at 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False, soft_wrap=False)


def note(message: str) -> None:
    """A diagnostic line on stderr."""
    print(clean(message), file=sys.stderr)


def report_problems(problems: Iterable[Any]) -> None:
    for problem in problems:
        note(str(problem))


# JSON escapes C0 itself; C1 controls and lone surrogates are escaped here, so the output is
# valid UTF-8 and inert on a terminal while the data stays exact.
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\ud800-\udfff]")


def _json_safe(text: str) -> str:
    return _JSON_UNSAFE.sub(lambda found: f"\\u{ord(found.group(0)):04x}", text)


def emit_json(data: Any) -> None:
    if isinstance(data, list) and data:
        # One record per line: still valid JSON and easy to grep, and the C encoder (no indent)
        # is ten times faster on the thousands of rows a batch produces.
        lines = ",\n".join("  " + json.dumps(item, ensure_ascii=False, default=str) for item in data)
        sys.stdout.write(_json_safe("[\n" + lines + "\n]\n"))
        return
    sys.stdout.write(_json_safe(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"))


def emit_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: csv_cell(";".join(map(str, value)) if isinstance(value, list) else value)
                for key, value in row.items()
            }
        )
    sys.stdout.write(buffer.getvalue())


def emit_table(rows: Sequence[dict[str, Any]], columns: Columns, title: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=clean(title) if title else None, show_lines=False, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key, _ in columns))
    stdout_console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return clean(", ".join(map(str, value)))
    return clean(value)


def emit_markdown(text: str) -> None:
    """Markdown rendered for a terminal, or as plain text into a pipe."""
    if sys.stdout.isatty():
        from rich.markdown import Markdown

        stdout_console().print(Markdown(text))
    else:
        text = clean_lines(text)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def emit(
    data: Any,
    fmt: str,
    columns: Columns = (),
    title: str | None = None,
    csv_data: Sequence[dict[str, Any]] | None = None,
    csv_columns: Sequence[str] | None = None,
    table_data: Sequence[dict[str, Any]] | None = None,
    text: str | None = None,
) -> None:
    """Write DATA in FMT: json (the data as is); csv and table (rows, each with its own view
    when given); markdown (TEXT, rendered on a terminal); any other format writes TEXT as is."""
    fmt = value(fmt)
    if fmt == "json":
        emit_json(data)
    elif fmt == "csv":
        emit_csv(csv_data if csv_data is not None else data, csv_columns or [key for key, _ in columns])
    elif fmt == "table":
        emit_table(table_data if table_data is not None else data, columns, title)
    elif fmt == "markdown":
        emit_markdown(text or "")
    else:
        sys.stdout.write(clean_lines(text or ""))


def clean_lines(text: str) -> str:
    """Plain text for the terminal: each line cleaned, the line structure kept."""
    return "\n".join(clean(line) for line in text.split("\n"))


class Progress:
    """A progress bar on stderr for long runs on a terminal; silent otherwise.

    The bar starts on the first update, once the total is known, so nobody walks the folders
    twice to count files, and no bar thread exists yet when worker processes are forked.
    """

    def __init__(self, label: str, minimum: int = 50):
        self.label = label
        self.minimum = minimum
        self.bar: Any = None
        self.checked = False

    def __enter__(self) -> Progress:
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.checked:
            self.checked = True
            if total >= self.minimum and sys.stderr.isatty():
                from rich.console import Console
                from rich.progress import Progress as RichProgress

                self.bar = RichProgress(console=Console(stderr=True), transient=True)
                self.task = self.bar.add_task(self.label, total=total)
                self.bar.start()
        if self.bar:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.stop()


class StepProgress:
    """Progress of a long computation reported as (message, done, total): a bar with time
    left on a terminal, one line per message otherwise."""

    def __init__(self, label: str):
        self.label = label
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> StepProgress:
        return self

    def __call__(self, message: str, done: int | None = None, total: int | None = None) -> None:
        if done is None or total is None or not sys.stderr.isatty():
            note(f"agentpm: {message}")
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task(self.label, total=total)
            self.bar.start()
        self.bar.update(self.task, completed=done, total=total, description=f"{self.label}: {message}")

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.stop()

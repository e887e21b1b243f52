"""The agentpm command line: parse options, make one core call, print.

This is the only module that imports typer and rich, and the only place where errors
become messages and exit codes (0 ok, 1 findings, 2 usage error or unreadable input).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence

import typer

from agentpm import __version__
from agentpm.errors import AgentPMError, UsageError

app = typer.Typer(
    name="agentpm",
    help="Post-mortems for AI-agent failures: classify, trend, report, scaffold and lint incident reports, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich-rendered help costs ~70 ms of imports on every --help.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
taxonomy_app = typer.Typer(help="Show the failure taxonomy.", no_args_is_help=True, rich_markup_mode=None,
                           context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(taxonomy_app, name="taxonomy")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class TaxonomyFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


PATHS_ARG = typer.Argument(None, help="Incident files or folders (searched recursively). Default: the configured corpus.",
                           show_default=False)
TAXONOMY_OPT = typer.Option(None, "--taxonomy", help="Taxonomy file (default: configured, else the shipped one).",
                            show_default=False)


# -- output helpers -----------------------------------------------------------------------

def _stdout_console():
    from rich.console import Console

    # A pipe gets a wide, colourless table instead of one wrapped at 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False, soft_wrap=False)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _emit_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ";".join(map(str, value)) if isinstance(value, list) else value
                         for key, value in row.items()})
    sys.stdout.write(buffer.getvalue())


def _emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: Optional[str] = None) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            cells.append(", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value)))
        table.add_row(*cells)
    _stdout_console().print(table)


def _report_problems(problems: Iterable[Any]) -> None:
    for problem in problems:
        _stderr(str(problem))


def _settings(**overrides: Any):
    from agentpm.config import load_settings

    return load_settings(overrides)


def _paths_or_corpus(paths: Optional[List[Path]], settings: Any) -> List[Path]:
    if paths:
        return list(paths)
    if not Path(settings.corpus).exists():
        raise UsageError(f"no paths given and the configured corpus {settings.corpus} does not exist "
                         f"(set by {settings.origin.get('corpus', 'default')}); pass files or folders")
    return [Path(settings.corpus)]


def _load(paths: Optional[List[Path]], taxonomy: Optional[Path]):
    from agentpm.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    settings = _settings(taxonomy=taxonomy)
    loaded_taxonomy = load_taxonomy(settings.taxonomy)
    return load_corpus(_paths_or_corpus(paths, settings), taxonomy=loaded_taxonomy), loaded_taxonomy, settings


# -- commands -----------------------------------------------------------------------------

def _version(value: bool) -> None:
    if value:
        print(f"agentpm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Post-mortems for AI-agent failures: classify, trend, report, scaffold and lint incident reports, offline."""


@app.command()
def validate(
    paths: Optional[List[Path]] = PATHS_ARG,
    output_format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Parse incident files and report every problem as file:line: message.

    Exit code 0 when every file is a valid incident, 1 when some are invalid, 2 when some
    cannot be read at all.

    Example: agentpm validate corpus/ --format json
    """
    corpus, _, _ = _load(paths, taxonomy)
    problems = sorted(corpus.problems, key=lambda p: (p.path, p.line or 0))
    if output_format is Format.json:
        by_path: dict[str, list[dict[str, Any]]] = {}
        for problem in problems:
            by_path.setdefault(problem.path, []).append(problem.to_dict())
        results = [{"path": str(incident.path), "valid": True, "problems": []} for incident in corpus.incidents]
        results += [{"path": path, "valid": False, "problems": found} for path, found in by_path.items()]
        _emit_json(sorted(results, key=lambda item: item["path"]))
    elif output_format is Format.csv:
        _emit_csv([problem.to_dict() for problem in problems], ["path", "line", "kind", "field", "message"])
    else:
        for problem in problems:
            print(str(problem))
    bad_files = len({problem.path for problem in problems})
    unreadable = len({problem.path for problem in problems if problem.kind == "unreadable"})
    if problems:
        _stderr(f"{corpus.files_read} files checked: {len(corpus.incidents)} valid, "
                f"{bad_files - unreadable} invalid, {unreadable} unreadable")
    else:
        _stderr(f"{corpus.files_read} files checked: all valid")
    raise typer.Exit(corpus.exit_code)


LIST_COLUMNS = [("id", "ID"), ("date", "Date"), ("severity", "Sev"), ("category", "Category"),
                ("title", "Title"), ("path", "Path")]


@app.command("list")
def list_incidents(
    paths: Optional[List[Path]] = PATHS_ARG,
    output_format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """List incidents, one row each: id, date, severity, category, title, path.

    Files with problems are skipped and reported on stderr (exit code 1 or 2).

    Example: agentpm list corpus/ --format csv > incidents.csv
    """
    corpus, _, _ = _load(paths, taxonomy)
    rows = sorted((incident.summary_row() for incident in corpus.incidents),
                  key=lambda row: (row["date"] or "", row["path"] or ""))
    if output_format is Format.json:
        _emit_json(rows)
    elif output_format is Format.csv:
        _emit_csv(rows, ["path", "id", "title", "date", "severity", "status", "category", "secondary", "predicted",
                         "format"])
    else:
        _emit_table(rows, LIST_COLUMNS, title=f"{len(rows)} incidents")
    _report_problems(corpus.problems)
    raise typer.Exit(corpus.exit_code)


@app.command()
def schema(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT if it exists."),
) -> None:
    """Print the JSON Schema of an incident record, for editors that validate front matter.

    Example: agentpm schema -o incident.schema.json
    """
    from agentpm.incident import incident_json_schema
    from agentpm.writing import write_new_file

    text = json.dumps(incident_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_new_file(output, text, overwrite=force)
        _stderr(f"wrote {output}")


@taxonomy_app.command("show")
def taxonomy_show(
    category_id: Optional[str] = typer.Argument(None, metavar="[ID]", help="Show only this category."),
    output_format: TaxonomyFormat = typer.Option(TaxonomyFormat.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Show the failure taxonomy, or one category with its guidance and crosswalk.

    Example: agentpm taxonomy show tool-api-drift --format yaml
    """
    from agentpm.taxonomy import load_taxonomy

    loaded = load_taxonomy(_settings(taxonomy=taxonomy).taxonomy)
    categories = [loaded.get(category_id)] if category_id else loaded.categories
    if output_format is not TaxonomyFormat.table:
        payload: Any = {"version": loaded.version, "name": loaded.name,
                        "categories": [category.model_dump() for category in categories]}
        if category_id:
            payload = categories[0].model_dump()
        if output_format is TaxonomyFormat.json:
            _emit_json(payload)
        else:
            import yaml

            sys.stdout.write(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=100))
        return
    if not category_id:
        rows = [{"id": c.id, "name": c.name, "typical_impact": c.typical_impact,
                 "crosswalk": sorted({m.scheme + ":" + m.code for m in c.crosswalk})} for c in categories]
        _emit_table(rows, [("id", "ID"), ("name", "Name"), ("typical_impact", "Typical impact"),
                           ("crosswalk", "Crosswalk")], title=f"{loaded.name} v{loaded.version}")
        return
    from rich.markdown import Markdown

    category = categories[0]
    parts = [f"# {category.name} (`{category.id}`)", category.description, f"**Typical impact:** {category.typical_impact}",
             "## Common scenarios", *[f"- {s}" for s in category.scenarios],
             "## Prevention", *[f"- {s}" for s in category.prevention],
             "## Labelling notes", *[f"- {s}" for s in category.labelling_notes]]
    if category.record:
        parts += ["## A post-mortem of this kind records", *[f"- {hint.hint}" for hint in category.record]]
    if category.crosswalk:
        parts += ["## Crosswalk", "| scheme | code | name | relation | note |", "|---|---|---|---|---|",
                  *[f"| {m.scheme} | {m.code} | {m.name or ''} | {m.relation} | {m.note} |" for m in category.crosswalk]]
    _stdout_console().print(Markdown("\n\n".join(parts[:3]) + "\n\n" + "\n".join(parts[3:])))


# -- entry point --------------------------------------------------------------------------

def main() -> None:
    """Console-script entry: run the app and turn agentpm errors into one-line messages."""
    try:
        app()
    except AgentPMError as exc:
        _stderr(f"agentpm: error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _stderr("agentpm: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # `agentpm list | head`: the reader went away; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
        if os.environ.get("AGENTPM_DEBUG"):
            raise
        _stderr(f"agentpm: internal error: {type(exc).__name__}: {exc} (set AGENTPM_DEBUG=1 for the traceback, "
                "and please report it)")
        sys.exit(2)

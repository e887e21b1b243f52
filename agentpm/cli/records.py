"""`agentpm validate`, `list`, `schema`, `taxonomy show`: reading records and the taxonomy."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from agentpm.cli.app import FORCE_OPT, PATHS_ARG, TAXONOMY_OPT, app, load, settings, taxonomy_app
from agentpm.cli.output import (
    LIST_FORMATS,
    TAXONOMY_FORMATS,
    emit,
    format_option,
    note,
    report_problems,
)

LIST_COLUMNS = [
    ("id", "ID"),
    ("date", "Date"),
    ("severity", "Sev"),
    ("category", "Category"),
    ("title", "Title"),
    ("path", "Path"),
]
LIST_CSV = [
    "path",
    "id",
    "title",
    "date",
    "severity",
    "status",
    "category",
    "secondary",
    "predicted",
    "label_source",
    "format",
]
PROBLEM_CSV = ["path", "line", "kind", "field", "message"]


@app.command()
def validate(
    paths: list[Path] | None = PATHS_ARG,
    output_format: LIST_FORMATS = format_option(LIST_FORMATS),
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Parse incident files and report every problem as file:line: message.

    Exit code 0 when every file is a valid incident, 1 when some are invalid, 2 when some
    cannot be read at all.

    Example: agentpm validate corpus/ --format json
    """
    corpus, _, _ = load(paths, taxonomy)
    problems = corpus.sorted_problems()
    # The table form is the compiler-style list of problems, one per line.
    shown = "text" if output_format == "table" else output_format
    emit(
        corpus.validation_results(),
        shown,
        csv_data=[problem.to_dict() for problem in problems],
        csv_columns=PROBLEM_CSV,
        text="".join(f"{problem}\n" for problem in problems),
    )
    note(corpus.validation_summary())
    raise typer.Exit(corpus.exit_code)


@app.command("list")
def list_incidents(
    paths: list[Path] | None = PATHS_ARG,
    output_format: LIST_FORMATS = format_option(LIST_FORMATS),
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """List incidents, one row each: id, date, severity, category, title, path.

    Files with problems are skipped and reported on stderr (exit code 1 or 2).

    Example: agentpm list corpus/ --format csv > incidents.csv
    """
    from agentpm.classifier.review import label_source_of

    corpus, _, _ = load(paths, taxonomy)
    sources = {str(incident.path): label_source_of(incident)[1] for incident in corpus.incidents}
    rows = [{**row, "label_source": sources[row["path"]]} for row in corpus.summary_rows()]
    emit(rows, output_format, LIST_COLUMNS, title=f"{len(rows)} incidents", csv_columns=LIST_CSV)
    report_problems(corpus.problems)
    raise typer.Exit(corpus.exit_code)


@app.command()
def schema(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    force: bool = FORCE_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Print the JSON Schema of an incident record, for editors that validate front matter.

    Example: agentpm schema -o incident.schema.json
    """
    from agentpm.records.incident import incident_json_schema
    from agentpm.records.writing import write_new_file
    from agentpm.taxonomy import load_taxonomy

    ids = load_taxonomy(settings(taxonomy=taxonomy).taxonomy).ids
    text = json.dumps(incident_json_schema(ids), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        emit(None, "text", text=text)
        return
    write_new_file(output, text, overwrite=force)
    note(f"wrote {output}")


@taxonomy_app.command("show")
def taxonomy_show(
    category_id: str | None = typer.Argument(None, metavar="[ID]", help="Show only this category."),
    output_format: TAXONOMY_FORMATS = format_option(TAXONOMY_FORMATS),
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Show the failure taxonomy, or one category with its guidance and crosswalk.

    Example: agentpm taxonomy show tool-api-drift --format yaml
    """
    from agentpm.taxonomy import category_markdown, load_taxonomy

    loaded = load_taxonomy(settings(taxonomy=taxonomy).taxonomy)
    payload = loaded.payload(category_id)
    if output_format == "yaml":
        import yaml

        emit(payload, "text", text=yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=100))
    elif output_format == "table" and category_id:
        emit(payload, "markdown", text=category_markdown(loaded.get(category_id)))
    else:
        emit(
            payload,
            output_format,
            [
                ("id", "ID"),
                ("name", "Name"),
                ("typical_impact", "Typical impact"),
                ("crosswalk", "Crosswalk"),
            ],
            title=f"{loaded.name} v{loaded.version}",
            table_data=loaded.summary_rows(),
        )

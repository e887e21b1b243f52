"""`agentpm redact`, `agentpm import`, `agentpm export`: incident files out, in and flattened."""

from __future__ import annotations

from pathlib import Path

import typer

from agentpm.cli.app import FORCE_OPT, PATHS_ARG, TAXONOMY_OPT, app, load, paths_or_corpus, settings
from agentpm.cli.output import choices, emit, format_option, formats, note, value
from agentpm.errors import UsageError

SUMMARY_FORMATS = formats("table", "json")
EXPORT_FORMATS = formats("csv", "jsonl", "parquet")
IMPORT_KINDS = choices("genai-incidents", "aiid", "csv", "json", "jsonl", "markdown")
IMPORT_PRESETS = choices("jira", "pagerduty", "incident-io")
EXPORT_TABLES = choices("incidents", "action-items")

REDACT_COLUMNS = [("kind", "Kind"), ("count", "Replaced"), ("files", "Files")]
IMPORT_COLUMNS = [("outcome", "Outcome"), ("count", "Count"), ("examples", "First examples")]


@app.command("redact")
def redact(
    paths: list[Path] | None = PATHS_ARG,
    output_dir: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write redacted copies into this folder (same layout).",
        show_default=False,
    ),
    in_place: bool = typer.Option(
        False, "--in-place", help="Replace each file with its redacted text (atomic)."
    ),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 when anything would be redacted."
    ),
    force: bool = FORCE_OPT,
    output_format: SUMMARY_FORMATS = format_option(SUMMARY_FORMATS),
) -> None:
    """Take secrets and personal data out of incident files, leaving typed placeholders.

    Keys and tokens (AWS, GitHub, OpenAI, Anthropic, Slack, Stripe, Google, Bearer, JWT, PEM
    private keys), passwords in URLs and password/secret/token/api_key fields, secret query
    parameters, e-mail addresses, phone numbers, IP addresses, Luhn-valid card numbers, US SSNs
    and IBANs become [EMAIL-1], [AWS-KEY-1]... (the same secret, the same placeholder within a
    file). Ids, dates, versions, hashes, UUIDs and everything else stay byte for byte. Custom
    patterns and an allow-list: [redact] in agentpm.toml. Prints counts per kind, never a
    secret. Exit 0 done, 1 a file refused (it would no longer parse) or, with --check,
    something to redact; 2 unreadable input.

    Example: agentpm redact corpus/ -o redacted/
    """
    from agentpm.exchange import redact as core

    if sum([output_dir is not None, in_place, check]) != 1:
        raise UsageError("choose one of -o DIR (redacted copies), --in-place or --check")
    rules = core.load_rules(".")
    chosen = list(paths) if paths else paths_or_corpus(None, settings())
    run = core.redact_paths(chosen, rules, out_dir=output_dir, in_place=in_place, overwrite=force)
    for result in run.files:
        if result.message:
            note(f"agentpm: {result.message}")
        for line, kind in result.lines if check else ():
            note(f"{result.path}:{line}: {kind} would be redacted")
    rows = run.kind_rows()
    emit(
        run.to_dict(),
        output_format,
        REDACT_COLUMNS,
        title=f"redact: {len(run.files)} files read",
        table_data=rows,
    )
    note(f"agentpm: {sum(row['count'] for row in rows)} replacements in {len(run.files)} files")
    raise typer.Exit(run.exit_code(check))


@app.command("import")
def import_incidents(
    kind: IMPORT_KINDS = typer.Argument(..., help="What the sources are."),
    sources: list[Path] | None = typer.Argument(
        None, help="Source files (folders for markdown); genai-incidents: none for the installed package."
    ),
    output_dir: Path = typer.Option(..., "--output", "-o", help="Folder for the new incident files."),
    mapping: str | None = typer.Option(
        None, "--map", help="Columns onto fields: title=Summary,date=Created,..."
    ),
    preset: IMPORT_PRESETS | None = typer.Option(None, "--preset", help="Column mapping of a tool's export."),
    licence: str | None = typer.Option(
        None, "--licence", help="Licence of the source (stored in each file)."
    ),
    output_format: SUMMARY_FORMATS = format_option(SUMMARY_FORMATS),
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Write one incident file (Markdown with front matter) per usable record of other sources.

    Kinds: genai-incidents (pip install 'agentpm[genai]'), aiid (AI Incident Database
    snapshot: incidents and optionally reports, JSON or CSV), csv/json/jsonl (--map and
    --preset jira|pagerduty|incident-io), markdown (post-mortems without front matter). Each
    file records source, licence and imported_at; dates and severities are normalised with
    the original kept beside. Never overwrites; an id already in the folder is skipped. Exit 0
    all written, 1 rows skipped (reasons printed), 2 unreadable source or usage error.

    Example: agentpm import csv jira.csv --preset jira -o imported/
    """
    from agentpm.exchange import sources as core
    from agentpm.taxonomy import load_taxonomy

    options = core.Options(
        mapping=core.parse_mapping(mapping),
        preset=value(preset),
        licence=licence,
        known_ids=frozenset(load_taxonomy(settings(taxonomy=taxonomy).taxonomy).ids),
    )
    run = core.run_import(value(kind), list(sources or []), output_dir, options)
    for unreadable in run.unreadable:
        note(f"agentpm: {unreadable.reason}")
    emit(
        run.to_dict(),
        output_format,
        IMPORT_COLUMNS,
        title=f"import into {output_dir}",
        table_data=run.summary_rows(),
    )
    note(f"agentpm: {len(run.written)} written, {len(run.skipped)} skipped, {len(run.unreadable)} unreadable")
    raise typer.Exit(run.exit_code)


@app.command("export")
def export(
    paths: list[Path] | None = PATHS_ARG,
    output: Path = typer.Option(..., "--output", "-o", help="File to write (- for standard output)."),
    file_format: EXPORT_FORMATS | None = format_option(
        EXPORT_FORMATS, default=None, help="csv, jsonl or parquet (default: from the -o suffix)."
    ),
    table: EXPORT_TABLES = typer.Option(
        EXPORT_TABLES("incidents"), "--table", help="incidents or action-items."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Day that decides what is overdue (default: today, UTC)."
    ),
    force: bool = FORCE_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Write the corpus as one flat table: one row per valid incident, or per action item.

    Every field, unknown ones too, flattened (lists joined with ';'); time_to_detect_s and
    time_to_resolve_s when both ends carry a time; category (human label), label_source,
    prediction_category and prediction_confidence (stored by classify --write). Parquet needs
    pip install 'agentpm[parquet]'. Never overwrites without --force.

    Example: agentpm export corpus/ --format parquet -o incidents.parquet
    """
    from agentpm.exchange.export import export_table
    from agentpm.postmortem.scaffold import parse_day

    corpus, _, _ = load(paths, taxonomy)
    rows = export_table(
        corpus.incidents, output, value(file_format), value(table), parse_day(as_of, "--as-of"), force
    )
    for problem in corpus.problems:
        note(str(problem))
    note(f"agentpm: wrote {rows} rows to {output}")
    raise typer.Exit(corpus.exit_code)

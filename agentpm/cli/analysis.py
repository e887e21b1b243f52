"""`agentpm trends` and `agentpm report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agentpm.cli.app import FORCE_OPT, MODEL_OPT, PATHS_ARG, TAXONOMY_OPT, app, paths_or_corpus, settings
from agentpm.cli.output import (
    REPORT_FORMATS,
    TREND_FORMATS,
    Progress,
    choices,
    emit,
    format_option,
    note,
    report_problems,
    value,
)

LABELS = choices("auto", "human", "predicted")
COUNTS = choices("primary", "any")
COUNT_OPT = typer.Option(
    COUNTS("primary"),
    "--count",
    help="primary: each incident once, under its root cause; any: also under each secondary (contributing) "
    "category, so shares add up to more than 100 %.",
)
PERIODS = choices("quarter", "month", "year")
LABELS_OPT = typer.Option(
    LABELS("auto"),
    "--labels",
    help="Which label counts: auto (human, else stored prediction, else the model now), "
    "human only, or predicted only.",
)
NO_CACHE_OPT = typer.Option(
    False,
    "--no-cache",
    help="Do not read or write the parse cache (user cache folder, or $AGENTPM_CACHE_DIR).",
)


def labelled_records(
    paths: list[Path] | None,
    taxonomy: Path | None,
    model: Path | None,
    labels: Any,
    no_cache: bool,
    count: Any = "primary",
) -> tuple[Any, Any, Any, Any]:
    """Read the records (through the cache) and give each its label, as --labels says; with
    --count any, an incident also counts under each of its secondary categories."""
    from agentpm.analysis.trends import PassLabeller, resolve_labels, with_contributing
    from agentpm.records.cache import ParseCache, cache_folder, load_records
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy, model=model)
    loaded_taxonomy = load_taxonomy(chosen.taxonomy)
    chosen_paths = paths_or_corpus(paths, chosen)
    cache = ParseCache(None if no_cache else cache_folder(corpus=chosen_paths), warn=note)
    try:
        with Progress("reading", minimum=500) as reading:
            records = load_records(
                chosen_paths,
                taxonomy=loaded_taxonomy,
                cache=cache,
                progress=reading,
                labeller=PassLabeller(value(labels), chosen.model, loaded_taxonomy),
            )
        with Progress("classifying", minimum=500) as classifying:
            labelled, info = resolve_labels(
                records.records,
                value(labels),
                loaded_taxonomy,
                chosen.model,
                cache=cache,
                progress=classifying,
                made=records.labelled,
            )
    finally:
        cache.close()
    if value(count) == "any":
        labelled = with_contributing(labelled)
    return labelled, info, records, loaded_taxonomy


@app.command("trends")
def trends_command(
    paths: list[Path] | None = PATHS_ARG,
    by: PERIODS = typer.Option(PERIODS("quarter"), "--by", help="Period to count by."),
    since: str | None = typer.Option(
        None, "--since", help="First date or period to include (2025-07-01, 2025Q3).", show_default=False
    ),
    until: str | None = typer.Option(
        None, "--until", help="Last date or period to include (inclusive).", show_default=False
    ),
    labels: LABELS = LABELS_OPT,
    count: COUNTS = COUNT_OPT,
    output_format: TREND_FORMATS = format_option(TREND_FORMATS),
    model: Path | None = MODEL_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
    no_cache: bool = NO_CACHE_OPT,
) -> None:
    """Count incidents per period and category: share with a 95 % Wilson interval, and the
    change against the previous period with a two-proportion test ("no significant change"
    unless p < 0.05).

    Periods without incidents show as zeros; dates are bucketed in UTC. Unclassified
    incidents (the model abstained) are a row of their own. Incidents without a date are
    counted on stderr.

    Example: agentpm trends corpus/ --by quarter --since 2025Q3 --format json
    """
    from agentpm.analysis import trends as core

    start, end = core.parse_window(since, until)
    labelled, info, records, loaded_taxonomy = labelled_records(
        paths, taxonomy, model, labels, no_cache, count
    )
    table = core.trend_table(labelled, loaded_taxonomy, value(by), since=start, until=end, as_of=core.now())
    summary = table.sentence()
    emit(
        table.rows,
        output_format,
        core.TABLE_COLUMNS,
        title=summary,
        table_data=core.display_rows(table.rows),
        csv_columns=core.CSV_COLUMNS,
        text=core.trends_markdown(table.rows, summary, value(by), value(labels)),
    )
    note(f"agentpm: {summary}")
    if table.undated:
        note(f"agentpm: {table.undated} incidents have no date and are not in any period")
    report_problems(records.problems)
    raise typer.Exit(records.exit_code)


@app.command("report")
def report_command(
    paths: list[Path] | None = PATHS_ARG,
    quarter: str | None = typer.Option(
        None,
        "--quarter",
        "-q",
        help="Quarter to report, e.g. 2026Q1 (default: the latest complete quarter in the data).",
        show_default=False,
    ),
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Report date: decides which quarter is complete and "
        "which action items are overdue (default: today, UTC).",
        show_default=False,
    ),
    output_format: REPORT_FORMATS | None = format_option(
        REPORT_FORMATS, default=None, help="Output format (default: from the -o suffix, else md)."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write to this file (Markdown: the charts are "
        "written next to it as FILE-STEM-trend.svg and -severity.svg).",
        show_default=False,
    ),
    force: bool = FORCE_OPT,
    labels: LABELS = LABELS_OPT,
    count: COUNTS = COUNT_OPT,
    model: Path | None = MODEL_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
    no_cache: bool = NO_CACHE_OPT,
) -> None:
    """The quarterly frequency report: per category count, frequency with interval, typical
    impact and change; trend and severity charts; time to detect/resolve (median, p90);
    action items done/open/overdue; rising patterns with prevention strategies; notable
    incidents; caveats and provenance.

    HTML is one self-contained file (inline SVG and CSS, no scripts, no network). Files
    with problems are skipped, listed on stderr, and counted in the report's footer.

    Example: agentpm report corpus/ --quarter 2026Q3 -o 2026Q3.html
    """
    from agentpm.analysis import reporting as core
    from agentpm.postmortem.scaffold import parse_day

    fmt, targets = core.output_plan(output, value(output_format), force)
    day = parse_day(as_of, "--as-of")
    with core.ChartDrawing(output, fmt) as drawing:
        labelled, info, records, loaded_taxonomy = labelled_records(
            paths, taxonomy, model, labels, no_cache, count
        )
        report, text = core.produce_report(
            labelled,
            info,
            loaded_taxonomy,
            records,
            quarter=quarter,
            as_of=day,
            output=output,
            output_format=fmt,
            force=force,
            templates=settings(taxonomy=taxonomy, model=model).templates,
            count_mode=value(count),
            drawing=drawing,
        )
    emit(report, "text", text=text or "")
    if output:
        note(f"wrote {output}" + (f" and {len(targets) - 1} charts beside it" if len(targets) > 1 else ""))
    note(f"agentpm: {report['quarter']}: {report['incidents']} incidents; " + info.sentence(len(labelled)))
    report_problems(records.problems)
    raise typer.Exit(records.exit_code)

"""`agentpm trends`, `agentpm report` (registered on the main app)."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, List, Optional

import typer

from agentpm.cli import (MODEL_OPT, PATHS_ARG, TAXONOMY_OPT, _emit_csv, _emit_json, _emit_table, _paths_or_corpus,
                         _Progress, _report_problems, _settings, _stderr, app)
from agentpm.errors import UsageError


class TrendFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class ReportFormat(str, Enum):
    md = "md"
    html = "html"
    json = "json"


class Period(str, Enum):
    quarter = "quarter"
    month = "month"
    year = "year"


class Labels(str, Enum):
    auto = "auto"
    human = "human"
    predicted = "predicted"


LABELS_OPT = typer.Option(Labels.auto, "--labels", help="Which label counts: auto (human, else stored prediction, "
                          "else the model now), human only, or predicted only.")
NO_CACHE_OPT = typer.Option(False, "--no-cache", help="Do not read or write the parse cache "
                            "(.agentpm-cache/ or $AGENTPM_CACHE_DIR).")


def _labelled(paths: Optional[List[Path]], taxonomy: Optional[Path], model: Optional[Path], labels: Labels,
              no_cache: bool):
    from agentpm.cache import ParseCache, cache_folder, load_records
    from agentpm.taxonomy import load_taxonomy
    from agentpm.trends import resolve_labels

    settings = _settings(taxonomy=taxonomy, model=model)
    loaded_taxonomy = load_taxonomy(settings.taxonomy)
    chosen = _paths_or_corpus(paths, settings)
    cache = ParseCache(None if no_cache else cache_folder(), warn=_stderr)
    try:
        with _Progress("reading", minimum=500) as reading:
            records = load_records(chosen, taxonomy=loaded_taxonomy, cache=cache, progress=reading)
        with _Progress("classifying", minimum=500) as classifying:
            labelled, info = resolve_labels(records.records, labels.value, loaded_taxonomy, settings.model,
                                            cache=cache, progress=classifying)
    finally:
        cache.close()
    return labelled, info, records, loaded_taxonomy


def _finish(records: Any) -> None:
    _report_problems(records.problems)
    raise typer.Exit(records.exit_code)


TREND_COLUMNS = [("period", "Period"), ("category", "Category"), ("count", "Count"), ("share_text", "Share"),
                 ("ci", "95% CI"), ("change", "Change vs previous")]
TREND_CSV = ["period", "category", "count", "period_total", "share", "share_low", "share_high", "human_labelled",
             "model_labelled", "previous_share", "change_pp", "p_value", "significant", "change"]


@app.command("trends")
def trends_command(
    paths: Optional[List[Path]] = PATHS_ARG,
    by: Period = typer.Option(Period.quarter, "--by", help="Period to count by."),
    since: Optional[str] = typer.Option(None, "--since", help="First date or period to include (2025-07-01, 2025Q3).",
                                        show_default=False),
    until: Optional[str] = typer.Option(None, "--until", help="Last date or period to include (inclusive).",
                                        show_default=False),
    labels: Labels = LABELS_OPT,
    output_format: TrendFormat = typer.Option(TrendFormat.table, "--format", "-f", help="Output format."),
    model: Optional[Path] = MODEL_OPT,
    taxonomy: Optional[Path] = TAXONOMY_OPT,
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
    from agentpm.trends import parse_bound, trend_table

    start = parse_bound(since, "--since", end=False) if since else None
    end = parse_bound(until, "--until", end=True) if until else None
    if start and end and end <= start:
        raise UsageError(f"--until {until} is before --since {since}")
    labelled, info, records, loaded_taxonomy = _labelled(paths, taxonomy, model, labels, no_cache)
    table = trend_table(labelled, loaded_taxonomy, by.value, since=start, until=end)
    rows = table.rows
    summary = info.sentence(len(labelled))
    if output_format is TrendFormat.json:
        _emit_json(rows)
    elif output_format is TrendFormat.csv:
        _emit_csv(rows, TREND_CSV)
    else:
        shown = []
        previous_period = None
        for row in rows:
            shown.append({**row, "period": row["period"] if row["period"] != previous_period else "",
                          "share_text": f"{100 * row['share']:.1f}%" if row["period_total"] else "–",
                          "ci": f"{100 * row['share_low']:.1f}–{100 * row['share_high']:.1f}%"
                          if row["period_total"] else "–"})
            previous_period = row["period"]
        if output_format is TrendFormat.markdown:
            lines = [f"# Incidents by {by.value} and category", "", summary + f" (labels: {labels.value}).", "",
                     "| Period | Category | Count | Share | 95 % CI | Change vs previous |",
                     "|---|---|---:|---:|---:|---|"]
            for row, full in zip(shown, rows):
                change = row["change"] if row["change_pp"] is None else f"{row['change']} ({row['change_pp']:+.1f} pp)"
                lines.append(f"| {full['period']} | {row['category']} | {row['count']} | {row['share_text']} | "
                             f"{row['ci']} | {change} |")
            sys.stdout.write("\n".join(lines) + "\n")
        else:
            _emit_table(shown, TREND_COLUMNS, title=summary)
    _stderr(f"agentpm: {summary}")
    if table.undated:
        _stderr(f"agentpm: {table.undated} incidents have no date and are not in any period")
    _finish(records)


def _link_maker(base: Path):
    from urllib.parse import quote

    start = os.path.abspath(base)

    def link(path: str) -> str:
        return quote(Path(os.path.relpath(os.path.abspath(path), start)).as_posix())

    return link


@app.command("report")
def report_command(
    paths: Optional[List[Path]] = PATHS_ARG,
    quarter: Optional[str] = typer.Option(None, "--quarter", "-q", help="Quarter to report, e.g. 2026Q1 "
                                          "(default: the latest complete quarter in the data).", show_default=False),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Report date: decides which quarter is complete and "
                                        "which action items are overdue (default: today, UTC).", show_default=False),
    output_format: Optional[ReportFormat] = typer.Option(None, "--format", "-f", help="Output format "
                                                         "(default: from the -o suffix, else md).", show_default=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file (Markdown: the charts are "
                                          "written next to it as FILE-STEM-trend.svg and -severity.svg).",
                                          show_default=False),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT (and its chart files) if they exist."),
    labels: Labels = LABELS_OPT,
    model: Optional[Path] = MODEL_OPT,
    taxonomy: Optional[Path] = TAXONOMY_OPT,
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
    from agentpm.reporting import charts, quarter_label, render_report

    chosen_quarter = quarter_label(quarter) if quarter else None
    from agentpm.scaffold import parse_day

    report_date = parse_day(as_of, "--as-of")
    if output_format is None:
        suffix = output.suffix.lower() if output else ""
        output_format = {".html": ReportFormat.html, ".htm": ReportFormat.html,
                         ".json": ReportFormat.json}.get(suffix, ReportFormat.md)
    chart_paths: dict[str, Path] = {}
    if output is not None:
        if output_format is ReportFormat.md:
            chart_paths = {name: output.with_name(f"{output.stem}-{name}.svg") for name in ("trend", "severity")}
        if not force:
            from agentpm.errors import WriteError

            for target in [output, *chart_paths.values()]:
                if target.exists():
                    raise WriteError(f"{target}: already exists; agentpm never overwrites a file (pass --force to "
                                     "replace it, or choose another -o)")
    labelled, info, records, loaded_taxonomy = _labelled(paths, taxonomy, model, labels, no_cache)
    from agentpm.reporting import build_report

    settings = _settings(taxonomy=taxonomy, model=model)
    report = build_report(labelled, info, loaded_taxonomy, chosen_quarter, report_date, records.files_read,
                          len(records.problems), link=_link_maker(output.parent if output else Path(".")))
    svgs = charts(report) if output_format is ReportFormat.html or chart_paths else {}
    text = render_report(report, output_format.value, chart_files={name: path.name for name, path in chart_paths.items()},
                         svgs=svgs, templates=settings.templates)
    if output is None:
        sys.stdout.write(text)
    else:
        from agentpm.writing import write_new_file

        for name, path in chart_paths.items():
            write_new_file(path, svgs[name], overwrite=force)
        write_new_file(output, text, overwrite=force)
        _stderr(f"wrote {output}" + (f" and {len(chart_paths)} charts beside it" if chart_paths else ""))
    _stderr(f"agentpm: {report['quarter']}: {report['incidents']} incidents; " + info.sentence(len(labelled)))
    _finish(records)

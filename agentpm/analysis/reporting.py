"""The quarterly frequency report: its numbers as one dict, its charts, and its renderings.

``build_report`` computes everything (so JSON, Markdown and HTML carry the same numbers);
``render_report`` turns it into Markdown, HTML or JSON through the package templates;
``charts`` draws the two figures with matplotlib's Agg backend as deterministic SVG, so
committed sample reports can be compared byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agentpm import __version__
from agentpm.analysis.trends import (
    UNCLASSIFIED,
    LabelInfo,
    Labelled,
    categories_of,
    period_end,
    period_of,
    period_start,
    shift,
    trend_table,
)
from agentpm.display import clean
from agentpm.errors import UsageError, WriteError
from agentpm.parallel import Helper
from agentpm.records.cache import Records
from agentpm.records.writing import write_new_file
from agentpm.taxonomy import Taxonomy

SEVERITY_COLUMNS = ("SEV1", "SEV2", "SEV3", "SEV4", "unknown")
TREND_QUARTERS = 8
NOTABLE_MINIMUM = 5
NOTABLE_MAXIMUM = 10
OVERDUE_LISTED = 10
#: One colour per category position, then grey for unclassified: stable between reports.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
UNCLASSIFIED_COLOUR = "#7f7f7f"
SEVERITY_COLOURS = {
    "SEV1": "#b2182b",
    "SEV2": "#ef8a62",
    "SEV3": "#fddbc7",
    "SEV4": "#d1e5f0",
    "unknown": "#bdbdbd",
}

CAVEAT = (
    "Counts reflect the incidents that were reported and written up, not true failure rates: a rise can "
    "mean more failures, more reporting or better detection, and small teams see large swings by chance. "
    "Frequencies are shares of the quarter's incidents with 95 % Wilson intervals; a change is called "
    "significant when a two-sided two-proportion z-test against the previous quarter gives p < 0.05, "
    "with no correction for testing several categories at once. Model labels abstain when unsure: "
    "those incidents are counted as unclassified, not spread over the categories."
)


# -- small numeric helpers -------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation quantile (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration(seconds: float | None) -> str:
    """45m, 3h 20m, 2d 4h: precise enough for a review table."""
    if seconds is None:
        return "–"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def percent(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def quarter_label(text: str) -> str:
    """Normalise a --quarter value (2026Q1, 2026q1) or refuse it with the expected shape."""
    match = re.fullmatch(r"(\d{4})[Qq]([1-4])", text.strip())
    if not match:
        raise UsageError(f"--quarter {text!r}: use the form 2026Q1")
    return f"{match[1]}Q{match[2]}"


def default_quarter(labelled: Sequence[Labelled], as_of: date) -> str:
    """The latest quarter with incidents that had ended by the report date."""
    cutoff = datetime(as_of.year, as_of.month, as_of.day, tzinfo=timezone.utc)
    quarters = {period_of(item.record.start, "quarter") for item in labelled if item.record.start is not None}
    complete = sorted((q for q in quarters if period_end(q) <= cutoff), key=period_start)
    if not complete:
        raise UsageError(
            f"no complete quarter with dated incidents as of {as_of.isoformat()}; "
            "pass --quarter 2026Q1 (or --as-of a later date)"
        )
    return complete[-1]


# -- the report's numbers --------------------------------------------------------------------


def _category_names(taxonomy: Taxonomy) -> dict[str, str]:
    return {**{category.id: category.name for category in taxonomy.categories}, UNCLASSIFIED: "Unclassified"}


def _timing(items: Sequence[Labelled], category: str) -> dict[str, Any]:
    detect = [item.record.ttd for item in items if item.record.ttd is not None]
    resolve = [item.record.ttr for item in items if item.record.ttr is not None]
    row: dict[str, Any] = {"category": category, "incidents": len(items)}
    for name, values in (("detect", detect), ("resolve", resolve)):
        median, p90 = quantile(values, 0.5), quantile(values, 0.9)
        row[name] = {
            "n": len(values),
            "median_seconds": None if median is None else round(median, 1),
            "p90_seconds": None if p90 is None else round(p90, 1),
            "median": duration(median),
            "p90": duration(p90),
        }
    return row


def _actions(items: Sequence[Labelled], category: str, as_of: date) -> dict[str, Any]:
    done = sum(item.record.actions_done for item in items)
    still_open = sum(item.record.actions_open for item in items)
    wontfix = sum(item.record.actions_wontfix for item in items)
    return {
        "category": category,
        "total": done + still_open + wontfix,
        "done": done,
        "open": still_open,
        "wontfix": wontfix,
        "overdue": sum(len(item.record.overdue_actions(as_of)) for item in items),
    }


#: How each incident got its label, as the report's provenance table shows it.
LABEL_SOURCE_COLUMNS = (
    ("human", ("human",)),
    ("accepted_prediction", ("accepted-prediction",)),
    ("imported", ("imported",)),
    ("model", ("stored", "model")),
)
#: Below this many incidents in a quarter a share is a handful of reports: the chart says so.
SMALL_COUNT = 10
BREAKDOWN_TOP = 10


def _top_values(lists: Any) -> list[dict[str, Any]]:
    """The most frequent values across the incidents' lists, with counts (ties by name)."""
    counts = Counter(value for values in lists for value in dict.fromkeys(values))
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return [{"value": value, "count": count} for value, count in ranked[:BREAKDOWN_TOP]]


def build_report(
    labelled: Sequence[Labelled],
    info: LabelInfo,
    taxonomy: Taxonomy,
    quarter: str | None,
    as_of: date,
    files_read: int,
    problems: int,
    link: Callable[[str], str] = lambda path: path,
    count_mode: str = "primary",
    charts_from: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every number of the quarterly report, JSON-ready; ``link`` maps an incident path to a link
    target. ``charts_from`` is given :func:`chart_data` as soon as it is known, so the charts
    can be drawn elsewhere while the rest is built."""
    quarter = quarter_label(quarter) if quarter else default_quarter(labelled, as_of)
    names = _category_names(taxonomy)
    categories = categories_of(taxonomy)
    impacts = {category.id: category.typical_impact for category in taxonomy.categories}
    first = shift(quarter, "quarter", -(TREND_QUARTERS - 1))
    # Quarters before the first report are not zero-incident quarters: they predate the data.
    earliest = min((item.record.start for item in labelled if item.record.start is not None), default=None)
    if earliest is not None and period_start(first) < earliest:
        first = min(period_of(earliest, "quarter"), quarter, key=period_start)
    report_moment = datetime(as_of.year, as_of.month, as_of.day, tzinfo=timezone.utc) + timedelta(days=1)
    table = trend_table(
        labelled,
        taxonomy,
        "quarter",
        since=period_start(first),
        until=period_end(quarter),
        first=first,
        last=quarter,
        as_of=report_moment,
    )
    by_cell = {(row["period"], row["category"]): row for row in table.rows}
    in_quarter = [
        item
        for item in labelled
        if item.record.start is not None and period_of(item.record.start, "quarter") == quarter
    ]
    total = len(in_quarter)
    previous = shift(quarter, "quarter", -1)
    # A quiet quarter is a result, not an error: the report says so and still draws the trend.

    headline = []
    for category in categories:
        row = by_cell[(quarter, category)]
        headline.append(
            {
                "category": category,
                "name": names[category],
                "count": row["count"],
                "share": row["share"],
                "share_low": row["share_low"],
                "share_high": row["share_high"],
                "typical_impact": impacts.get(
                    category, "Not classified: read these incidents and label them."
                ),
                "previous_count": by_cell[(previous, category)]["count"]
                if (previous, category) in by_cell
                else 0,
                "previous_share": row["previous_share"],
                "change_pp": row["change_pp"],
                "p_value": row["p_value"],
                "significant": row["significant"],
                "change": row["change"],
            }
        )

    trend = {
        "quarters": table.periods,
        "totals": [table.totals[q] for q in table.periods],
        "series": [
            {
                "category": category,
                "name": names[category],
                "counts": [by_cell[(q, category)]["count"] for q in table.periods],
                "shares": [
                    by_cell[(q, category)]["share"] if table.totals[q] else None for q in table.periods
                ],
                "lows": [
                    by_cell[(q, category)]["share_low"] if table.totals[q] else None for q in table.periods
                ],
                "highs": [
                    by_cell[(q, category)]["share_high"] if table.totals[q] else None for q in table.periods
                ],
            }
            for category in categories
        ],
    }

    grouped = {category: [item for item in in_quarter if item.label == category] for category in categories}
    severity = []
    for category in categories:
        counts = Counter(item.record.severity or "unknown" for item in grouped[category])
        severity.append(
            {
                "category": category,
                **{level: counts[level] for level in SEVERITY_COLUMNS},
                "total": len(grouped[category]),
            }
        )

    if charts_from is not None:
        charts_from({"quarter": quarter, "trend": trend, "severity": severity})
    timing = [_timing(grouped[category], category) for category in categories] + [_timing(in_quarter, "all")]
    actions = [_actions(grouped[category], category, as_of) for category in categories] + [
        _actions(in_quarter, "all", as_of)
    ]
    # Overdue items of every quarter: an item from last year that is still open is still overdue.
    overdue = []
    for item in labelled:
        record = item.record
        due_actions = record.overdue_actions(as_of)
        if not due_actions:
            continue
        quarter_of = period_of(record.start, "quarter") if record.start else None
        target = link(record.path)
        for action in due_actions:
            assert action.due is not None
            overdue.append(
                {
                    "due": action.due,
                    "days_overdue": (as_of - date.fromisoformat(action.due)).days,
                    "title": action.title,
                    "owner": action.owner,
                    "category": item.label,
                    "incident_id": record.id,
                    "incident_title": record.title,
                    "incident_quarter": quarter_of,
                    "path": record.path,
                    "link": target,
                }
            )
    overdue.sort(key=lambda row: (row["due"], row["path"], row["title"]))

    prevention = {category.id: list(category.prevention) for category in taxonomy.categories}
    rising = [
        {
            "category": row["category"],
            "name": row["name"],
            "change": row["change"],
            "change_pp": row["change_pp"],
            "p_value": row["p_value"],
            "prevention": prevention.get(row["category"], []),
        }
        for row in headline
        if row["significant"] and (row["change_pp"] or 0) > 0
    ]

    rank = {level: position for position, level in enumerate(SEVERITY_COLUMNS[:4])}
    ranked = sorted(
        (item for item in in_quarter if item.record.severity in rank),
        key=lambda item: (rank[item.record.severity], item.record.start, item.record.path),
    )
    top = [item for item in ranked if item.record.severity == "SEV1"][:NOTABLE_MAXIMUM]
    if len(top) < NOTABLE_MINIMUM:
        top = ranked[: max(NOTABLE_MINIMUM, len(top))]
    notable = [
        {
            "id": item.record.id,
            "title": item.record.title,
            "date": item.record.date,
            "severity": item.record.severity,
            "category": item.label,
            "label_source": item.source,
            "impact": item.record.impact,
            "path": item.record.path,
            "link": link(item.record.path),
        }
        for item in top
    ]
    breakdown = [
        {
            "category": category,
            "systems": _top_values(item.record.systems for item in grouped[category]),
            "tags": _top_values(item.record.tags for item in grouped[category]),
        }
        for category in categories
        if grouped[category]
    ]

    in_quarter_sources = Counter(item.source for item in in_quarter)
    return {
        "title": f"Agent incident report {quarter}",
        "quarter": quarter,
        "previous_quarter": previous,
        "as_of": as_of.isoformat(),
        "period": {
            "start": period_start(quarter).date().isoformat(),
            "end": date.fromordinal(period_end(quarter).date().toordinal() - 1).isoformat(),
        },
        "incidents": total,
        "count_mode": count_mode,
        "partial": quarter in table.partial,
        "small_counts": [q for q in table.periods if 0 < table.totals[q] < SMALL_COUNT],
        "previous_incidents": table.totals.get(previous, 0),
        "labels": {
            "mode": info.mode,
            "human_labelled": in_quarter_sources["human"],
            "accepted_predictions": in_quarter_sources["accepted-prediction"],
            "imported": in_quarter_sources["imported"],
            "model_labelled": in_quarter_sources["stored"] + in_quarter_sources["model"],
            "unclassified": sum(1 for item in in_quarter if item.label == UNCLASSIFIED),
        },
        "headline": headline,
        "trend": trend,
        "severity": severity,
        "timing": timing,
        "actions": {
            "by_category": actions,
            "overdue": overdue,
            "overdue_total": len(overdue),
            "overdue_shown": OVERDUE_LISTED,
        },
        "breakdown": breakdown,
        "label_provenance": [
            {
                "category": category,
                **{
                    name: sum(1 for item in grouped[category] if item.source in sources)
                    for name, sources in LABEL_SOURCE_COLUMNS
                },
            }
            for category in categories
        ],
        "rising": rising,
        "notable": notable,
        "caveat": CAVEAT,
        "provenance": {
            "agentpm_version": __version__,
            "taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "sha256": taxonomy.sha256[:12]},
            "model": info.model_hash,
            "model_used_for": info.predicted_now + info.stored,
            "label_mode": info.mode,
            "files_read": files_read,
            "problems_skipped": problems,
            "incidents_loaded": len(labelled),
            "labels_all": {
                "human_labelled": info.human,
                "model_labelled": info.model,
                "unclassified": info.unclassified,
            },
        },
    }


# -- charts ----------------------------------------------------------------------------------


def _colours(categories: Sequence[str]) -> dict[str, str]:
    return {
        category: (UNCLASSIFIED_COLOUR if category == UNCLASSIFIED else PALETTE[index % len(PALETTE)])
        for index, category in enumerate(categories)
    }


def _svg(figure: Any) -> str:
    import io

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": f"agentpm {__version__}"})
    return buffer.getvalue()


def charts(report: dict[str, Any]) -> dict[str, str]:
    """``{"trend": svg, "severity": svg}``: complete SVG documents, byte-for-byte reproducible."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    style = {
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.dpi": 72,
    }
    categories = [series["category"] for series in report["trend"]["series"]]
    colours = _colours(categories)
    out = {}
    with matplotlib.rc_context({**style, "svg.hashsalt": "agentpm-trend"}):
        out["trend"] = _trend_panels(plt, report, colours)
    with matplotlib.rc_context({**style, "svg.hashsalt": "agentpm-severity"}):
        rows = [row for row in report["severity"] if row["category"] != UNCLASSIFIED or row["total"]]
        names = {series["category"]: series["name"] for series in report["trend"]["series"]}
        figure, axes = plt.subplots(figsize=(8.4, 0.45 * len(rows) + 1.2))
        labels = [names[row["category"]] for row in rows][::-1]
        left = [0] * len(rows)
        for level in SEVERITY_COLUMNS:
            widths = [row[level] for row in rows][::-1]
            if not any(widths):
                continue
            axes.barh(
                labels,
                widths,
                left=left,
                color=SEVERITY_COLOURS[level],
                label=level,
                edgecolor="white",
                linewidth=0.5,
            )
            left = [a + b for a, b in zip(left, widths, strict=False)]
        axes.set_xlabel(f"incidents in {report['quarter']}")
        axes.set_title(f"Severity by category, {report['quarter']}", loc="left")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        axes.xaxis.get_major_locator().set_params(integer=True)
        figure.tight_layout()
        out["severity"] = _svg(figure)
        plt.close(figure)
    return out


def _trend_panels(plt: Any, report: dict[str, Any], colours: dict[str, str]) -> str:
    """Small multiples: one panel per category on shared axes, the share as a line and its 95 %
    interval as a band, so no series can hide another; quarters with few incidents get hollow
    markers, because there a share moves by whole reports."""
    quarters = report["trend"]["quarters"]
    totals = report["trend"]["totals"]
    series = [
        item for item in report["trend"]["series"] if item["category"] != UNCLASSIFIED or any(item["counts"])
    ]
    columns = 3 if len(series) <= 6 else 4
    rows = -(-len(series) // columns)
    figure, grid = plt.subplots(
        rows, columns, figsize=(8.4, 2.1 * rows + 0.6), sharex=True, sharey=True, squeeze=False
    )
    positions = list(range(len(quarters)))
    small = [index for index, total in enumerate(totals) if 0 < total < SMALL_COUNT]
    top = max([high for item in series for high in item["highs"] if high is not None] or [0.0])
    for index, item in enumerate(series):
        axes = grid[index // columns][index % columns]
        colour = colours[item["category"]]
        shares = [float("nan") if share is None else 100 * share for share in item["shares"]]
        lows = [float("nan") if value is None else 100 * value for value in item["lows"]]
        highs = [float("nan") if value is None else 100 * value for value in item["highs"]]
        axes.fill_between(positions, lows, highs, color=colour, alpha=0.18, linewidth=0)
        axes.plot(positions, shares, color=colour, linewidth=1.6, marker="o", markersize=3.5)
        if small:
            axes.plot(
                small,
                [shares[i] for i in small],
                linestyle="none",
                marker="o",
                markersize=5.5,
                markerfacecolor="white",
                markeredgecolor=colour,
            )
        axes.set_title(
            item["name"] if len(item["name"]) <= 34 else item["name"][:32] + "…", loc="left", fontsize=8.5
        )
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_ylim(0, max(5.0, 100 * top * 1.08))
    for index in range(len(series), rows * columns):
        grid[index // columns][index % columns].set_visible(False)
    for axes in grid[-1]:
        axes.set_xticks(positions)
        axes.set_xticklabels(quarters, rotation=60, fontsize=7)
    for index in range(len(series) - columns, len(series)):
        if 0 <= index < len(series) and index // columns < rows - 1:
            # a panel whose lower neighbour is hidden carries the quarter labels itself
            axes = grid[index // columns][index % columns]
            axes.xaxis.set_tick_params(labelbottom=True)
            axes.set_xticks(positions)
            axes.set_xticklabels(quarters, rotation=60, fontsize=7)
    for row in grid:
        row[0].set_ylabel("share (%)")
    note = "band: 95 % interval"
    if small:
        note += "; hollow: fewer than 10 incidents that quarter"
    figure.suptitle(
        f"Share of incidents by category, {quarters[0]}–{quarters[-1]}  ({note})",
        x=0.01,
        ha="left",
        fontsize=9,
    )
    figure.tight_layout()
    svg = _svg(figure)
    plt.close(figure)
    return svg


_ID_ATTRIBUTE = re.compile(r'\bid="([^"]+)"')


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG document made fit to sit inside HTML: no XML prolog, no metadata, ids unique per chart,
    and a width that follows the page."""
    body = svg[svg.index("<svg") :]
    body = re.sub(r"<metadata>.*?</metadata>\s*", "", body, flags=re.S)
    ids = set(_ID_ATTRIBUTE.findall(body))
    body = _ID_ATTRIBUTE.sub(lambda m: f'id="{prefix}-{m[1]}"', body)
    body = re.sub(
        r'(url\(#|href="#)([^")]+)', lambda m: m[1] + (f"{prefix}-{m[2]}" if m[2] in ids else m[2]), body
    )
    body = re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 role="img" class="chart"', body, count=1
    )
    return body.strip() + "\n"


# -- rendering -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md(text: Any) -> str:
    """Incident text made inert in a Markdown table cell: no markup, no raw HTML, no line breaks."""
    if text is None:
        return ""
    value = " ".join(clean(text).split())
    value = _MD_SPECIAL.sub(r"\\\1", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _context(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "r": report,
        "pct": percent,
        "md": md,
        "dur": duration,
        "names": {series["category"]: series["name"] for series in report["trend"]["series"]},
    }


def render_report(
    report: dict[str, Any],
    output_format: str,
    chart_files: dict[str, str] | None = None,
    svgs: dict[str, str] | None = None,
    templates: Any = None,
) -> str:
    """Markdown (``chart_files``: chart name → relative file name, or None to leave charts out),
    self-contained HTML (``svgs`` inline), or JSON."""
    from agentpm.templating import render

    if output_format == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    context = _context(report)
    if output_format == "md":
        return render("report.md.j2", {**context, "chart_files": chart_files or {}}, folder=templates)
    if output_format == "html":
        from markupsafe import Markup

        inline = {name: Markup(inline_svg(svg, f"chart-{name}")) for name, svg in (svgs or {}).items()}
        return render("report.html.j2", {**context, "svgs": inline}, folder=templates)
    raise UsageError(f"--format {output_format!r}: choose md, html or json")


# -- writing a report -----------------------------------------------------------------------

REPORT_FORMATS = ("md", "html", "json")


def report_format(output: Path | None, requested: str | None) -> str:
    """The format asked for, else the one the output file's suffix names, else Markdown."""
    if requested:
        return requested
    suffix = output.suffix.lower() if output else ""
    return {".html": "html", ".htm": "html", ".json": "json"}.get(suffix, "md")


def chart_targets(output: Path | None, output_format: str) -> dict[str, Path]:
    """Markdown reports written to a file get their charts as SVG files beside it."""
    if output is None or output_format != "md":
        return {}
    return {name: output.with_name(f"{output.stem}-{name}.svg") for name in ("trend", "severity")}


def output_plan(output: Path | None, requested: str | None, force: bool) -> tuple[str, list[Path]]:
    """The format to write and every file it will create; refused up front (before the slow
    part) when one exists and ``force`` was not given."""
    fmt = report_format(output, requested)
    targets = [output, *chart_targets(output, fmt).values()] if output else []
    if not force:
        refuse_existing(targets)
    return fmt, targets


def refuse_existing(targets: Sequence[Path]) -> None:
    for target in targets:
        if target.exists():
            raise WriteError(
                f"{target}: already exists; agentpm never overwrites a file (pass --force to "
                "replace it, or choose another -o)"
            )


def relative_linker(base: Path) -> Callable[[str], str]:
    """Links from the report to incident files, relative to where the report is written."""
    start = os.path.abspath(base)
    # Thousands of links share a few folders: each folder's quoted prefix is worked out once
    # (quote() works character by character, so quoting the parts is quoting the whole).
    prefixes: dict[str, str] = {}

    def link(path: str) -> str:
        folder, name = os.path.split(path)
        prefix = prefixes.get(folder)
        if prefix is None:
            relative = Path(os.path.relpath(os.path.abspath(folder or "."), start)).as_posix()
            prefix = prefixes[folder] = "" if relative == "." else quote(relative) + "/"
        return prefix + quote(name)

    return link


def _import_plotting() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: F401


def chart_data(report: dict[str, Any]) -> dict[str, Any]:
    """What :func:`charts` draws from: a small part of the report."""
    return {key: report[key] for key in ("quarter", "trend", "severity")}


class ChartDrawing:
    """The charts of a report written to ``output`` as ``output_format`` (none for JSON, or for
    Markdown on stdout), drawn in a helper process: it imports the plotting library (a third of
    a second) while this one reads the incidents, and draws while the report is finished.

    ``helper=None`` uses one only where that import is still to be paid: a process that has
    matplotlib loaded already (a second report in one session) draws here, at once."""

    def __init__(self, output: Path | None, output_format: str, helper: bool | None = None):
        self.wanted = output_format == "html" or bool(chart_targets(output, output_format))
        if helper is None:
            helper = "matplotlib.pyplot" not in sys.modules
        self._helper = Helper(_import_plotting, start=self.wanted and helper)
        self._started = False

    @property
    def in_helper(self) -> bool:
        """Whether the charts are drawn in a helper process (not yet drawn, or being drawn)."""
        return self._helper.pid is not None

    def start(self, drawn: dict[str, Any]) -> None:
        """Begin drawing from :func:`chart_data` (``build_report`` calls this as soon as it can)."""
        if self.wanted and not self._started:
            self._helper.submit(charts, drawn)
            self._started = True

    def svgs(self, report: dict[str, Any]) -> dict[str, str]:
        if not self.wanted:
            return {}
        self.start(chart_data(report))
        return self._helper.result()

    def close(self) -> None:
        self._helper.close()

    def __enter__(self) -> ChartDrawing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_report(
    report: dict[str, Any],
    output_format: str,
    output: Path | None,
    force: bool = False,
    templates: Path | None = None,
    drawing: ChartDrawing | None = None,
) -> str | None:
    """Render the report; write it (and its chart files) to OUTPUT, or return the text when there is none.

    ``drawing`` (a :class:`ChartDrawing`) draws the charts; without one they are drawn here."""
    targets = chart_targets(output, output_format)
    if drawing is None:
        with ChartDrawing(output, output_format, helper=False) as here:
            svgs = here.svgs(report)
    else:
        svgs = drawing.svgs(report)
    text = render_report(
        report,
        output_format,
        chart_files={name: path.name for name, path in targets.items()},
        svgs=svgs,
        templates=templates,
    )
    if output is None:
        return text
    for name, path in targets.items():
        write_new_file(path, svgs[name], overwrite=force)
    write_new_file(output, text, overwrite=force)
    return None


def produce_report(
    labelled: Sequence[Labelled],
    info: LabelInfo,
    taxonomy: Taxonomy,
    records: Records,
    *,
    quarter: str | None,
    as_of: date,
    output: Path | None,
    output_format: str,
    force: bool = False,
    templates: Path | None = None,
    count_mode: str = "primary",
    drawing: ChartDrawing | None = None,
) -> tuple[dict[str, Any], str | None]:
    """:func:`build_report` from what was read (``records``: files read, problems skipped), then
    :func:`write_report`, the charts drawn by ``drawing`` while the rest of the report is built.
    Returns the report and, without an output path, its text."""
    report = build_report(
        labelled,
        info,
        taxonomy,
        quarter_label(quarter) if quarter else None,
        as_of,
        records.files_read,
        len(records.problems),
        link=relative_linker(output.parent if output else Path(".")),
        count_mode=count_mode,
        charts_from=drawing.start if drawing is not None else None,
    )
    return report, write_report(report, output_format, output, force, templates, drawing)

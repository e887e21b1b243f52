"""How often each failure pattern happened, per period, with honest uncertainty.

Which label counts, per incident (``auto``): the human ``category``, else a stored
``prediction``, else the model's prediction made now. Abstentions are ``unclassified``
and are counted like a category, never dropped. Shares get 95 % Wilson intervals (they
stay inside 0..1 and behave at small counts, unlike the normal approximation); a change
against the previous period is called significant only when a two-sided pooled
two-proportion z-test gives p < 0.05.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from agentpm.errors import AgentPMError, UsageError
from agentpm.records.cache import ParseCache, Record
from agentpm.records.incident import Incident
from agentpm.records.parsing import parse_file
from agentpm.records.quick import TextView
from agentpm.stats import two_proportion_test, wilson
from agentpm.taxonomy import Taxonomy

UNCLASSIFIED = "unclassified"
LABEL_MODES = ("auto", "human", "predicted")
PERIODS = ("quarter", "month", "year")
#: two-sided 95 % normal quantile
ALPHA = 0.05


# -- statistics ------------------------------------------------------------------------------

# -- periods --------------------------------------------------------------------------------


def period_of(instant: datetime, by: str) -> str:
    """``2026Q1``, ``2026-03`` or ``2026`` for a UTC instant."""
    if by == "quarter":
        return f"{instant.year}Q{(instant.month - 1) // 3 + 1}"
    if by == "month":
        return f"{instant.year}-{instant.month:02d}"
    return f"{instant.year}"


_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def period_start(label: str) -> datetime:
    """First instant (UTC) of a period label of any kind."""
    if match := _QUARTER.match(label):
        return datetime(int(match[1]), 3 * int(match[2]) - 2, 1, tzinfo=timezone.utc)
    if (match := _MONTH.match(label)) and 1 <= int(match[2]) <= 12:
        return datetime(int(match[1]), int(match[2]), 1, tzinfo=timezone.utc)
    if match := _YEAR.match(label):
        return datetime(int(match[1]), 1, 1, tzinfo=timezone.utc)
    raise ValueError(label)


def _ordinal(label: str, by: str) -> int:
    start = period_start(label)
    if by == "quarter":
        return start.year * 4 + (start.month - 1) // 3
    if by == "month":
        return start.year * 12 + start.month - 1
    return start.year


def _from_ordinal(number: int, by: str) -> str:
    if by == "quarter":
        return f"{number // 4}Q{number % 4 + 1}"
    if by == "month":
        return f"{number // 12}-{number % 12 + 1:02d}"
    return str(number)


def period_end(label: str) -> datetime:
    """First instant after the period (exclusive end)."""
    by = "quarter" if _QUARTER.match(label) else ("month" if _MONTH.match(label) else "year")
    return period_start(_from_ordinal(_ordinal(label, by) + 1, by))


def periods_between(first: str, last: str, by: str) -> list[str]:
    """Every period from ``first`` to ``last`` inclusive, so empty ones show as zeros."""
    return [_from_ordinal(number, by) for number in range(_ordinal(first, by), _ordinal(last, by) + 1)]


def shift(label: str, by: str, steps: int) -> str:
    return _from_ordinal(_ordinal(label, by) + steps, by)


def parse_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The --since/--until window: its start and its exclusive end, either open."""
    start = parse_bound(since, "--since", end=False) if since else None
    end = parse_bound(until, "--until", end=True) if until else None
    if start and end and end <= start:
        raise UsageError(f"--until {until} is before --since {since}")
    return start, end


def parse_bound(text: str, option: str, end: bool) -> datetime:
    """A --since/--until value: a date (YYYY-MM-DD) or a period (2026Q1, 2026-03, 2026), in UTC.

    ``end`` gives the exclusive end of the day or period, so --until is inclusive.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.fromordinal(day.toordinal() + (1 if end else 0)).replace(tzinfo=timezone.utc)
        return period_end(value) if end else period_start(value)
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: not a date or period; use YYYY-MM-DD, 2026Q1, 2026-03 or 2026"
        ) from None


# -- which label counts -----------------------------------------------------------------------


@dataclass
class Labelled:
    record: Record
    label: str  # a taxonomy id, or UNCLASSIFIED
    source: str  # human | accepted-prediction | imported | stored | model | none


@dataclass
class LabelInfo:
    """How each incident got its label: every output states these counts."""

    mode: str
    human: int = 0
    stored: int = 0
    predicted_now: int = 0
    unclassified: int = 0
    model_hash: str | None = None

    @property
    def model(self) -> int:
        return self.stored + self.predicted_now

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "human_labelled": self.human,
            "model_labelled": self.model,
            "stored_predictions": self.stored,
            "predicted_now": self.predicted_now,
            "unclassified": self.unclassified,
            "model": self.model_hash,
        }

    def sentence(self, total: int) -> str:
        return (
            f"{total} incidents: {self.human} human-labelled, {self.model} model-labelled "
            f"({self.stored} stored, {self.predicted_now} predicted now), {self.unclassified} unclassified"
        )


def quick_model_hash(path: Path | str) -> str | None:
    """The model's hash without loading it (None when there is no model there)."""
    from agentpm.classifier.identity import MANIFEST, WEIGHTS, model_hash

    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    try:
        return model_hash((folder / MANIFEST).read_bytes(), (folder / WEIGHTS).read_bytes())
    except (OSError, ValueError):
        return None


_WORKER_MODEL: Any = None


def _labels(model: Any, incidents: Sequence[Incident | TextView | None]) -> list[dict[str, Any]]:
    return [
        {
            "category": prediction.category,
            "reason": prediction.reason,
            "confidence": round(prediction.confidence, 6),
        }
        if prediction is not None
        else {"category": None, "reason": "unreadable"}
        for prediction in model.predict_parsed(incidents)
    ]


def _predict_files(paths: list[str]) -> list[dict[str, Any]]:
    return _labels(_WORKER_MODEL, [parse_file(path).incident for path in paths])


class PassLabeller:
    """Labels files while they are read (``load_records(labeller=...)``): the ones
    :func:`resolve_labels` would otherwise read and parse a second time to predict.

    The model is loaded on first need, in each worker; if it cannot be, nothing is labelled
    here and :func:`resolve_labels` loads it (and reports why it cannot) as before.
    """

    def __init__(self, mode: str, model_path: Path | str, taxonomy: Taxonomy):
        self.mode, self.model_path, self.taxonomy = mode, model_path, taxonomy
        self._model: Any = None
        self._failed = False

    def wants(self, category: str | None, stored: bool) -> bool:
        return self.mode != "human" and not stored and (self.mode == "predicted" or category is None)

    def __call__(
        self, incidents: list[Incident | TextView | None]
    ) -> list[tuple[str, dict[str, Any]] | None]:
        if self._model is None and not self._failed:
            from agentpm.classifier.classify import model_for

            try:
                self._model = model_for(self.model_path, self.taxonomy)
            except AgentPMError:
                self._failed = True
        if self._model is None:
            return [None] * len(incidents)
        return [(self._model.hash, label) for label in _labels(self._model, incidents)]


def _predict_all(
    paths: list[str], model: Any, progress: Callable[[int, int], None] | None, workers: int | None
) -> list[dict[str, Any]]:
    global _WORKER_MODEL
    from agentpm.parallel import map_batched
    from agentpm.records.cache import PARALLEL_MINIMUM

    _WORKER_MODEL = model
    return map_batched(_predict_files, paths, model.BATCH, PARALLEL_MINIMUM // 4, progress, workers)


def resolve_labels(
    records: Sequence[Record],
    mode: str,
    taxonomy: Taxonomy,
    model_path: Path | str,
    cache: ParseCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    made: dict[str, tuple[str, dict[str, Any]]] | None = None,
) -> tuple[list[Labelled], LabelInfo]:
    """Give every record the label that counts under ``mode`` (auto | human | predicted).

    The model is loaded only when some record needs a prediction made now; predictions made
    now (or ``made`` while the files were read: key -> model hash, label) are cached by file
    and model hash.
    """
    if mode not in LABEL_MODES:
        raise UsageError(f"--labels {mode!r}: choose one of {', '.join(LABEL_MODES)}")
    info = LabelInfo(mode=mode)
    labelled: list[Labelled] = []
    needed: list[int] = []
    for record in records:
        if mode != "predicted" and record.category is not None:
            # a label a person accepted from the model, or one imported, says so
            source = (
                record.label_source if record.label_source in ("accepted-prediction", "imported") else "human"
            )
            labelled.append(Labelled(record, record.category, source))
        elif mode != "human" and record.prediction is not None:
            labelled.append(
                Labelled(
                    record,
                    record.prediction.category or UNCLASSIFIED,
                    "stored" if record.prediction.category else "none",
                )
            )
        elif mode == "human":
            labelled.append(Labelled(record, UNCLASSIFIED, "none"))
        else:
            needed.append(len(labelled))
            labelled.append(Labelled(record, UNCLASSIFIED, "none"))
    info.model_hash = quick_model_hash(model_path)
    if needed:
        cache = cache or ParseCache(None)
        known = cache.predictions(info.model_hash) if info.model_hash else {}
        in_pass = []
        for index in needed:
            record = labelled[index].record
            found = (made or {}).get(record.key)
            if found is not None and found[0] == info.model_hash:
                known[record.key] = (record.size, record.mtime_ns, found[1])
                in_pass.append((record.key, record.size, record.mtime_ns, found[1]))
        if in_pass and info.model_hash:
            cache.put_predictions(info.model_hash, in_pass)
        missing = []
        for index in needed:
            record = labelled[index].record
            hit = known.get(record.key)
            if hit is not None and hit[0] == record.size and hit[1] == record.mtime_ns:
                labelled[index].label = hit[2]["category"] or UNCLASSIFIED
            else:
                missing.append(index)
        if missing:
            from agentpm.classifier.classify import model_for

            model = model_for(model_path, taxonomy)
            info.model_hash = model.hash
            results = _predict_all([labelled[i].record.path for i in missing], model, progress, workers)
            rows = []
            for index, result in zip(missing, results, strict=False):
                labelled[index].label = result["category"] or UNCLASSIFIED
                record = labelled[index].record
                rows.append((record.key, record.size, record.mtime_ns, result))
            cache.put_predictions(model.hash, rows)
        for index in needed:
            if labelled[index].label != UNCLASSIFIED:
                labelled[index].source = "model"
        info.predicted_now = sum(1 for index in needed if labelled[index].source == "model")
    info.human = sum(1 for item in labelled if item.source in ("human", "accepted-prediction", "imported"))
    info.stored = sum(1 for item in labelled if item.source == "stored")
    info.unclassified = sum(1 for item in labelled if item.label == UNCLASSIFIED)
    return labelled, info


# -- trend rows -----------------------------------------------------------------------------


@dataclass
class TrendTable:
    rows: list[dict[str, Any]]
    periods: list[str]
    categories: list[str]
    undated: int = 0
    outside: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        """How many incidents the table shows (its window, not the whole corpus) and how labelled."""
        if not self.periods:
            return "0 incidents"
        shown = sum(self.totals.values())
        human = sum(row["human_labelled"] for row in self.rows)
        accepted = sum(row["accepted_prediction_labelled"] for row in self.rows)
        imported = sum(row["imported_labelled"] for row in self.rows)
        model = sum(row["model_labelled"] for row in self.rows)
        unclassified = sum(row["count"] for row in self.rows if row["category"] == UNCLASSIFIED)
        window = self.periods[0] if len(self.periods) == 1 else f"{self.periods[0]} to {self.periods[-1]}"
        partial = f" ({', '.join(self.partial)} partial)" if self.partial else ""
        extra = "".join(
            f", {count} {name}"
            for count, name in ((accepted, "accepted predictions"), (imported, "imported"))
            if count
        )
        return (
            f"{shown} incidents in {window}{partial}: {human} human-labelled{extra}, {model} model-labelled, "
            f"{unclassified} unclassified"
        )


def categories_of(taxonomy: Taxonomy) -> list[str]:
    """Taxonomy ids in its order, then ``unclassified`` (always shown)."""
    return [*taxonomy.ids, UNCLASSIFIED]


@dataclass
class PeriodCounts:
    """Dated incidents in range counted by period, by (period, label) and by (period, label, source)."""

    totals: Counter[str] = field(default_factory=Counter)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_source: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    undated: int = 0
    outside: int = 0


def counts_by_period(
    labelled: Sequence[Labelled],
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    known: set[str],
) -> PeriodCounts:
    """Counts of the dated incidents in range; a label not in ``known`` counts as unclassified."""
    found = PeriodCounts()
    for item in labelled:
        start = item.record.start
        if start is None:
            found.undated += 1
            continue
        if (since and start < since) or (until and start >= until):
            found.outside += 1
            continue
        period = period_of(start, by)
        label = item.label if item.label in known else UNCLASSIFIED
        found.totals[period] += 1
        found.counts[period, label] += 1
        found.by_source[period, label, item.source] += 1
    return found


def trend_table(
    labelled: Sequence[Labelled],
    taxonomy: Taxonomy,
    by: str = "quarter",
    since: datetime | None = None,
    until: datetime | None = None,
    first: str | None = None,
    last: str | None = None,
    as_of: datetime | None = None,
) -> TrendTable:
    """One row per period and category, empty periods included, with shares, intervals and changes.

    The periods run from ``first`` (else the --since period, else the earliest incident)
    to ``last`` (else the --until period, else the latest incident). A period cut short by
    ``until`` or not yet over at ``as_of`` is marked ``partial``, and its change against a whole
    period is not tested: a part of a quarter is not comparable with a whole one.
    """
    if by not in PERIODS:
        raise UsageError(f"--by {by!r}: choose one of {', '.join(PERIODS)}")
    categories = categories_of(taxonomy)
    found = counts_by_period(labelled, by, since, until, known=set(categories))
    undated, outside = found.undated, found.outside
    present = sorted(found.totals, key=lambda p: _ordinal(p, by))
    if first is None:
        first = period_of(since, by) if since else (present[0] if present else None)
    if last is None:
        last = (
            period_of(datetime.fromtimestamp(until.timestamp() - 1, timezone.utc), by)
            if until
            else (present[-1] if present else None)
        )
    if first is None or last is None:
        return TrendTable([], [], categories, undated, outside)
    periods = periods_between(first, last, by)
    cut = min((moment for moment in (until, as_of) if moment is not None), default=None)
    partial = [p for p in periods if cut is not None and period_start(p) < cut < period_end(p)]
    counts, by_source, totals = found.counts, found.by_source, found.totals
    rows = []
    previous: str | None = None
    for period in periods:
        total = int(totals.get(period, 0))
        for category in categories:
            count = int(counts.get((period, category), 0))
            low, high = wilson(count, total)
            row: dict[str, Any] = {
                "period": period,
                "category": category,
                "count": count,
                "period_total": total,
                "share": round(count / total, 4) if total else 0.0,
                "share_low": round(low, 4),
                "share_high": round(high, 4),
                "human_labelled": int(by_source.get((period, category, "human"), 0)),
                "accepted_prediction_labelled": int(
                    by_source.get((period, category, "accepted-prediction"), 0)
                ),
                "imported_labelled": int(by_source.get((period, category, "imported"), 0)),
                "model_labelled": int(
                    by_source.get((period, category, "stored"), 0)
                    + by_source.get((period, category, "model"), 0)
                ),
            }
            row["partial"] = period in partial
            row.update(change(count, total, previous, category, counts, totals))
            if row["partial"] and row["change_pp"] is not None:
                row.update(
                    previous_share=row["previous_share"],
                    change_pp=None,
                    p_value=None,
                    significant=False,
                    change="partial period: not compared",
                )
            rows.append(row)
        previous = period
    return TrendTable(
        rows,
        periods,
        categories,
        undated,
        outside,
        {period: int(totals.get(period, 0)) for period in periods},
        partial,
    )


def change(
    count: int, total: int, previous: str | None, category: str, counts: Any, totals: Any
) -> dict[str, Any]:
    """Change in share against the previous period, in percentage points, with its test."""
    before_total = int(totals.get(previous, 0)) if previous else 0
    if previous is None or before_total == 0 or total == 0:
        return {
            "previous_share": None,
            "change_pp": None,
            "p_value": None,
            "significant": False,
            "change": "no earlier data" if total else "no incidents",
        }
    before = int(counts.get((previous, category), 0))
    difference = 100 * (count / total - before / before_total)
    _, p_value = two_proportion_test(before, before_total, count, total)
    significant = p_value < ALPHA
    if significant:
        text = f"{'up' if difference > 0 else 'down'} {abs(difference):.1f} pp"
    else:
        text = "no significant change"
    return {
        "previous_share": round(before / before_total, 4),
        "change_pp": round(difference, 2),
        "p_value": round(p_value, 4),
        "significant": significant,
        "change": text,
    }


# -- presentation ---------------------------------------------------------------------------

TABLE_COLUMNS = [
    ("period", "Period"),
    ("category", "Category"),
    ("count", "Count"),
    ("share_text", "Share"),
    ("ci", "95% CI"),
    ("change", "Change vs previous"),
]
CSV_COLUMNS = [
    "period",
    "category",
    "count",
    "period_total",
    "share",
    "share_low",
    "share_high",
    "human_labelled",
    "model_labelled",
    "previous_share",
    "change_pp",
    "p_value",
    "significant",
    "change",
]


def display_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for reading: shares as percentages, the period written once per block."""
    shown = []
    previous_period = None
    for row in rows:
        counted = bool(row["period_total"])
        shown.append(
            {
                **row,
                "period": row["period"] if row["period"] != previous_period else "",
                "share_text": f"{100 * row['share']:.1f}%" if counted else "–",
                "ci": f"{100 * row['share_low']:.1f}–{100 * row['share_high']:.1f}%" if counted else "–",
            }
        )
        previous_period = row["period"]
    return shown


def trends_markdown(rows: Sequence[dict[str, Any]], summary: str, by: str, labels: str) -> str:
    """The trend table as a Markdown document."""
    lines = [
        f"# Incidents by {by} and category",
        "",
        f"{summary} (labels: {labels}).",
        "",
        "| Period | Category | Count | Share | 95 % CI | Change vs previous |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row, full in zip(display_rows(rows), rows, strict=False):
        change = (
            row["change"] if row["change_pp"] is None else f"{row['change']} ({row['change_pp']:+.1f} pp)"
        )
        lines.append(
            f"| {full['period']} | {row['category']} | {row['count']} | {row['share_text']} | "
            f"{row['ci']} | {change} |"
        )
    return "\n".join(lines) + "\n"


def now() -> datetime:
    """The moment that decides which periods are not over yet (UTC)."""
    return datetime.now(timezone.utc)


def with_contributing(labelled: Sequence[Labelled]) -> list[Labelled]:
    """Every incident under its label, and again under each secondary (contributing) category
    a person gave it: `--count any`. Shares then add up to more than 100 % by design."""
    expanded = list(labelled)
    for item in labelled:
        for other in item.record.secondary:
            if other != item.label:
                expanded.append(Labelled(item.record, other, item.source))
    return expanded

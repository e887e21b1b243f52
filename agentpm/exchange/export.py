"""A corpus as one flat table: incidents (one row each) or action items, as CSV, JSON lines or Parquet.

Rules:

- One row per valid incident, every field included, unknown ones too; nested values are
  flattened (``prediction.category`` -> ``prediction_category``), lists of plain values are
  joined with ``;``, lists of records (action items) are counted in the incidents table and
  get their own table.
- Durations (``time_to_detect_s``, ``time_to_resolve_s``) only when both ends carry a time: a
  date-only start is a day, not midnight, so the duration is left empty.
- ``category`` is the human label; the stored model prediction is ``prediction_category`` and
  ``prediction_confidence``. Predictions are read from the records (``classify --write``),
  never computed here.
- Every CSV cell goes through ``csv_cell`` (formula injection); Parquet needs pandas and
  pyarrow, imported only when Parquet is written (``pip install 'agentpm[parquet]'``).
- The output is written with ``write_new_file``: never over a file without ``overwrite``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from agentpm.display import csv_cell
from agentpm.errors import UsageError
from agentpm.records.incident import SECTIONS, Incident, as_utc
from agentpm.records.writing import STDOUT_NAMES, write_new_file

FORMATS = ("csv", "jsonl", "parquet")
TABLES = ("incidents", "action-items")

#: Leading columns of the incidents table, in this order; every other field follows, sorted.
INCIDENT_COLUMNS = (
    "path",
    "id",
    "title",
    "date",
    "detected",
    "resolved",
    "time_to_detect_s",
    "time_to_resolve_s",
    "severity",
    "status",
    "category",
    "label_source",
    "secondary",
    "prediction_category",
    "prediction_confidence",
    "prediction_model",
    "prediction_at",
    "systems",
    "tools",
    "tags",
    "impact",
    "action_items_total",
    "action_items_open",
    "format",
    "other_sections",
)
ACTION_ITEM_COLUMNS = (
    "incident_id",
    "path",
    "incident_title",
    "title",
    "owner",
    "due",
    "status",
    "kind",
    "overdue",
)
#: Columns that hold numbers (Parquet keeps them numeric; everything else is text).
NUMERIC = {
    "time_to_detect_s",
    "time_to_resolve_s",
    "prediction_confidence",
    "action_items_total",
    "action_items_open",
}


def _plain(value: Any) -> Any:
    """A cell value: dates as ISO text, lists of plain values joined with ';', records as JSON."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return ";".join(str(_plain(item)) for item in value)
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _flatten(prefix: str, value: Any, row: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), item, row)
    else:
        row[prefix] = _plain(value)


def _seconds(start: Any, end: Any) -> float | None:
    """Seconds between two instants, only when both carry a time of day."""
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    return (as_utc(end) - as_utc(start)).total_seconds()


def incident_row(incident: Incident) -> dict[str, Any]:
    """The flat row of one incident: every field, nested ones flattened, durations computed."""
    row: dict[str, Any] = {
        "path": str(incident.path) if incident.path else None,
        "format": incident.source_format,
    }
    data = incident.model_dump(exclude={"action_items", "prediction"})
    for key, value in data.items():
        _flatten(key, value, row)
    prediction = incident.prediction.model_dump() if incident.prediction else {}
    for key in ("category", "confidence", "model", "at"):
        row[f"prediction_{key}"] = _plain(prediction.get(key))
    for key, value in prediction.items():
        _flatten(f"prediction_{key}", value, row)
    # Canonical sections are columns; prose under other headings goes into one column, so a
    # corpus with hundreds of distinct headings does not become hundreds of sparse columns.
    other = []
    for section, text in incident.sections.items():
        if section in SECTIONS:
            row[section] = text
        elif section not in row:
            other.append(f"## {section}\n{text}")
    row["other_sections"] = "\n\n".join(other) or None
    row["time_to_detect_s"] = _seconds(incident.date, incident.detected)
    row["time_to_resolve_s"] = _seconds(incident.date, incident.resolved)
    row["action_items_total"] = len(incident.action_items)
    row["action_items_open"] = sum(item.status == "open" for item in incident.action_items)
    return row


def incident_rows(incidents: Iterable[Incident]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows and columns (the leading ones first, then every other field seen, sorted)."""
    rows = [incident_row(incident) for incident in incidents]
    seen = {key for row in rows for key in row}
    columns = list(INCIDENT_COLUMNS) + sorted(seen - set(INCIDENT_COLUMNS))
    return rows, columns


def action_item_rows(incidents: Iterable[Incident], as_of: date) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per action item, with whether it is overdue on ``as_of``."""
    rows = []
    for incident in incidents:
        for item in incident.action_items:
            rows.append(
                {
                    "incident_id": incident.id,
                    "path": str(incident.path) if incident.path else None,
                    "incident_title": incident.title,
                    "title": item.title,
                    "owner": item.owner,
                    "due": item.due.isoformat() if item.due else None,
                    "status": item.status,
                    "kind": item.kind,
                    "overdue": item.is_overdue(as_of),
                }
            )
    return rows, list(ACTION_ITEM_COLUMNS)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(column) for column in columns])
    for row in rows:
        writer.writerow([csv_cell(_csv_value(row.get(column))) for column in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_jsonl(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    return "".join(
        json.dumps({column: row.get(column) for column in columns}, ensure_ascii=False, default=str) + "\n"
        for row in rows
    )


def to_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401  (pandas needs it for Parquet; import it here to say so clearly)
    except ImportError:
        raise UsageError("Parquet needs pandas and pyarrow: pip install 'agentpm[parquet]'") from None
    frame = pd.DataFrame(
        [{column: row.get(column) for column in columns} for row in rows], columns=list(columns)
    )
    for column in columns:
        if column in NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        elif column == "overdue":
            frame[column] = frame[column].astype("boolean")
        else:
            # One type per column: mixed numbers and text (unknown fields) become text.
            frame[column] = (
                frame[column].map(lambda value: None if value is None else str(value)).astype("string")
            )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def format_for(output: Path, chosen: str | None) -> str:
    """The format asked for, else the one the output's suffix names."""
    if chosen:
        return chosen
    suffix = output.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise UsageError(
        f"-o {output}: cannot tell the format from the name; pass --format csv, jsonl or parquet"
    )


def export_table(
    incidents: Sequence[Incident],
    output: Path,
    output_format: str | None = None,
    table: str = "incidents",
    as_of: date | None = None,
    overwrite: bool = False,
) -> int:
    """Write the table to ``output`` (``-`` for standard output, csv and jsonl only); returns
    the number of rows written."""
    fmt = format_for(output, output_format)
    if table not in TABLES:
        raise UsageError(f"--table {table}: use one of {', '.join(TABLES)}")
    if fmt == "parquet" and str(output) in STDOUT_NAMES:
        raise UsageError("Parquet is binary: give a file with -o, not -")
    if table == "incidents":
        rows, columns = incident_rows(incidents)
    else:
        rows, columns = action_item_rows(incidents, as_of or datetime.now(timezone.utc).date())
    payload: str | bytes
    if fmt == "csv":
        payload = to_csv(rows, columns)
    elif fmt == "jsonl":
        payload = to_jsonl(rows, columns)
    else:
        payload = to_parquet(rows, columns)
    write_new_file(output, payload, overwrite=overwrite)
    return len(rows)

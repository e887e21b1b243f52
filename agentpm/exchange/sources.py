"""Readers for `agentpm import`: each turns a source into drafts (or skips, with a reason).

Kinds: ``genai-incidents`` (the optional PyPI dataset, or its data file), ``aiid`` (AI
Incident Database snapshot files: incidents, optionally reports), ``csv`` / ``json`` /
``jsonl`` (any export, with a column mapping or a preset for Jira, PagerDuty and incident.io)
and ``markdown`` (post-mortems without front matter).

Rules: a source file that cannot be read is reported as unreadable and the other sources go
on; a row that cannot be used is a :class:`Skip` with its reason, never an exception. Sources
are read through ``read_regular_file`` with a size limit, like incident files.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentpm.errors import UsageError
from agentpm.exchange.importing import (
    Draft,
    ImportRun,
    Skip,
    Writer,
    apply_category,
    apply_severity,
    apply_when,
    as_list,
    extra_field_name,
    now_utc,
)
from agentpm.records.corpus import discover
from agentpm.records.incident import PROSE_FIELDS
from agentpm.records.parsing import MAX_FILE_BYTES, decode_text, parse_text
from agentpm.safeload import UnreadableInput, read_regular_file

#: Exports are bigger than one post-mortem; the genai-incidents data file alone is 19 MB.
MAX_SOURCE_BYTES = 256 * 1024 * 1024

KINDS = ("genai-incidents", "aiid", "csv", "json", "jsonl", "markdown")
AIID_ATTRIBUTION = "AI Incident Database (incidentdatabase.ai), CC BY-SA 4.0"
AIID_LICENCE = "CC-BY-SA-4.0"
UNKNOWN_LICENCE = "unknown (not stated by the source; pass --licence)"

#: Fields a column can be mapped onto with --map.
TARGETS = (
    "id",
    "title",
    "date",
    "detected",
    "resolved",
    "severity",
    "category",
    "tags",
    "systems",
    "tools",
    "impact",
    "source",
    *PROSE_FIELDS,
)
PROSE_TARGETS = frozenset(PROSE_FIELDS)


class UnreadableSource(Exception):
    """A whole source file could not be read (the run goes on with the others)."""


@dataclass(frozen=True)
class Preset:
    """Column names of a tool's export, per target (``a|b``: the first that has a value)."""

    mapping: dict[str, str]
    id_prefix: str = ""


PRESETS = {
    "jira": Preset(
        {
            "title": "Summary",
            "date": "Created",
            "resolved": "Resolved",
            "severity": "Priority",
            "summary": "Description",
            "id": "Issue key",
            "tags": "Labels",
            "systems": "Component/s",
        }
    ),
    "pagerduty": Preset(
        {
            "title": "title|description",
            "date": "created_on|created_at",
            "resolved": "resolved_on|resolved_at",
            "severity": "priority|priority_name",
            "summary": "summary|description",
            "id": "incident_number",
            "systems": "service_name",
        },
        id_prefix="PD-",
    ),
    "incident-io": Preset(
        {
            "title": "name",
            "date": "created_at|reported_at",
            "resolved": "resolved_at|closed_at",
            "severity": "severity",
            "summary": "summary",
            "id": "reference",
        }
    ),
}


@dataclass
class Options:
    """What a reader needs besides the sources."""

    mapping: dict[str, str] = field(default_factory=dict)
    preset: str | None = None
    licence: str | None = None
    known_ids: frozenset[str] = frozenset()


def parse_mapping(text: str | None) -> dict[str, str]:
    """``title=Summary,date=Created`` as {target: column}; a bad pair is a UsageError."""
    mapping: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        target, sep, column = pair.partition("=")
        target = target.strip().lower()
        if not sep or not column.strip():
            raise UsageError(f"--map: {pair.strip()!r} is not target=Column (e.g. title=Summary)")
        if target not in TARGETS:
            raise UsageError(f"--map: unknown target {target!r}; targets: {', '.join(TARGETS)}")
        mapping[target] = column.strip()
    return mapping


# -- reading source files -----------------------------------------------------------------


def read_source_text(path: Path) -> str:
    try:
        return decode_text(read_regular_file(path, MAX_SOURCE_BYTES, "an import source"))
    except UnreadableInput as exc:
        raise UnreadableSource(f"{path}: {exc}") from None


def csv_rows(text: str) -> Iterator[dict[str, Any]]:
    """Rows as {column: value}; a column name used twice (Jira's Labels) gives a list."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        row: dict[str, Any] = {}
        # A short row (trailing empty cells cut off by the exporter) simply lacks those columns.
        for name, cell in zip(header, cells, strict=False):
            name = name.strip()
            if name in row:
                previous = row[name] if isinstance(row[name], list) else [row[name]]
                row[name] = previous + [cell] if cell.strip() else previous
            else:
                row[name] = cell
        yield row


def json_rows(text: str, path: Path, key: str | None = None) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableSource(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if isinstance(data, dict) and key and isinstance(data.get(key), list):
        return data[key]
    if not isinstance(data, list):
        raise UnreadableSource(
            f"{path}: expected a JSON array of records" + (f" (or {{'{key}': [...]}})" if key else "")
        )
    return data


def jsonl_rows(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record or a Skip) per non-empty line: one bad line does not stop the rest."""
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, Skip(f"{path}:{number}", f"malformed JSON line ({exc.msg})")


def table_rows(kind: str, path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row) for each record of a csv/json/jsonl file."""
    text = read_source_text(path)
    if kind == "csv":
        for number, row in enumerate(csv_rows(text), 2):
            yield f"{path}:{number}", row
    elif kind == "json":
        for number, row in enumerate(json_rows(text, path, "incidents"), 1):
            yield f"{path}[{number - 1}]", row
    else:
        for number, row in jsonl_rows(text, path):
            yield f"{path}:{number}", row


# -- generic tables -----------------------------------------------------------------------


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value in ([], {})


def draft_from_row(
    row: Any, where: str, mapping: dict[str, str], options: Options, id_prefix: str = ""
) -> Draft | Skip:
    """One table row as a draft: mapped columns onto fields, the rest kept as extra fields."""
    if not isinstance(row, dict):
        return Skip(where, "not a record (expected an object of fields)")
    by_name = {str(name).strip().lower(): name for name in row}
    used: set[Any] = set()
    values: dict[str, Any] = {}
    for target, columns in mapping.items():
        for column in columns.split("|"):
            name = by_name.get(column.strip().lower())
            if name is not None and not _blank(row[name]):
                values[target] = row[name]
                used.add(name)
                break
    if _blank(values.get("title")):
        return Skip(where, f"no title (column {mapping.get('title', 'title')!r} is empty or missing)")
    fields: dict[str, Any] = {}
    sections: dict[str, str] = {}
    for target, value in values.items():
        if target in ("date", "detected", "resolved"):
            apply_when(fields, target, value)
        elif target == "severity":
            apply_severity(fields, value)
        elif target == "category":
            apply_category(fields, value, options.known_ids)
        elif target in ("tags", "systems", "tools"):
            fields[target] = as_list(value)
        elif target in PROSE_TARGETS:
            sections[target] = " ".join(value) if isinstance(value, list) else str(value)
        elif target == "id":
            fields["id"] = f"{id_prefix}{value}".strip()
        else:
            fields[target] = " ".join(map(str, value)) if isinstance(value, list) else str(value).strip()
    fields.setdefault("source", where)
    fields["licence"] = options.licence or UNKNOWN_LICENCE
    for name, value in row.items():
        if name not in used and not _blank(value):
            fields.setdefault(extra_field_name(str(name)), value)
    return Draft(fields, where, sections)


def read_table(kind: str, sources: Sequence[Path], options: Options) -> Iterator[Draft | Skip]:
    preset = PRESETS[options.preset] if options.preset else Preset({"title": "title"})
    mapping = {**preset.mapping, **options.mapping}
    for path in sources:
        try:
            rows = list(table_rows(kind, path))
        except UnreadableSource as exc:
            yield Skip(str(path), str(exc), unreadable=True)
            continue
        for where, row in rows:
            yield (
                row
                if isinstance(row, Skip)
                else draft_from_row(row, where, mapping, options, preset.id_prefix)
            )


# -- AI Incident Database -----------------------------------------------------------------


def _aiid_records(path: Path) -> list[Any]:
    text = read_source_text(path)
    if path.suffix.lower() == ".csv":
        return list(csv_rows(text))
    return json_rows(text, path, "incidents")


def _report_numbers(value: Any) -> list[int]:
    if isinstance(value, list):
        return [int(item) for item in value if str(item).strip().isdigit()]
    return [int(number) for number in re.findall(r"\d{1,9}", str(value or ""))]


def _reference_line(report: dict[str, Any]) -> str:
    title = str(report.get("title") or report.get("url") or "report").strip()
    url = str(report.get("url") or "").strip()
    where = ", ".join(
        str(part).strip()
        for part in (report.get("source_domain"), report.get("date_published"))
        if part and not isinstance(part, dict)
    )
    line = f"- [{title}]({url})" if url else f"- {title}"
    return f"{line} ({where})" if where else line


def read_aiid(sources: Sequence[Path], options: Options) -> Iterator[Draft | Skip]:
    """Incidents (rows with ``incident_id``) and, when given, reports (rows with ``report_number``)."""
    incidents: list[tuple[str, Any]] = []
    reports: dict[int, dict[str, Any]] = {}
    for path in sources:
        try:
            records = _aiid_records(path)
        except UnreadableSource as exc:
            yield Skip(str(path), str(exc), unreadable=True)
            continue
        for number, record in enumerate(records, 1):
            if isinstance(record, dict) and "report_number" in record and "incident_id" not in record:
                numbers = _report_numbers(record.get("report_number"))
                if numbers:
                    reports[numbers[0]] = record
            else:
                incidents.append((f"{path}#{number}", record))
    for where, record in incidents:
        yield _aiid_draft(record, where, reports, options)


def _aiid_draft(
    record: Any, where: str, reports: dict[int, dict[str, Any]], options: Options
) -> Draft | Skip:
    if not isinstance(record, dict):
        return Skip(where, "not a record (expected an object of fields)")
    incident_id = str(record.get("incident_id") or "").strip()
    if not incident_id:
        return Skip(where, "no incident_id")
    title = str(record.get("title") or "").strip()
    if not title:
        return Skip(where, "no title")
    fields: dict[str, Any] = {"id": f"AIID-{incident_id}", "title": title}
    apply_when(fields, "date", record.get("date"))
    fields["source"] = f"https://incidentdatabase.ai/cite/{incident_id}/"
    fields["external_id"] = incident_id
    fields["licence"] = options.licence or AIID_LICENCE
    fields["attribution"] = AIID_ATTRIBUTION
    numbers = _report_numbers(record.get("reports"))
    if numbers:
        fields["aiid_reports"] = numbers
    skip = {"incident_id", "title", "date", "description", "reports", "_id"}
    for name, value in record.items():
        if name not in skip and not _blank(value):
            fields.setdefault(extra_field_name(name), value)
    sections = {"summary": str(record.get("description") or "").strip()}
    references = [_reference_line(reports[number]) for number in numbers if number in reports]
    if references:
        sections["references"] = "\n".join(references)
    return Draft(fields, where, sections)


# -- genai-incidents ----------------------------------------------------------------------

GENAI_EXTRA = "pip install 'agentpm[genai]'"
#: Fields of a genai-incidents row that would collide with ours, and where they go instead.
GENAI_RENAMED = {"corpus": "dataset_corpus", "tier": "dataset_tier", "status": "source_status"}
GENAI_HANDLED = {
    "id",
    "title",
    "date",
    "year",
    "severity",
    "tags",
    "description",
    "primary_reference",
    "content_license",
}


def genai_dataset() -> tuple[list[dict[str, Any]], str]:
    """The installed package's rows and version, or a UsageError saying how to install it."""
    try:
        import genai_incidents
    except ImportError:
        raise UsageError(
            f"import genai-incidents needs the genai-incidents package: {GENAI_EXTRA} "
            "(or pass the path of its incidents.min.json)"
        ) from None
    from importlib.metadata import version

    return genai_incidents.load_incidents(), version("genai-incidents")


def genai_licence() -> tuple[str, str]:
    """(licence, attribution) of the dataset's data, from the package's metadata: its
    LICENSE-DATA file when installed (CC BY 4.0 in 2.x), else the published data licence."""
    from importlib.metadata import PackageNotFoundError, distribution

    attribution = "genai-incidents (github.com/emmanuelgjr/genai_incidents)"
    try:
        dist = distribution("genai-incidents")
    except PackageNotFoundError:
        return "CC-BY-4.0", attribution
    author = dist.metadata.get("Author")
    attribution = f"genai-incidents {dist.version} by {author} (github.com/emmanuelgjr/genai_incidents)"
    for file in dist.files or ():
        if file.name == "LICENSE-DATA":
            first = (file.read_text(encoding="utf-8") or "").strip().split("\n", 1)[0]
            spdx = {
                "Attribution 4.0 International": "CC-BY-4.0",
                "Attribution-ShareAlike 4.0 International": "CC-BY-SA-4.0",
            }.get(first.strip())
            if spdx:
                return spdx, attribution
    return dist.metadata.get("License-Expression") or "CC-BY-4.0", attribution


def read_genai(sources: Sequence[Path], options: Options) -> Iterator[Draft | Skip]:
    if sources:
        rows: list[Any] = []
        version = "data file"
        for path in sources:
            try:
                text = read_source_text(path)
                rows += json_rows(text, path, "incidents")
            except UnreadableSource as exc:
                yield Skip(str(path), str(exc), unreadable=True)
                continue
            header = json.loads(text) if text.lstrip().startswith("{") else {}
            version = str(header.get("version", version)) if isinstance(header, dict) else version
    else:
        rows, version = genai_dataset()
    licence, attribution = genai_licence()
    for number, row in enumerate(rows):
        yield genai_draft(row, f"genai-incidents[{number}]", version, licence, attribution, options)


def genai_draft(
    row: Any, where: str, version: str, licence: str, attribution: str, options: Options
) -> Draft | Skip:
    """One genai-incidents row: its labels (attack vector, tags) become tags, never a category."""
    if not isinstance(row, dict):
        return Skip(where, "not a record (expected an object of fields)")
    source_id = str(row.get("id") or "").strip()
    where = f"genai-incidents {source_id}" if source_id else where
    if row.get("status") == "retracted":
        return Skip(where, "retracted by the dataset")
    title = str(row.get("title") or "").strip()
    if not title:
        return Skip(where, "no title")
    fields: dict[str, Any] = {"id": f"GENAI-{source_id}" if source_id else None, "title": title}
    apply_when(fields, "date", row.get("date"))
    apply_severity(fields, row.get("severity"))
    tags = as_list([row.get("attack_vector")] if row.get("attack_vector") else []) + as_list(row.get("tags"))
    fields["tags"] = list(dict.fromkeys(tags))
    fields["source"] = row.get("primary_reference") or f"genai-incidents:{source_id}"
    fields["external_id"] = source_id
    fields["source_dataset"] = f"genai-incidents {version}"
    content = row.get("content_license")
    if isinstance(content, dict) and content.get("license"):
        # Rows taken from another database carry that database's terms as well.
        fields["licence"] = options.licence or str(content["license"])
        fields["attribution"] = f"{attribution}; {content.get('attribution') or content.get('source')}"
        fields["content_license"] = content
    else:
        fields["licence"] = options.licence or licence
        fields["attribution"] = attribution
    for name, value in row.items():
        if name not in GENAI_HANDLED and not _blank(value):
            fields.setdefault(GENAI_RENAMED.get(name, extra_field_name(name)), value)
    return Draft(fields, where, {"summary": str(row.get("description") or "")})


# -- plain Markdown -----------------------------------------------------------------------

_DAY_IN_NAME = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_DATE_LINE = re.compile(
    r"(?im)^[ \t]{0,8}(?:[-*][ \t]{1,4})?(?:\*\*)?date(?:\*\*)?[ \t]{0,4}:(?:\*\*)?[ \t]{0,8}(\S[^\n]{0,80})$"
)
_ANY_HEADING = re.compile(r"(?m)^[ \t]{0,3}#{1,6}[ \t]{1,8}(\S[^\n]{0,300})$")
#: Fields the plain-Markdown metadata block may carry over into front matter (as the parser read them).
CARRIED = (
    "id",
    "severity",
    "status",
    "secondary",
    "systems",
    "tools",
    "impact",
    "tags",
    "detected",
    "resolved",
)


def read_markdown(sources: Sequence[Path], options: Options) -> Iterator[Draft | Skip]:
    files, problems = discover(sources)
    for problem in problems:
        yield Skip(problem.path, problem.message, unreadable=True)
    for path in files:
        try:
            text = decode_text(read_regular_file(path, MAX_FILE_BYTES))
        except UnreadableInput as exc:
            yield Skip(str(path), str(exc), unreadable=True)
            continue
        yield markdown_draft(text, path, options)


def markdown_draft(text: str, path: Path, options: Options) -> Draft | Skip:
    """A post-mortem without front matter: title from the first heading, date from the file
    name or a ``Date:`` line, the parser's metadata block carried over, the body kept as is."""
    where = str(path)
    if text.startswith("---\n"):
        return Skip(where, "already has front matter (it is an incident file: copy it instead)")
    parsed = parse_text(text, path.with_suffix(".md"))
    incident = parsed.incident
    fields: dict[str, Any] = {}
    if incident is not None:
        fields["title"] = incident.title
        data = incident.model_dump(mode="json", include=set(CARRIED) & incident.model_fields_set)
        fields.update({key: value for key, value in data.items() if not _blank(value)})
        apply_category(fields, incident.category, options.known_ids)
    else:
        heading = _ANY_HEADING.search(text)
        if not heading:
            return Skip(where, "no heading to take a title from")
        fields["title"] = heading.group(1).strip().rstrip("#").strip()
    day = _DAY_IN_NAME.search(path.name)
    date_line = _DATE_LINE.search(text)
    if incident is not None and incident.date is not None:
        fields["date"] = incident.date.isoformat()
    elif day:
        apply_when(fields, "date", day.group(1))
    elif date_line:
        apply_when(fields, "date", date_line.group(1).strip())
    fields["source"] = where
    fields["licence"] = options.licence or UNKNOWN_LICENCE
    return Draft(fields, where, body=text)


READERS = {
    "genai-incidents": read_genai,
    "aiid": read_aiid,
    "markdown": read_markdown,
}


def read_source(kind: str, sources: Sequence[Path], options: Options) -> Iterable[Draft | Skip]:
    """The drafts (and skips) of one import, lazily; a usage mistake is a UsageError."""
    if kind in ("csv", "json", "jsonl"):
        return read_table(kind, sources, options)
    if kind not in READERS:
        raise UsageError(f"unknown source kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind != "genai-incidents" and not sources:
        raise UsageError(f"import {kind} needs at least one SOURCE file")
    return READERS[kind](sources, options)


def run_import(
    kind: str, sources: Sequence[Path], out_dir: Path, options: Options, imported_at: str | None = None
) -> ImportRun:
    """Read the sources and write one incident file per usable record into ``out_dir``."""
    if options.preset and options.preset not in PRESETS:
        raise UsageError(f"unknown preset {options.preset!r}; use one of {', '.join(PRESETS)}")
    if options.preset and kind not in ("csv", "json", "jsonl"):
        raise UsageError(f"--preset is for csv, json and jsonl sources, not {kind}")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"-o {out_dir}: exists and is not a folder; give a folder for the new incident files"
        )
    drafts = read_source(kind, sources, options)
    run = ImportRun()
    writer = Writer(out_dir, run, imported_at or now_utc())
    try:
        for item in drafts:
            writer.add(item)
    finally:
        writer.close()  # what was read before an error or Ctrl-C is written, as it came
    return run

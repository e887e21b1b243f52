"""Incident files from other places: one Markdown file with YAML front matter per usable record.

The readers in :mod:`agentpm.exchange.sources` turn each source row into a :class:`Draft`
(front-matter fields and a Markdown body) or a :class:`Skip` (why the row is not usable).
This module normalises what every source shares (dates, severities, column names), renders
each draft, checks that it parses as a valid incident, and writes it.

Rules:

- Never overwrite: each file is created whole or not at all (``create_new_files``, in batches
  with one sync each); a name already taken gets a numeric suffix (``-2``, ``-3``...). An id
  already present in the output folder, or seen earlier in the run, is skipped ("already
  imported"), so running an import twice writes nothing new.
- Nothing a source says is lost: a date like ``2023-04`` becomes ``2023-04-01`` with the text
  kept in ``date_as_given``; a severity like ``High`` becomes ``SEV2`` with ``severity_as_given``;
  columns without a place in the schema are kept as snake_cased extra fields.
- A source's own labels are never our ``category``: only a value that is a taxonomy id, from a
  column mapped to ``category``, is, and then ``label_source: imported`` says where it came from.
- Every file carries ``source``, ``licence`` (and ``attribution`` where the licence needs one)
  and ``imported_at`` (UTC).
- A bad row is skipped with a reason; it never stops the run.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from agentpm.errors import WriteError
from agentpm.records.corpus import load_corpus
from agentpm.records.incident import parse_when
from agentpm.records.parsing import known_fields, parse_text
from agentpm.records.quick import quick_data
from agentpm.records.writing import create_new_files

#: Front-matter fields in the order a reader expects them; the rest follow as they come.
FIELD_ORDER = (
    "id",
    "title",
    "date",
    "date_as_given",
    "detected",
    "resolved",
    "severity",
    "severity_as_given",
    "status",
    "category",
    "label_source",
    "source_label",
    "systems",
    "tools",
    "impact",
    "tags",
    "source",
    "external_id",
    "licence",
    "attribution",
    "imported_at",
)

#: Prose fields written as body sections, in reading order, with their headings.
BODY_SECTIONS = (
    ("summary", "Summary"),
    ("detection", "Detection"),
    ("timeline", "Timeline"),
    ("root_cause", "Root cause"),
    ("contributing_factors", "Contributing factors"),
    ("fix", "Fix implemented"),
    ("prevention", "Prevention"),
    ("lessons_learned", "Lessons learned"),
)

#: Names of the incident schema's own fields: a source column with one of these names that is
#: not mapped onto it is kept as ``source_<name>``, so it cannot fail validation.
MAX_SLUG = 60
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass
class Draft:
    """One record ready to be written: its fields, prose sections and body, and where it came from."""

    fields: dict[str, Any]
    where: str
    sections: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Skip:
    """A source row that was not written, and why; ``unreadable`` when a whole source file
    could not be read (exit code 2 rather than 1)."""

    where: str
    reason: str
    unreadable: bool = False


@dataclass
class ImportRun:
    """What an import wrote and what it skipped."""

    written: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    unreadable: list[Skip] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 everything usable written, 1 some rows skipped, 2 a source could not be read."""
        return 2 if self.unreadable else 1 if self.skipped else 0

    def reasons(self, examples: int = 3) -> list[dict[str, Any]]:
        """Skip reasons with their counts and first examples, most frequent first."""
        counts = Counter(skip.reason for skip in self.skipped + self.unreadable)
        return [
            {
                "reason": reason,
                "count": count,
                "examples": [skip.where for skip in self.skipped + self.unreadable if skip.reason == reason][
                    :examples
                ],
            }
            for reason, count in counts.most_common()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": len(self.written),
            "skipped": len(self.skipped),
            "unreadable": len(self.unreadable),
            "files": self.written,
            "skip_reasons": self.reasons(),
        }

    def summary_rows(self) -> list[dict[str, Any]]:
        """The table view: one row for what was written, one per skip reason."""
        rows: list[dict[str, Any]] = [
            {
                "outcome": "written",
                "count": len(self.written),
                "examples": ", ".join(self.written[:3]),
            }
        ]
        for reason in self.reasons():
            rows.append(
                {
                    "outcome": f"skipped: {reason['reason']}",
                    "count": reason["count"],
                    "examples": ", ".join(reason["examples"]),
                }
            )
        return rows


# -- normalising values -------------------------------------------------------------------

_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{1,2}))?$")
_DATE_FORMATS = (
    "%d/%b/%y %I:%M %p",  # Jira: 12/Mar/24 3:04 PM
    "%d/%b/%Y %I:%M %p",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%b %d, %Y",  # Mar 12, 2024
    "%d %B %Y",  # 12 March 2024
    "%B %d, %Y",
)


def normalise_when(value: Any) -> tuple[str | None, str | None]:
    """(ISO date or datetime, the value as given when it had to be changed), from the ways
    sources write dates: ISO, ``2023-04`` (month), ``2023`` (year), Jira's ``12/Mar/24 3:04 PM``,
    a MongoDB ``{"$date": ...}``. A value that is no date gives (None, value)."""
    if isinstance(value, dict) and "$date" in value:
        value = value["$date"]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(), None
    if isinstance(value, date):
        return value.isoformat(), None
    if not isinstance(value, str) or not value.strip():
        return None, None
    text = value.strip()
    partial = _PARTIAL_DATE.match(text)
    if partial:
        year, month = int(partial.group(1)), int(partial.group(2) or 1)
        if 1970 <= year <= 2200 and 1 <= month <= 12:
            return date(year, month, 1).isoformat(), text
        return None, text
    try:
        parse_when(text)
        return text, None
    except ValueError:
        pass
    for pattern in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        shown = (
            parsed.date().isoformat() if "%H" not in pattern and "%I" not in pattern else parsed.isoformat()
        )
        return shown, text
    return None, text


#: Severity words of other tools on our scale (DESIGN §3: SEV1 worst).
SEVERITY_WORDS = {
    "critical": "SEV1",
    "blocker": "SEV1",
    "highest": "SEV1",
    "urgent": "SEV1",
    "emergency": "SEV1",
    "p0": "SEV1",
    "p1": "SEV1",
    "high": "SEV2",
    "major": "SEV2",
    "p2": "SEV2",
    "medium": "SEV3",
    "moderate": "SEV3",
    "normal": "SEV3",
    "p3": "SEV3",
    "low": "SEV4",
    "minor": "SEV4",
    "lowest": "SEV4",
    "trivial": "SEV4",
    "info": "SEV4",
    "informational": "SEV4",
    "p4": "SEV4",
    "p5": "SEV4",
}


def normalise_severity(value: Any) -> str | None:
    """SEV1-SEV4 for a severity or priority another tool wrote, or None when not obvious."""
    if value is None:
        return None
    text = str(value).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    if re.fullmatch(r"sev[1-4]", text):
        return text.upper()
    if re.fullmatch(r"sev0", text):
        return "SEV1"
    return SEVERITY_WORDS.get(text)


def snake_case(name: str) -> str:
    """A column name as a field name: ``Issue key`` -> ``issue_key``, ``createdAt`` -> ``created_at``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "field"


@lru_cache(maxsize=4096)
def extra_field_name(column: str) -> str:
    """The field an unmapped column is kept in: snake_cased, never one of the schema's, and never
    a near miss of one (a column ``Tag`` would read as a typo of ``tags``): those get ``source_``."""
    name = snake_case(column)
    known = known_fields() | set(FIELD_ORDER)
    for candidate in (name, f"source_{name}", f"x_{name}"):
        if candidate not in known and not difflib.get_close_matches(candidate, known, n=1, cutoff=0.8):
            return candidate
    return f"x_{name}"


def slugify(title: str) -> str:
    """Lower-case ASCII words joined by hyphens, cut at a word boundary; may be empty."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > MAX_SLUG:
        cut = slug[:MAX_SLUG]
        if slug[MAX_SLUG] != "-" and "-" in cut:
            cut = cut[: cut.rfind("-")]
        slug = cut.strip("-")
    return slug


def as_list(value: Any) -> list[str]:
    """Tags and the like: a list stays a list; text is split on commas and semicolons."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part.strip() for part in re.split(r"[,;]", str(value)) if part.strip()]


def now_utc() -> str:
    """The ``imported_at`` stamp: UTC, seconds, ``Z``."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def apply_when(fields: dict[str, Any], name: str, value: Any) -> None:
    """Set a date field from a source value, keeping the original beside when it changed."""
    normalised, as_given = normalise_when(value)
    if normalised:
        fields[name] = normalised
    if as_given is not None:
        # date_as_given is a known field; detected/resolved get names no typo check mistakes
        # for another field (detected_as_given is one edit from date_as_given).
        fields["date_as_given" if name == "date" else f"original_{name}"] = as_given


def apply_severity(fields: dict[str, Any], value: Any) -> None:
    """Set ``severity`` from a source value when the mapping is obvious; the original is kept."""
    if value is None or str(value).strip() == "":
        return
    mapped = normalise_severity(value)
    if mapped:
        fields["severity"] = mapped
    if mapped != str(value).strip():
        fields["severity_as_given"] = str(value).strip()


def apply_category(fields: dict[str, Any], value: Any, known_ids: frozenset[str]) -> None:
    """A label becomes ``category`` only when it is a taxonomy id; otherwise it is kept aside."""
    if value is None or str(value).strip() == "":
        return
    text = str(value).strip()
    if text in known_ids:
        fields["category"] = text
        fields["label_source"] = "imported"
    else:
        fields["source_label"] = text


# -- rendering and writing ----------------------------------------------------------------


def ordered(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields in FIELD_ORDER first, then the rest as they came; empty values dropped."""
    kept = {key: value for key, value in fields.items() if value not in (None, "", [], {})}
    first = {key: kept[key] for key in FIELD_ORDER if key in kept}
    return {**first, **{key: value for key, value in kept.items() if key not in first}}


def render(draft: Draft) -> str:
    """The Markdown file: YAML front matter, then the body (given, or built from the sections)."""
    # The C dumper when PyYAML has it: an import of 15,000 rows spends its time here otherwise.
    front = yaml.dump(
        ordered(draft.fields), Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True, width=100
    )
    if draft.body is not None:
        body = draft.body if draft.body.startswith("\n") else "\n" + draft.body
    else:
        parts = [
            f"## {heading}\n\n{draft.sections[key].strip()}\n"
            for key, heading in BODY_SECTIONS
            if draft.sections.get(key, "").strip()
        ]
        parts += [
            f"## {key}\n\n{text.strip()}\n"
            for key, text in draft.sections.items()
            if key not in dict(BODY_SECTIONS) and text.strip()
        ]
        body = "\n" + "\n".join(parts) if parts else ""
    return f"---\n{front}---\n{body}"


def file_stem(fields: dict[str, Any]) -> str:
    """``YYYY-MM-DD-slug`` (or ``slug``); the id when the title has no Latin letters."""
    slug = slugify(str(fields.get("title", ""))) or slugify(str(fields.get("id", ""))) or "incident"
    day = str(fields.get("date", ""))[:10]
    return f"{day}-{slug}" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) else slug


#: Drafts written at a time: the batch's data is synced once (see ``create_new_files``).
WRITE_BATCH = 500


class Writer:
    """Writes drafts into one folder: unique names, no overwrites, no repeated ids.

    Drafts are checked as they come and written in batches; :meth:`close` writes the last one."""

    def __init__(self, out_dir: Path, run: ImportRun, imported_at: str):
        self.out_dir = out_dir
        self.run = run
        self.imported_at = imported_at
        self.taken: set[str] = set()
        self.pending: list[tuple[str, str | None, str, str]] = []  # where, id, stem, text
        # Ids already in the folder: importing the same source twice adds nothing.
        self.ids: set[str] = set()
        if out_dir.is_dir():
            existing = load_corpus([out_dir])
            self.ids = {incident.id for incident in existing.incidents if incident.id}

    def add(self, item: Draft | Skip) -> None:
        if isinstance(item, Skip):
            (self.run.unreadable if item.unreadable else self.run.skipped).append(item)
            return
        fields = item.fields
        fields.setdefault("imported_at", self.imported_at)
        record_id = fields.get("id")
        if record_id is not None and str(record_id) in self.ids:
            self.run.skipped.append(Skip(item.where, "already imported (its id is in the output folder)"))
            return
        text = render(item)
        stem = file_stem(fields)
        problem = _first_problem(text, self.out_dir / f"{stem}.md")
        if problem is not None:
            # Warnings count too: an imported file must pass `agentpm validate` as written.
            self.run.skipped.append(Skip(item.where, f"not a valid incident: {problem}"))
            return
        if record_id is not None:
            self.ids.add(str(record_id))
        self.pending.append((item.where, None if record_id is None else str(record_id), stem, text))
        if len(self.pending) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the drafts checked so far."""
        pending, self.pending = self.pending, []
        results = create_new_files(
            self.out_dir, [(self._names(stem), text.encode("utf-8")) for _, _, stem, text in pending]
        )
        for (where, record_id, _, _), result in zip(pending, results, strict=True):
            if isinstance(result, WriteError):
                self.run.skipped.append(Skip(where, f"cannot write: {result}"))
                if record_id is not None:
                    self.ids.discard(record_id)
            else:
                self.run.written.append(str(result))

    close = flush

    def _names(self, stem: str) -> Iterator[str]:
        """``stem.md``, else ``stem-2.md``, ``stem-3.md``...: names not taken in this run."""
        for number in range(1, 10_000):
            name = f"{stem}.md" if number == 1 else f"{stem}-{number}.md"
            if name not in self.taken:
                self.taken.add(name)
                yield name


def _first_problem(text: str, path: Path) -> str | None:
    """The first problem ``agentpm validate`` would report in a file holding ``text``, or None."""
    # The quick reader gives the full parser's record and problems at a fraction of the cost
    # for the plain files an import writes; what it declines, or finds a problem in, gets the
    # full parse (and its message).
    quick = quick_data(str(path), text.encode("utf-8"))
    if quick is not None and "record" in quick and not quick["problems"]:
        return None
    parsed = parse_text(text, path)
    if parsed.incident is None or parsed.problems:
        return parsed.problems[0].message
    return None

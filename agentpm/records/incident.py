"""The incident record: one schema for Markdown, YAML and JSON post-mortems.

Front-matter fields follow DESIGN §3. Unknown fields are kept (``model_extra``), never
dropped. Dates stay as written: a plain date stays a ``date``, a datetime keeps its
time zone (or its absence); ``as_utc`` is the one place they are made comparable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

# Canonical prose sections of a post-mortem, in reading order, with the heading variants
# people actually write. Matching is on the lower-cased heading with numbering and
# punctuation removed; the first alias that the heading starts with wins.
SECTIONS: dict[str, tuple[str, ...]] = {
    "summary": (
        "summary",
        "executive summary",
        "incident summary",
        "overview",
        "tl dr",
        "tldr",
        "what happened",
        "description",
        "background",
    ),
    "impact": ("impact", "customer impact", "user impact", "business impact", "blast radius"),
    "detection": ("detection", "how it was detected", "how we noticed", "how we found out", "discovery"),
    "timeline": ("timeline", "sequence of events", "chronology", "events"),
    "root_cause": (
        "root cause",
        "root causes",
        "rca",
        "cause",
        "causes",
        "what went wrong",
        "why it happened",
        "why it was possible",
        "how it happened",
        "analysis",
        "investigation",
        "what the investigation found",
        "what we found",
        "findings",
        "mechanism",
    ),
    "contributing_factors": (
        "contributing factors",
        "contributing factor",
        "contributing causes",
        "contributors",
        "factors",
    ),
    "fix": (
        "fix implemented",
        "fix",
        "fixes",
        "resolution",
        "remediation",
        "mitigation",
        "the fix",
        "recovery",
        "what we changed",
        "changes",
        "workaround",
    ),
    "prevention": (
        "prevention",
        "preventive measures",
        "preventative measures",
        "prevention strategies",
        "how we prevent",
        "hardening",
    ),
    "action_items": (
        "action items",
        "action item",
        "next steps",
        "follow up",
        "follow ups",
        "todo",
        "to do",
        "tasks",
    ),
    "lessons_learned": (
        "lessons learned",
        "lessons",
        "learnings",
        "takeaways",
        "what went well",
        "what we learned",
        "reflections",
    ),
}

# Field names a YAML/JSON record may use for the prose sections (besides the canonical ids).
SECTION_FIELD_ALIASES: dict[str, str] = {
    "resolution": "fix",
    "remediation": "fix",
    "root_cause_analysis": "root_cause",
    "lessons": "lessons_learned",
    "description": "summary",
    "details": "summary",
    "body": "summary",
}

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
#: The prose sections a record may carry as fields (YAML/JSON; Markdown has them as headings).
PROSE_FIELDS = (
    "summary",
    "detection",
    "timeline",
    "root_cause",
    "contributing_factors",
    "fix",
    "prevention",
    "lessons_learned",
)
STATUSES = ("draft", "in-review", "final")

_ISO_Z = re.compile(r"[zZ]$")


def parse_when(value: Any) -> Any:
    """Accept an ISO date or datetime (string, date or datetime) and keep its time zone."""
    if isinstance(value, (date, datetime)):
        return _plausible(value, str(value))
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO date or datetime, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty date; use YYYY-MM-DD or an ISO datetime such as 2026-03-01T09:30:00Z")
    # Python 3.10's fromisoformat does not know a trailing 'Z'.
    normalised = _ISO_Z.sub("+00:00", text)
    try:
        if len(normalised) == 10:
            return _plausible(date.fromisoformat(normalised), text)
        return _plausible(datetime.fromisoformat(normalised.replace(" ", "T", 1)), text)
    except ImplausibleDate:
        raise
    except ValueError as exc:
        reason = str(exc)
        if "range" in reason or "must be in" in reason:
            raise ValueError(f"{text!r} is not a real calendar date/time ({reason})") from None
        raise ValueError(
            f"{text!r} is not an ISO date; use YYYY-MM-DD or an ISO datetime such as 2026-03-01T09:30:00Z"
        ) from None


class ImplausibleDate(ValueError):
    """A real calendar date that cannot be an incident's (year 1, or beyond what UTC can hold)."""


#: Incident dates outside these years are typos (a year 1 or 9999 also breaks date arithmetic).
EARLIEST_YEAR, LATEST_YEAR = 1970, 2200


def _plausible(value: date | datetime, text: str) -> date | datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ImplausibleDate(
            f"{text!r}: year {value.year} is not a plausible incident date ({EARLIEST_YEAR}-{LATEST_YEAR})"
        )
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value.astimezone(timezone.utc)
        except OverflowError:
            raise ImplausibleDate(f"{text!r} is out of range once converted to UTC") from None
    return value


def as_utc(value: date | datetime | None) -> datetime | None:
    """A comparable instant: dates are midnight UTC, naive datetimes are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    return datetime.combine(value, time.min, tzinfo=timezone.utc)


def duration_between(start: date | datetime | None, end: date | datetime | None) -> timedelta | None:
    """end - start, or None when it would be made up: a missing end, a date-only start against a
    time of day (that would count from midnight), or an end before the start."""
    if start is None or end is None or isinstance(start, datetime) != isinstance(end, datetime):
        return None
    found = as_utc(end) - as_utc(start)
    return found if found >= timedelta(0) else None


def time_warnings(
    when: date | datetime | None, detected_at: date | datetime | None, resolved_at: date | datetime | None
) -> list[tuple[str, str, str]]:
    """(field, message, code) for times out of order (``time-order``) and for a date-only start
    beside timed detection/resolution (``date-only-start``)."""
    found: list[tuple[str, str, str]] = []
    start, detected, resolved = as_utc(when), as_utc(detected_at), as_utc(resolved_at)
    if start and detected and detected < start:
        found.append(
            (
                "detected",
                "detected is before date (the incident start); check both timestamps and their time zones",
                "time-order",
            )
        )
    if start and resolved and resolved < start:
        found.append(
            (
                "resolved",
                "resolved is before date (the incident start); check both timestamps and their time zones",
                "time-order",
            )
        )
    if detected and resolved and resolved < detected:
        found.append(
            (
                "resolved",
                "resolved is before detected; check both timestamps and their time zones",
                "time-order",
            )
        )
    if (
        isinstance(when, date)
        and not isinstance(when, datetime)
        and (isinstance(detected_at, datetime) or isinstance(resolved_at, datetime))
    ):
        found.append(
            (
                "date",
                "warning: date has no time of day but detected/resolved do; durations "
                "are left out rather than counted from midnight — give date a time",
                "date-only-start",
            )
        )
    return found


def merge_sections(value_of: Callable[[str], Any], body_sections: dict[str, str]) -> dict[str, str]:
    """Prose by canonical section id (see :attr:`Incident.sections`): ``value_of(name)`` gives a
    field's value as the record holds it; the body's sections follow the fields of the same name."""
    found: dict[str, str] = {}
    for key in SECTIONS:
        value = value_of(key)
        if isinstance(value, str) and value.strip():
            found[key] = value
    for key, canonical in SECTION_FIELD_ALIASES.items():
        value = value_of(key)
        if isinstance(value, str) and value.strip() and canonical not in found:
            found[canonical] = value
    for key, text in body_sections.items():
        if key in found:
            found[key] = found[key] + "\n\n" + text
        else:
            found[key] = text
    return found


def _severity(value: Any) -> Any:
    if isinstance(value, str):
        compact = value.strip().upper().replace(" ", "").replace("-", "")
        if re.fullmatch(r"SEV[1-4]", compact):
            return compact
    return value


def _string_list(value: Any) -> Any:
    # "a, b" and a lone string are how people write one or two items by hand.
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


When = Annotated[datetime | date, BeforeValidator(parse_when)]
StringList = Annotated[list[str], BeforeValidator(_string_list)]


class ActionItem(BaseModel):
    """A follow-up from a post-mortem."""

    model_config = ConfigDict(extra="allow")

    title: str = Field(min_length=1)
    owner: str | None = None
    due: When | None = None
    status: Literal["open", "done", "wontfix"] = "open"
    kind: Literal["prevent", "detect", "mitigate"] | None = None

    def is_overdue(self, today: date) -> bool:
        due = self.due.date() if isinstance(self.due, datetime) else self.due
        return self.status == "open" and due is not None and due < today


class StoredPrediction(BaseModel):
    """What ``classify --write`` stores: written by the model only, never by a person."""

    model_config = ConfigDict(extra="allow")

    category: str | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    model: str | None = None
    at: When | None = None


class Incident(BaseModel):
    """One incident report, whatever format it was written in."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)

    id: str | None = None
    title: str = Field(min_length=1)
    date: When | None = None
    detected: When | None = None
    resolved: When | None = None
    severity: Annotated[Literal["SEV1", "SEV2", "SEV3", "SEV4"] | None, BeforeValidator(_severity)] = None
    status: Literal["draft", "in-review", "final"] | None = None
    category: str | None = None
    secondary: StringList = Field(default_factory=list)
    labelling_note: str | None = None
    systems: StringList = Field(default_factory=list)
    tools: StringList = Field(default_factory=list)
    impact: str | None = None
    tags: StringList = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    prediction: StoredPrediction | None = None

    # Prose: YAML/JSON records carry these as fields; Markdown fills them from its body.
    summary: str | None = None
    detection: str | None = None
    timeline: str | None = None
    root_cause: str | None = None
    contributing_factors: str | None = None
    fix: str | None = None
    prevention: str | None = None
    lessons_learned: str | None = None

    _path: Path | None = PrivateAttr(default=None)
    _format: str = PrivateAttr(default="")
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)
    _body: str = PrivateAttr(default="")
    _body_sections: dict[str, str] = PrivateAttr(default_factory=dict)
    _body_lines: dict[str, int] = PrivateAttr(default_factory=dict)
    _warnings: list[tuple[str, str, str]] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _id_as_text(cls, data: Any) -> Any:
        # YAML reads `id: 42` as a number; an id is a label, not a quantity.
        if (
            isinstance(data, dict)
            and isinstance(data.get("id"), int)
            and not isinstance(data.get("id"), bool)
        ):
            data = {**data, "id": str(data["id"])}
        return data

    @model_validator(mode="after")
    def _times_in_order(self) -> Incident:
        # Out-of-order times are the file's problem, not a reason to lose the incident: they
        # are reported (and durations built from them left out), the rest is kept.
        self._warnings.extend(time_warnings(self.date, self.detected, self.resolved))
        return self

    @property
    def warnings(self) -> list[tuple[str, str, str]]:
        """(field, message, code) for what was readable but wrong: ``time-order`` (an invalid
        value, exit 1) or ``date-only-start`` (a warning)."""
        return list(self._warnings)

    # -- where it came from -------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def source_format(self) -> str:
        """``markdown``, ``markdown-plain``, ``yaml`` or ``json``."""
        return self._format

    def line_of(self, field: str) -> int | None:
        """1-based line of a top-level field (or of a body section) in the source file."""
        return self._lines.get(field) or self._body_lines.get(field)

    @property
    def body(self) -> str:
        """The Markdown body after the front matter (empty for YAML/JSON)."""
        return self._body

    # -- derived views --------------------------------------------------------------------
    @property
    def sections(self) -> dict[str, str]:
        """Prose by canonical section id: fields first, then the Markdown body's sections.

        Headings that match no known section keep their own text as key, so nothing a
        person wrote is lost to the classifier or the linter.
        """
        extra = self.model_extra or {}
        fields = type(self).model_fields  # a property on the class: read once, not per key
        return merge_sections(
            lambda key: getattr(self, key, None) if key in fields else extra.get(key), self._body_sections
        )

    @property
    def quarter(self) -> str | None:
        start = as_utc(self.date)
        return f"{start.year}Q{(start.month - 1) // 3 + 1}" if start else None

    @property
    def time_to_detect(self) -> timedelta | None:
        return duration_between(self.date, self.detected)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return duration_between(self.date, self.resolved)

    def summary_row(self) -> dict[str, Any]:
        """The row `agentpm list` prints: flat, JSON-ready."""
        return {
            "path": str(self._path) if self._path else None,
            "id": self.id,
            "title": self.title,
            "date": self.date.isoformat() if self.date else None,
            "severity": self.severity,
            "status": self.status,
            "category": self.category,
            "secondary": list(self.secondary),
            "predicted": self.prediction.category if self.prediction else None,
            "format": self._format,
        }


FIELD_DESCRIPTIONS = {
    "id": "Incident id, unique across the corpus (e.g. INC-2026-014).",
    "title": "One line saying what happened.",
    "date": "When the incident started: ISO date or datetime; give a time of day when detected/resolved have one.",
    "detected": "When it was noticed (ISO datetime, with time zone).",
    "resolved": "When it was resolved (ISO datetime, with time zone).",
    "severity": "SEV1 (worst) to SEV4.",
    "status": "draft, in-review or final.",
    "category": "The human label: the root-cause category's taxonomy id.",
    "secondary": "Other categories that contributed (taxonomy ids).",
    "labelling_note": "Why this label, for a boundary case.",
    "systems": "Systems involved.",
    "tools": "Tools and APIs the agent used.",
    "impact": "Who or what was affected, and how much (money, users, records).",
    "tags": "Free tags.",
    "action_items": "Follow-ups: title, owner, due, status (open|done|wontfix), kind (prevent|detect|mitigate).",
    "prediction": "Written only by agentpm (classify --write): category, confidence, model, at.",
    "summary": "What happened, in a few sentences (text, or a list of points).",
    "detection": "How it was noticed.",
    "timeline": "What happened when (text, or a list of points or of {time, event} pairs).",
    "root_cause": "The cause the post-mortem established.",
    "contributing_factors": "What made it worse or possible (text or a list).",
    "fix": "What was changed to resolve it.",
    "prevention": "What keeps it from happening again.",
    "lessons_learned": "What the team learned.",
}
PROVENANCE_DESCRIPTIONS = {
    "source": "Where a report modelled on or imported from public material came from (owner/repo#number or URL).",
    "source_kind": "issue, pr, writeup, record or chat.",
    "rationale": "One line: why this label.",
    "split": "train or test: the real-text test split of agentpm's own corpus.",
    "licence": "Licence of an imported record.",
    "imported_at": "When agentpm imported it (UTC).",
    "label_source": "human, accepted-prediction or imported.",
    "labelled_by": "Who labelled it.",
    "labelled_at": "When it was labelled (UTC).",
}
_PROSE_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}, {"type": "null"}]}


def incident_json_schema(category_ids: list[str] | None = None) -> dict[str, Any]:
    """The JSON Schema editors can use to check front matter (``taxonomy/incident.schema.json``):
    every known field described, enums for severity, status, action items and (given the
    taxonomy's ids) category, so an editor completes them and flags typos."""
    schema = Incident.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        "An agentpm incident record: the YAML front matter of a Markdown post-mortem, or a whole "
        "YAML/JSON incident file. Unknown fields are allowed and kept (agentpm warns about ones "
        "that look like typos of these)."
    )
    properties = schema["properties"]
    for name, text in FIELD_DESCRIPTIONS.items():
        if name in properties:
            properties[name]["description"] = text
    for name in (*PROSE_FIELDS, "impact", "labelling_note"):
        properties[name] = {**_PROSE_SCHEMA, "description": FIELD_DESCRIPTIONS[name], "default": None}
    for name, text in PROVENANCE_DESCRIPTIONS.items():
        properties[name] = {"type": "string", "description": text}
    if category_ids:
        properties["category"] = {
            "anyOf": [{"enum": list(category_ids), "type": "string"}, {"type": "null"}],
            "default": None,
            "description": FIELD_DESCRIPTIONS["category"],
        }
        properties["secondary"]["items"] = {"enum": list(category_ids), "type": "string"}
    return schema

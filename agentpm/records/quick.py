"""The fields trends and reports need, read straight from a well-formed file.

Most incident files are written the way the schema asks: canonical values, ISO dates, fields
the schema knows (others are kept, with the full parser's typo warnings). For those this
builds the cached record (the same data and problems as the full parser followed by
``record_data``) without the liberal reader and the schema's model, which were half the cost
of a cold 100,000-file run. Anything unusual (a value the liberal reader would bend, a field
the schema would refuse, Markdown without front matter, a file that cannot be read) returns
None and the caller uses the full parser; a test holds the two equal on every file it has.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple

from agentpm.records.incident import (
    SEVERITIES,
    STATUSES,
    as_utc,
    duration_between,
    merge_sections,
    parse_when,
    time_warnings,
)
from agentpm.records.liberal import ITEM_KINDS, ITEM_STATUS_WORDS, LIST_FIELDS, TEXT_FIELDS, typo_warnings
from agentpm.records.parsing import (
    JSON_SUFFIXES,
    MARKDOWN_SUFFIXES,
    YAML_SUFFIXES,
    decode_text,
    known_fields,
    read_limited,
    split_front_matter,
    split_sections,
)
from agentpm.safeload import UnreadableInput, load_json, load_yaml

_KNOWN = known_fields()
_TEXT = frozenset(TEXT_FIELDS)
#: The canonical action-item statuses (what the liberal reader maps every spelling to).
_ITEM_STATUSES = frozenset(ITEM_STATUS_WORDS.values())
#: The fields whose source line the cached record keeps (for problems found across files).
LINE_FIELDS = ("id", "category", "secondary", "prediction")


#: What a file holds as its stored prediction's category: a category, None, or no prediction.
NOT_STORED = object()


class _Unusual(Exception):
    """Something the full parser should handle."""


def read_file(path: str) -> bytes | None:
    """A file's bytes as the parser reads them, or None when they cannot be read (the full
    parser then reads it again, to report why)."""
    try:
        return read_limited(path)
    except (UnreadableInput, OSError):
        return None


class _ItemTitle(NamedTuple):
    title: str


class TextView:
    """What the classifier reads of an incident (``features.channels``: title, prose sections,
    impact, action-item titles, systems, tools; path and id for the prediction), taken from a
    file the quick reader accepted: a model labels it without the full parse. A test holds its
    channels equal to the parsed incident's on every file the quick reader accepts."""

    __slots__ = ("_path", "id", "_raw", "_listed", "_actions", "_body", "_start")

    # Built for every file a labelling run reads but used for few: the fields are looked up when asked.
    def __init__(self, path: str, raw: dict[str, Any], listed: dict[str, list[str]], actions: list[Any],
                 body: str, body_start: int, identifier: str | None):  # fmt: skip
        self._path, self.id, self._raw, self._listed, self._actions = path, identifier, raw, listed, actions
        self._body, self._start = body, body_start

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def title(self) -> str:
        return self._raw["title"]

    @property
    def impact(self) -> str | None:
        return self._raw.get("impact")

    @property
    def action_items(self) -> list[_ItemTitle]:
        return [_ItemTitle(action[0]) for action in self._actions]

    @property
    def systems(self) -> list[str]:
        return self._listed["systems"]

    @property
    def tools(self) -> list[str]:
        return self._listed["tools"]

    @property
    def sections(self) -> dict[str, str]:
        body = split_sections(self._body, self._start, self.title)[0] if self._body else {}
        return merge_sections(self._raw.get, body)


def quick_data(path: str, data: bytes | None = None) -> dict[str, Any] | None:
    """``{"record": ..., "problems": [...]}`` as the full parser would cache it, or None;
    ``data`` is the file's bytes when the caller has read them."""
    return quick_read(path, data)[0]


def quick_read(path: str, data: bytes | None = None) -> tuple[dict[str, Any] | None, TextView | None]:
    """:func:`quick_data` and the file's :class:`TextView` (both None when the full parser is needed)."""
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    try:
        text = decode_text(read_limited(path) if data is None else data)
        if not text.strip():
            return None, None
        body, body_start = "", 1
        if suffix in MARKDOWN_SUFFIXES:
            front, body, body_start = split_front_matter(text)
            if front is None:
                return None, None
            raw, lines = load_yaml(front, line_offset=1)
        elif suffix in YAML_SUFFIXES:
            raw, lines = load_yaml(text)
        elif suffix in JSON_SUFFIXES:
            raw, lines = load_json(text)
        else:
            return None, None
        return _from_mapping(path, raw, lines, body, body_start)
    except (UnreadableInput, _Unusual, ValueError, OSError, RecursionError):
        return None, None


def _from_mapping(
    path: str, raw: Any, lines: dict[str, int], body: str, body_start: int
) -> tuple[dict[str, Any], TextView]:
    if not isinstance(raw, dict):
        raise _Unusual
    extra = [] if _KNOWN.issuperset(raw) else [key for key in raw if key not in _KNOWN]
    # Fields the schema does not know are kept as written, with a warning where one looks like a
    # typo of a known field; a name the schema's own machinery might claim is left to it.
    if any(not isinstance(key, str) or key.startswith(("_", "model_")) for key in extra):
        raise _Unusual
    title = raw.get("title")
    if not isinstance(title, str) or not title:
        raise _Unusual
    for key in _TEXT.intersection(raw):
        if raw[key] is not None and not isinstance(raw[key], str):
            raise _Unusual
    identifier = raw.get("id")
    if isinstance(identifier, int) and not isinstance(identifier, bool):
        identifier = str(identifier)
    elif identifier is not None and not isinstance(identifier, str):
        raise _Unusual
    category = _text_or_none(raw.get("category"))
    severity = raw.get("severity")
    if severity is not None:
        if not isinstance(severity, str) or severity.strip().upper() not in SEVERITIES:
            raise _Unusual
        severity = severity.strip().upper()
    if raw.get("status") is not None and raw["status"] not in STATUSES:
        raise _Unusual
    when, detected, resolved = (_when(raw.get(name)) for name in ("date", "detected", "resolved"))
    listed = {name: _string_list(raw.get(name)) for name in LIST_FIELDS}
    actions = [_action(item) for item in _items(raw.get("action_items"))]
    stored = _stored_prediction(raw.get("prediction"))
    kept_lines = {key: value for key, value in lines.items() if value}
    missing = [name for name in LINE_FIELDS if name not in kept_lines]
    if body and missing and any(name in lowered for lowered in (body.lower(),) for name in missing):
        # a body heading such as "## Category" is where such a field's line is then found
        body_lines = split_sections(body, body_start, title)[1]
        kept_lines.update({name: body_lines[name] for name in missing if body_lines.get(name)})
    record = cached_record(
        identifier=identifier,
        title=title,
        when=when,
        detected=detected,
        resolved=resolved,
        severity=severity,
        category=category,
        secondary=listed["secondary"],
        stored_category=stored,
        actions=actions,
        lines=kept_lines,
        impact=raw.get("impact"),
        systems=listed["systems"],
        tags=listed["tags"],
        label_source=raw.get("label_source"),
    )
    problems = [
        [f"warning: {message}", lines.get(field), "warning", field]
        for field, message, _ in typo_warnings(extra, _KNOWN)
    ]
    problems += [
        [message, lines.get(field), "invalid" if code == "time-order" else "warning", field]
        for field, message, code in time_warnings(when, detected, resolved)
    ]
    view = TextView(path, raw, listed, actions, body, body_start, identifier)
    return {"record": record, "problems": problems}, view


def cached_record(
    *,
    identifier: str | None,
    title: str,
    when: date | datetime | None,
    detected: date | datetime | None,
    resolved: date | datetime | None,
    severity: str | None,
    category: str | None,
    secondary: list[str],
    stored_category: str | None | object,
    actions: list[tuple[str, str | None, date | datetime | None, str]],
    lines: dict[str, int],
    impact: str | None,
    systems: list[str],
    tags: list[str],
    label_source: Any,
) -> dict[str, Any]:
    """The JSON-ready fields trends and reports use, whichever reader found them: this module's
    or the full parser's (``agentpm.records.cache.record_data``). ``stored_category`` is
    ``NOT_STORED`` when the file holds no prediction."""
    start = as_utc(when)
    ttd, ttr = duration_between(when, detected), duration_between(when, resolved)
    rows = []
    for action_title, owner, due, status in actions:
        day = due.date() if isinstance(due, datetime) else due
        rows.append([action_title, owner, day.isoformat() if day else None, status])
    return {
        "id": identifier,
        "title": title,
        "date": when.isoformat() if when else None,
        "start": start.isoformat() if start else None,
        "ttd": ttd.total_seconds() if ttd is not None else None,
        "ttr": ttr.total_seconds() if ttr is not None else None,
        "severity": severity,
        "category": category,
        "secondary": list(secondary),
        "stored": None if stored_category is NOT_STORED else {"category": stored_category},
        "actions": rows,
        "lines": {name: lines[name] for name in LINE_FIELDS if lines.get(name)},
        # the report quotes an incident's own impact and breaks categories down by systems and tags
        "impact": " ".join(impact.split())[:400] if impact else None,
        "systems": list(systems),
        "tags": list(tags),
        "label_source": label_source if category else None,
    }


def _text_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _Unusual
    return value


def _when(value: Any) -> date | datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Unusual
    return parse_when(value)  # a ValueError sends the file to the full parser


def _string_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or any(not isinstance(item, str) for item in value):
        raise _Unusual
    return list(value)


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Unusual
    return value


def _action(item: Any) -> tuple[str, str | None, date | datetime | None, str]:
    if isinstance(item, str):
        item = {"title": item}
    if not isinstance(item, dict) or any(not isinstance(key, str) for key in item):
        raise _Unusual
    title, owner = item.get("title"), item.get("owner")
    if not isinstance(title, str) or not title or (owner is not None and not isinstance(owner, str)):
        raise _Unusual
    status = item.get("status", "open")
    if status not in _ITEM_STATUSES or ("kind" in item and item["kind"] not in (None, *ITEM_KINDS)):
        raise _Unusual
    return (title, owner, _when(item.get("due")), status)


def _stored_prediction(value: Any) -> Any:
    if value is None:
        return NOT_STORED
    if not isinstance(value, dict) or any(not isinstance(key, str) for key in value):
        raise _Unusual
    category = _text_or_none(value.get("category"))
    _text_or_none(value.get("model"))
    confidence = value.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1
    ):
        raise _Unusual
    _when(value.get("at"))
    return category

"""Liberal reading: a record as people write it, made readable, with what was bent said out loud.

Real post-mortems write a timeline as a YAML list, contributing factors as bullet points,
`severity: High`, an action item `kind: process`, or `rootcause:` for `root_cause`. None of
that should cost the incident: prose given as a list or mapping is joined into text; an enum
value agentpm does not know is kept verbatim beside the field (``severity_as_written: High``)
with a warning; a field that looks like a typo of a known one gets a warning naming the field
it probably meant. The warnings are problems of the file (``validate`` exits 1); the incident
stays in every analysis with what could be read.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from agentpm.records.incident import PROSE_FIELDS, SECTION_FIELD_ALIASES

# The schema's prose fields, and the aliases that count as prose sections.
TEXT_FIELDS = (*PROSE_FIELDS, "impact", "labelling_note", *SECTION_FIELD_ALIASES)
LIST_FIELDS = ("secondary", "systems", "tools", "tags")
STATUS_WORDS = {
    "draft": "draft",
    "in-review": "in-review",
    "in review": "in-review",
    "review": "in-review",
    "inreview": "in-review",
    "final": "final",
}
ITEM_STATUS_WORDS = {
    "open": "open",
    "todo": "open",
    "to do": "open",
    "in progress": "open",
    "in-progress": "open",
    "done": "done",
    "closed": "done",
    "complete": "done",
    "completed": "done",
    "fixed": "done",
    "wontfix": "wontfix",
    "won't fix": "wontfix",
    "wont fix": "wontfix",
    "won't-fix": "wontfix",
}
ITEM_KINDS = ("prevent", "detect", "mitigate")
_TIME_KEYS = ("time", "at", "when", "timestamp", "date")
_EVENT_KEYS = ("event", "what", "description", "text", "note", "action")


def as_text(value: Any) -> Any:
    """Prose given as a list (bullets), a list of time/event pairs, or a mapping, as text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(f"- {_item_text(item)}" for item in value)
    if isinstance(value, dict):
        return "\n".join(f"{key}: {as_text(item)}" for key, item in value.items())
    return str(value)


def _item_text(item: Any) -> str:
    if isinstance(item, dict):
        when = next((item[key] for key in _TIME_KEYS if key in item), None)
        what = next((item[key] for key in _EVENT_KEYS if key in item), None)
        if when is not None and what is not None:
            rest = {k: v for k, v in item.items() if k not in _TIME_KEYS + _EVENT_KEYS}
            extra = "; " + "; ".join(f"{k}: {v}" for k, v in rest.items()) if rest else ""
            return f"{when}: {as_text(what)}{extra}"
        return "; ".join(f"{key}: {as_text(val)}" for key, val in item.items())
    text = as_text(item)
    return text.replace("\n", " ") if isinstance(text, str) else str(text)


def _as_list(value: Any) -> Any:
    if isinstance(value, (list, str)) or value is None:
        return value
    if isinstance(value, dict):
        return [f"{key}: {item}" for key, item in value.items()]
    return [str(value)]


def _enum(
    data: dict[str, Any], key: str, words: dict[str, str], label: str, warnings: list[tuple[str, str, str]]
) -> None:
    value = data.get(key)
    if value is None:
        return
    compact = str(value).strip()
    known = words.get(compact.lower()) or words.get(compact.upper())
    if known:
        data[key] = known
        return
    data[f"{key}_as_written"] = value
    del data[key]
    warnings.append(
        (
            key,
            f"{label} {value!r} is not one agentpm knows ({', '.join(sorted(set(words.values())))}); "
            f"kept as {key}_as_written and left out of {label} counts",
            "unknown-value",
        )
    )


def _severity_words() -> dict[str, str]:
    # Only spellings of the SEV scale itself: "High" or "P1" mean different things on different
    # teams' scales, so they are kept as written rather than guessed.
    words = {}
    for number in range(1, 5):
        for spelling in (f"SEV{number}", f"SEV-{number}", f"SEV {number}", f"SEV_{number}", f"S{number}"):
            words[spelling] = f"SEV{number}"
    return words


_SEVERITIES = _severity_words()


def loosen(
    raw: dict[str, Any], known_fields: Iterable[str]
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """A copy of ``raw`` that the schema can read, and (field, message, code) warnings for what
    was bent: ``unknown-value`` or ``field-typo``."""
    data = dict(raw)
    warnings: list[tuple[str, str, str]] = []
    for key in TEXT_FIELDS:
        if key in data and not isinstance(data[key], str) and data[key] is not None:
            data[key] = as_text(data[key])
    for key in (*LIST_FIELDS, "action_items"):
        if key in data and data[key] is None:
            del data[key]  # `tags:` with nothing after it means no tags
    for key in LIST_FIELDS:
        if key in data:
            data[key] = _as_list(data[key])
    if "severity" in data and not (
        isinstance(data["severity"], str)
        and data["severity"].strip().upper() in ("SEV1", "SEV2", "SEV3", "SEV4")
    ):
        _enum(data, "severity", _SEVERITIES, "severity", warnings)
    if "status" in data:
        _enum(data, "status", STATUS_WORDS, "status", warnings)
    items = data.get("action_items")
    if isinstance(items, dict):
        items = [items]
    if isinstance(items, list):
        data["action_items"] = [_loosen_item(item, number, warnings) for number, item in enumerate(items, 1)]
    known = known_fields if isinstance(known_fields, frozenset) else frozenset(known_fields)
    warnings.extend(typo_warnings(data, known))
    return data, warnings


def typo_warnings(fields: Iterable[Any], known: frozenset[str]) -> list[tuple[str, str, str]]:
    """(field, message, ``field-typo``) for each unknown field name that looks like a known one,
    in the order given; other unknown fields are kept without a word."""
    warnings = []
    for key in fields:
        if isinstance(key, str) and key not in known and not key.endswith("_as_written"):
            guess = _field_typo(key.lower().replace("-", "_"), known)
            if guess:
                warnings.append(
                    (key, f"unknown field {key!r}: did you mean {guess!r}? (kept as written)", "field-typo")
                )
    return warnings


@lru_cache(maxsize=4096)
def _field_typo(name: str, known: frozenset[str]) -> str | None:
    """The known field ``name`` looks like a typo of, or None. Worked out once per name: files
    from one source repeat the same extra fields, and an imported dataset of 15,000 reports
    spent most of its reading time in difflib."""
    guess = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    return guess[0] if guess else None


def _loosen_item(item: Any, number: int, warnings: list[tuple[str, str, str]]) -> Any:
    if isinstance(item, str):
        return {"title": item}
    if not isinstance(item, dict):
        return item
    item = dict(item)
    if "status" in item:
        sub: list[tuple[str, str, str]] = []
        _enum(item, "status", ITEM_STATUS_WORDS, f"action item {number} status", sub)
        warnings += [(f"action_items[{number}].status", message, code) for _, message, code in sub]
    if "kind" in item and item["kind"] is not None:
        sub = []
        _enum(item, "kind", {kind: kind for kind in ITEM_KINDS}, f"action item {number} kind", sub)
        warnings += [(f"action_items[{number}].kind", message, code) for _, message, code in sub]
    return item

"""The core of `agentpm new`: a safe file name, the next free id, and a rendered draft.

A title is free text typed by a person (or pasted from a chat): it may hold ``../``,
slashes, control characters, only punctuation or no Latin letters at all. It becomes a
file name only through :func:`slugify`, which keeps lower-case ASCII letters, digits and
hyphens, and the resulting path is checked to sit directly inside the target folder.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from agentpm.errors import InputError, UsageError, WriteError
from agentpm.records.incident import SEVERITIES
from agentpm.taxonomy import Taxonomy

#: Longest slug kept in a file name; long titles are cut at a word boundary.
MAX_SLUG = 60
TEMPLATES = {"md": "postmortem.md.j2", "yaml": "postmortem.yaml.j2"}
# `id:` at the top level of YAML or front matter, and `"id": "..."` anywhere in JSON.
_YAML_ID_KEY = re.compile(r"id[ \t]{0,16}:")
_JSON_ID = re.compile(r'"id"\s*:\s*"([^"\n]+)"')
#: Only the head of each file is read for its id: ids sit at the top, and a corpus of
#: thousands of files must not be read in full just to pick a number.
_ID_SCAN_BYTES = 4096


def clean_title(title: str) -> str:
    """The title with control, format and line/paragraph-separator characters removed and
    whitespace collapsed: safe as a Markdown heading and as a YAML scalar."""
    kept = "".join(
        " "
        if unicodedata.category(char) in ("Zl", "Zp") or char in "\t\n\r"
        else ("" if unicodedata.category(char).startswith("C") else char)
        for char in title
    )
    cleaned = " ".join(kept.split())
    if not cleaned:
        raise UsageError("the title is empty once control characters are removed; give the incident a title")
    return cleaned


def slugify(title: str, limit: int = MAX_SLUG) -> str:
    """Lower-case ASCII words joined by hyphens ('Überfälle im Zahlungsagent' → 'uberfalle-im-zahlungsagent').

    Letters without an ASCII decomposition (Japanese, Cyrillic...) are dropped, so the
    result may be empty; the caller supplies a fallback.
    """
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > limit:
        cut = slug[:limit]
        if slug[limit] != "-" and "-" in cut:
            cut = cut[: cut.rfind("-")]  # do not end on half a word
        slug = cut.strip("-")
    return slug


def parse_day(value: str | None, option: str = "--date") -> date:
    """A day given on the command line (``--date``, ``--as-of``): YYYY-MM-DD, default today in UTC."""
    if value is None:
        return datetime.now(timezone.utc).date()
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"{option}: {value!r} is not a calendar date; use YYYY-MM-DD, e.g. 2026-03-02"
        ) from None


def normalise_severity(value: str | None) -> str | None:
    if value is None:
        return None
    compact = value.strip().upper().replace(" ", "").replace("-", "")
    if compact not in SEVERITIES:
        raise UsageError(f"--severity: {value!r} is not a severity; use one of {', '.join(SEVERITIES)}")
    return compact


def existing_ids(folder: Path) -> set[str]:
    """Ids used by incident files under ``folder`` (a light scan of each file's head, no parsing)."""
    return set(ids_by_file(folder))


def ids_by_file(folder: Path) -> dict[str, str]:
    """Each id used under ``folder`` and the first file that uses it (the same light scan)."""
    from agentpm.records.corpus import discover

    if not folder.is_dir():
        return {}
    files, _ = discover([folder])
    found: dict[str, str] = {}
    for path in files:
        try:
            with open(path, "rb") as stream:
                head = stream.read(_ID_SCAN_BYTES).decode("utf-8", "ignore")
        except OSError:
            continue  # an unreadable file has no id to collide with; `agentpm validate` reports it
        for value in [match.group(1).strip() for match in _JSON_ID.finditer(head)] + _yaml_ids(head):
            found.setdefault(value, str(path))
    return found


def _yaml_ids(head: str) -> list[str]:
    """Values of top-level ``id:`` lines, read with str methods (linear, whatever the line)."""
    ids = []
    for line in head.split("\n"):
        key = _YAML_ID_KEY.match(line) if line.startswith("id") else None
        if key:
            value = line[key.end() :].split("#", 1)[0].strip().strip("\"'").strip()
            if value:
                ids.append(value)
    return ids


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself (flock on its descriptor, no lock file): two
    `agentpm new` runs in one folder take turns choosing an id and creating their file."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, write_new_file still never overwrites
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def next_id(day: date, used: set[str]) -> str:
    """``INC-YYYY-NNN``: one more than the highest number used in that year, and unused."""
    pattern = re.compile(rf"^INC-{day.year}-(\d+)$", re.IGNORECASE)
    highest = max((int(match.group(1)) for match in map(pattern.match, used) if match), default=0)
    number = highest + 1
    while f"INC-{day.year}-{number:03d}" in used:
        number += 1
    return f"INC-{day.year}-{number:03d}"


def target_path(folder: Path, day: date, slug: str, extension: str) -> Path:
    """``folder/YYYY-MM-DD-slug.ext``, refusing anything that would land outside ``folder``."""
    name = f"{day.isoformat()}-{slug}.{extension}"
    path = folder / name
    if path.resolve().parent != folder.resolve() or "/" in name or "\\" in name:
        raise UsageError(f"refusing to write {name!r}: the file name must stay inside {folder}")
    return path


def _yaml_text(value: str) -> str:
    """A YAML double-quoted scalar. JSON strings are valid YAML once line separators are gone
    (clean_title removes them), and quoting means no title can add or change a field."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class Draft:
    path: Path
    id: str
    text: str


def build_context(
    title: str, incident_id: str, day: date, severity: str | None, category_id: str | None, taxonomy: Taxonomy
) -> dict[str, Any]:
    """Everything a post-mortem template may use; every key is always present (StrictUndefined)."""
    category = taxonomy.get(category_id) if category_id else None
    return {
        "title": title,
        "title_yaml": _yaml_text(title),
        "id": incident_id,
        "id_yaml": _yaml_text(incident_id),
        "date": day.isoformat(),
        "severity": severity,
        "status": "draft",
        "category": None
        if category is None
        else {
            "id": category.id,
            "name": category.name,
            "description": " ".join(category.description.split()),
            "prevention": list(category.prevention),
            "record": [hint.hint for hint in category.record],
        },
    }


def create_draft(
    title: str,
    folder: Path,
    taxonomy: Taxonomy,
    *,
    category_id: str | None = None,
    severity: str | None = None,
    day: str | None = None,
    output_format: str = "md",
    templates: Path | None = None,
) -> Draft:
    """Render a new post-mortem draft and write it, never over an existing file."""
    if output_format not in TEMPLATES:
        raise UsageError(f"--format: {output_format!r} is not supported; use md or yaml")
    shown_title = clean_title(title)
    when = parse_day(day)
    sev = normalise_severity(severity)
    if category_id is not None and category_id not in taxonomy:
        raise UsageError(
            f"--category: unknown category {category_id!r}; known ids: {', '.join(taxonomy.ids)}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder):
        return _create_locked(shown_title, folder, taxonomy, when, sev, category_id, output_format, templates)


def _create_locked(
    shown_title: str,
    folder: Path,
    taxonomy: Taxonomy,
    when: date,
    sev: str | None,
    category_id: str | None,
    output_format: str,
    templates: Path | None,
) -> Draft:
    from jinja2 import TemplateError

    from agentpm.records.writing import write_new_file
    from agentpm.templating import render

    incident_id = next_id(when, existing_ids(folder))
    # A title with no Latin letters or digits still gets a unique, readable name: its id.
    slug = slugify(shown_title) or incident_id.lower()
    path = target_path(folder, when, slug, output_format)
    if path.exists():
        raise WriteError(
            f"{path}: already exists; agentpm new never overwrites a file. Edit that file, or use "
            "another title or --date"
        )
    context = build_context(shown_title, incident_id, when, sev, category_id, taxonomy)
    try:
        text = render(TEMPLATES[output_format], context, templates)
    except TemplateError as exc:
        # A user's template folder may hold a broken or sandbox-violating template.
        where = Path(templates) / TEMPLATES[output_format] if templates else TEMPLATES[output_format]
        raise InputError(
            f"{where}: cannot render the post-mortem template: {type(exc).__name__}: {exc}"
        ) from None
    write_new_file(path, text)
    return Draft(path, incident_id, text)


__all__ = [
    "Draft",
    "create_draft",
    "slugify",
    "clean_title",
    "next_id",
    "existing_ids",
    "target_path",
    "parse_day",
    "build_context",
    "MAX_SLUG",
]

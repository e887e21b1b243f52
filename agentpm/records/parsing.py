"""Turn one file's bytes into an :class:`Incident`, or into problems, never into a traceback.

Four formats share one path: Markdown with YAML front matter, plain Markdown (title from
the first ``#`` heading, an optional ``Key: value`` block under it, date from a
``YYYY-MM-DD`` file-name prefix), YAML and JSON. Every failure becomes a
:class:`Problem` with the file, the line when known, and what to do about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from agentpm.records.incident import SECTION_FIELD_ALIASES, SECTIONS, Incident, parse_when
from agentpm.records.liberal import loosen
from agentpm.safeload import UnreadableInput, load_json, load_yaml, read_regular_file

#: Files larger than this are refused unread: a post-mortem is a few KB; anything near this
#: size is a log dump or a mistake, and reading it would stall a corpus run.
MAX_FILE_BYTES = 5 * 1024 * 1024

MARKDOWN_SUFFIXES = (".md", ".markdown")
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
SUFFIXES = MARKDOWN_SUFFIXES + YAML_SUFFIXES + JSON_SUFFIXES

ProblemKind = Literal["unreadable", "invalid", "warning"]


@dataclass(frozen=True)
class Problem:
    """Something wrong with one input file. ``unreadable``: no document could be read
    (exit code 2); ``invalid``: a document, but not a valid incident, or a field of it left out
    (exit code 1); ``warning``: read, but something was bent or looks wrong (exit code 1)."""

    path: str
    message: str
    line: int | None = None
    kind: ProblemKind = "invalid"
    field: str | None = None
    #: what kind of finding a readable record's problem is (time-order, date-only-start,
    #: unknown-value, field-typo), so `lint` can name its rule without reading the message
    code: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "kind": self.kind,
            "field": self.field,
            "message": self.message,
        }


def exit_code_for(problems) -> int:
    """The CLI contract: 0 clean, 1 invalid records, 2 anything unreadable."""
    problems = list(problems)
    if any(problem.kind == "unreadable" for problem in problems):
        return 2
    return 1 if problems else 0


@dataclass
class ParseResult:
    incident: Incident | None
    problems: list[Problem] = field(default_factory=list)


class _Invalid(Exception):
    def __init__(self, message: str, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.line = line
        self.field = field


# -- Markdown -----------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_FENCE_STARTS = frozenset(" \t`~")
# The key part of a "Key: value" line under a plain-Markdown title. Bounded repetitions only:
# the value is taken with str methods, so no line, however long, makes the match slow.
_META_KEY = re.compile(
    r"[ \t]{0,16}(?:[-*][ \t]{1,8})?(?:\*\*)?([A-Za-z][A-Za-z _-]{0,30}?)(?:\*\*)?[ \t]{0,8}:(?:\*\*)?"
)
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[-_ .]|$)")

#: Keys a plain-Markdown metadata block may set (lower-case, spaces as underscores).
_PLAIN_META_KEYS = {
    "id",
    "date",
    "detected",
    "resolved",
    "severity",
    "status",
    "category",
    "secondary",
    "labelling_note",
    "systems",
    "tools",
    "impact",
    "tags",
    "owner",
    "reported_by",
    "author",
}
_PLAIN_META_ALIASES = {
    "labeling_note": "labelling_note",
    "incident_id": "id",
    "sev": "severity",
    "start": "date",
    "started": "date",
    "system": "systems",
    "tool": "tools",
}


def match_heading(line: str) -> tuple[int, str] | None:
    """An ATX heading ``## Text ##`` as (level, text), or None; linear in the line's length."""
    level = len(line) - len(line.lstrip("#"))
    if not 1 <= level <= 6 or len(line) == level or line[level] not in " \t":
        return None
    return level, line[level:].strip(" \t").rstrip("#").rstrip(" \t")


def match_bold_label(line: str) -> tuple[str, str] | None:
    """A label line ``**Root cause:** text`` as (label, text), or None; linear in the line's length."""
    if not line.startswith("**"):
        return None
    end = line.find("**", 2)
    if end < 0:
        return None
    label = line[2:end].rstrip()
    label = label[:-1].rstrip() if label.endswith(":") else label
    if not 2 <= len(label) <= 40 or "*" in label or "\n" in label:
        return None
    rest = line[end + 2 :].lstrip()
    return label, (rest[1:].lstrip() if rest.startswith(":") else rest).rstrip()


def match_meta_line(line: str) -> tuple[str, str] | None:
    """A ``Key: value`` line as (key, value), or None."""
    found = _META_KEY.match(line)
    if not found:
        return None
    return found.group(1), line[found.end() :].strip(" \t")


@lru_cache(maxsize=4096)
def canonical_section(heading: str) -> str | None:
    """The canonical section id for a heading such as '3. Root Cause Analysis', or None."""
    norm = " ".join(re.sub(r"[^a-z]+", " ", heading.lower()).split())
    for key, aliases in SECTIONS.items():
        for alias in aliases:
            if norm == alias or norm.startswith(alias + " "):
                return key
    return None


def split_sections(
    body: str, first_line: int, title: str | None = None
) -> tuple[dict[str, str], dict[str, int]]:
    """Split a Markdown body into sections by heading (any level) or bold label line.

    Text before the first heading is kept under ``preamble``; unknown headings keep their
    own (lower-cased) text as the key. Headings inside fenced code blocks are ignored.
    """
    sections: dict[str, list[str]] = {}
    lines_of: dict[str, int] = {}
    current = "preamble"
    in_fence = False
    for index, line in enumerate(body.split("\n")):
        # Only lines starting with these characters can be fences, headings or labels; the
        # first-character test saves three regex calls on every line of prose.
        first = line[:1]
        if first in _FENCE_STARTS and _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and first in ("#", "*"):
            heading = match_heading(line) if first == "#" else None
            if heading:
                text = heading[1].strip()
                if heading[0] == 1 and title and text.strip().lower() == title.strip().lower():
                    continue  # the document title repeated as H1 is not a section
                current = canonical_section(text) or (" ".join(text.lower().split()) or "preamble")
                lines_of.setdefault(current, first_line + index)
                sections.setdefault(current, [])
                continue
            label = match_bold_label(line)
            if label and canonical_section(label[0]):
                current = canonical_section(label[0]) or current
                lines_of.setdefault(current, first_line + index)
                sections.setdefault(current, []).append(label[1])
                continue
        sections.setdefault(current, []).append(line)
    joined = {key: "\n".join(lines).strip() for key, lines in sections.items()}
    return {key: text for key, text in joined.items() if text}, lines_of


def split_front_matter(text: str) -> tuple[str | None, str, int]:
    """(front matter or None, body, 1-based line where the body starts)."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return None, text, 1
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :]), index + 2
    raise UnreadableInput(
        "front matter opened with '---' is never closed; add a line '---' after the last field", 1
    )


def _plain_markdown(text: str, path: Path) -> tuple[dict[str, Any], dict[str, int], str]:
    """Fields, their lines and the prose body (same line numbering as the file), for Markdown
    without front matter."""
    lines = text.split("\n")
    fields: dict[str, Any] = {}
    where: dict[str, int] = {}
    in_fence = False
    title_index = None
    for index, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        heading = None if in_fence else match_heading(line)
        if heading and heading[0] == 1:
            fields["title"] = heading[1].strip()
            where["title"] = index + 1
            title_index = index
            break
    body_lines = list(lines)
    if title_index is not None:
        cursor = title_index + 1
        while cursor < len(lines) and not lines[cursor].strip():
            cursor += 1
        meta_end = cursor
        while meta_end < len(lines):
            match = match_meta_line(lines[meta_end])
            if not match:
                break
            key = match[0].strip().lower().replace(" ", "_").replace("-", "_")
            key = _PLAIN_META_ALIASES.get(key, key)
            if key not in _PLAIN_META_KEYS or not match[1]:
                break
            fields[key] = match[1]
            where[key] = meta_end + 1
            meta_end += 1
        # The title and the metadata block are not prose; blanking (not deleting) them keeps
        # the body's line numbers equal to the file's.
        for index in range(title_index, meta_end if meta_end > cursor else title_index + 1):
            body_lines[index] = ""
    body = "\n".join(body_lines)
    prefix = _DATE_PREFIX.match(path.name)
    if "date" not in fields and prefix:
        fields["date"] = prefix.group(1)
        where["date"] = 0
    return fields, where, body


# -- validation messages ------------------------------------------------------------------


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_FIELD_HINTS = {
    "title": "add a `title:` field (or a '# Title' heading in plain Markdown)",
    "severity": "use SEV1 (worst) to SEV4",
    "status": "use draft, in-review or final",
}


_TYPE_TAGS = {"datetime", "date", "str", "int", "float", "bool", "list", "dict"}


def _is_type_tag(part: str) -> bool:
    """Pydantic puts validator and union-member names into error locations; they are not fields."""
    return part in _TYPE_TAGS or part.startswith(("function-", "literal[", "nullable[", "union["))


def _problems_from_validation(exc: ValidationError, path: str, lines: dict[str, int]) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error.get("loc") or ())
        # BeforeValidator/Literal unions nest the type name in loc; keep only real field parts.
        loc = loc[:1] + tuple(
            part for part in loc[1:] if isinstance(part, int) or not _is_type_tag(str(part))
        )
        name = _field_path(loc)
        top = str(loc[0]) if loc else None
        message = str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        kind = error.get("type", "")
        if kind == "missing":
            text = f"{name} is required" + (f": {_FIELD_HINTS[name]}" if name in _FIELD_HINTS else "")
        elif not loc:
            text = message
            top = "resolved" if "resolved" in message else ("detected" if "detected" in message else None)
        else:
            text = f"{name}: {message}"
            if "input" in error and kind not in ("value_error",):
                text += f" (got {_short(error['input'])})"
            if top in _FIELD_HINTS and kind != "missing" and _FIELD_HINTS[top] not in text:
                text += f"; {_FIELD_HINTS[top]}"
        line = lines.get(top) if top else None
        problems.append(Problem(path, " ".join(text.split()), line or None, "invalid", name or top))
    # A union of date/datetime reports the same field twice; keep the first of each.
    seen: set[tuple[str | None, str]] = set()
    unique = []
    for problem in problems:
        key = (problem.field, problem.message)
        if key not in seen:
            seen.add(key)
            unique.append(problem)
    return unique


# -- the entry points ---------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is fine) or a clear refusal; newlines normalised to ``\\n``."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableInput("file is UTF-16 encoded; save it as UTF-8")
    if b"\x00" in data:
        raise UnreadableInput("binary file (contains NUL bytes); agentpm reads UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UnreadableInput(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8", line
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


#: Fields a record may carry beyond the schema's own (DESIGN §8 provenance, and the
#: markers agentpm's own tools write); they are not typos of anything.
PROVENANCE_FIELDS = (
    "source",
    "source_kind",
    "rationale",
    "split",
    "licence",
    "license",
    "attribution",
    "imported_at",
    "label_source",
    "labelled_by",
    "labelled_at",
    "date_estimated",
    "year",
    "date_as_given",
    "severity_as_given",
)
#: Attempts at dropping broken fields before an incident is given up: each round drops every
#: field the schema named, so a handful is plenty.
_REPAIR_ROUNDS = 6


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    """Every field name agentpm reads or writes: built once, asked once per file."""
    return frozenset(Incident.model_fields) | frozenset(SECTION_FIELD_ALIASES) | frozenset(PROVENANCE_FIELDS)


def _build(raw: Any, lines: dict[str, int], path: Path, fmt: str) -> tuple[Incident, list[Problem]]:
    """The incident and the problems of its fields: a broken field is dropped and reported, the
    rest of the record is kept. Only an unusable title (or no mapping at all) loses the incident."""
    if raw is None:
        raise _Invalid("no fields: an incident needs at least a title", 1)
    if not isinstance(raw, dict):
        kind = {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}.get(
            type(raw), f"a {type(raw).__name__}"
        )
        what = "front matter" if fmt == "markdown" else "the top level"
        raise _Invalid(f"{what} must be a mapping of fields (key: value), not {kind}", 1)
    bad_keys = [key for key in raw if not isinstance(key, str)]
    if bad_keys:
        raise _Invalid(
            f"field names must be text, got {_short(bad_keys[0])}; quote the key", lines.get(str(bad_keys[0]))
        )
    shown = str(path)
    data, warnings = loosen(raw, known_fields())
    problems = [
        Problem(shown, f"warning: {message}", lines.get(_top_field(field)), "warning", field, code)
        for field, message, code in warnings
    ]
    for _ in range(_REPAIR_ROUNDS):
        try:
            incident = Incident.model_validate(data)
        except ValidationError as exc:
            found = _problems_from_validation(exc, shown, lines)
            broken = {_top_field(problem.field) for problem in found}
            if not broken or "title" in broken or None in broken:
                raise _FieldsInvalid(found) from None
            problems += [
                Problem(
                    p.path,
                    f"{p.message} (field left out; the rest of the incident is kept)",
                    p.line,
                    p.kind,
                    p.field,
                )
                for p in found
            ]
            data = _without(data, found)
            continue
        problems += [
            Problem(
                shown,
                message,
                lines.get(field),
                "invalid" if code == "time-order" else "warning",
                field,
                code,
            )
            for field, message, code in incident.warnings
        ]
        return incident, problems
    raise _FieldsInvalid(
        problems or [Problem(shown, "too many broken fields to read this incident", 1, "invalid")]
    )


def _top_field(name: str | None) -> str | None:
    return name.split("[")[0].split(".")[0] if name else None


def _without(data: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """The record without the fields (or the action items) the schema refused."""
    kept = dict(data)
    bad_items: set[int] = set()
    for problem in problems:
        field = problem.field or ""
        top = _top_field(field)
        if top == "action_items" and field.startswith("action_items[") and isinstance(kept.get(top), list):
            bad_items.add(int(field[len("action_items[") : field.index("]")]))
        elif top:
            kept.pop(top, None)
    if bad_items:
        kept["action_items"] = [
            item for index, item in enumerate(kept["action_items"]) if index not in bad_items
        ]
    return kept


class _FieldsInvalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("invalid fields")
        self.problems = problems


def parse_text(text: str, path: Path | str) -> ParseResult:
    """Parse already-decoded text; the file name decides the format."""
    path = Path(path)
    shown = str(path)
    suffix = path.suffix.lower()
    lines: dict[str, int] = {}
    try:
        body, body_start = "", 1
        if suffix in YAML_SUFFIXES or suffix in JSON_SUFFIXES:
            fmt = "yaml" if suffix in YAML_SUFFIXES else "json"
            if not text.strip():
                raise _Invalid("empty file: an incident needs at least a title")
            raw, lines = load_yaml(text) if fmt == "yaml" else load_json(text)
        elif suffix in MARKDOWN_SUFFIXES:
            if not text.strip():
                raise _Invalid("empty file: an incident needs at least a title")
            front, body, body_start = split_front_matter(text)
            if front is not None:
                fmt = "markdown"
                raw, lines = load_yaml(front, line_offset=1)
                if raw is None:
                    raw = {}
            else:
                fmt = "markdown-plain"
                raw, lines, body = _plain_markdown(text, path)
        else:
            raise UnreadableInput(
                f"unsupported file type {suffix or '(none)'!r}; agentpm reads {', '.join(SUFFIXES)}"
            )
        incident, field_problems = _build(raw, lines, path, fmt)
    except UnreadableInput as exc:
        return ParseResult(None, [Problem(shown, str(exc), exc.line, "unreadable")])
    except _Invalid as exc:
        return ParseResult(None, [Problem(shown, str(exc), exc.line, "invalid", exc.field)])
    except _FieldsInvalid as exc:
        return ParseResult(None, exc.problems)
    incident._path = path
    incident._format = fmt
    incident._lines = {key: value for key, value in lines.items() if value}
    if body:
        incident._body = body
        incident._body_sections, incident._body_lines = split_sections(body, body_start, incident.title)
    return ParseResult(incident, field_problems)


def parse_bytes(data: bytes, path: Path | str) -> ParseResult:
    """Parse a file's bytes; never raises for bad content."""
    try:
        text = decode_text(data)
    except UnreadableInput as exc:
        return ParseResult(None, [Problem(str(path), str(exc), exc.line, "unreadable")])
    return parse_text(text, path)


def read_limited(path: Path | str) -> bytes:
    """The file's bytes: regular files only, at most MAX_FILE_BYTES read (see read_regular_file)."""
    return read_regular_file(path, MAX_FILE_BYTES)


def parse_file(path: Path | str, data: bytes | None = None) -> ParseResult:
    """Read and parse one incident file; whatever goes wrong becomes this file's problem.

    ``data``: the file's bytes when the caller has read them already (they are not read again).
    """
    path = Path(path)
    try:
        return parse_bytes(read_limited(path) if data is None else data, path)
    except UnreadableInput as exc:
        return ParseResult(None, [Problem(str(path), str(exc), exc.line, "unreadable")])
    except RecursionError:
        return ParseResult(
            None, [Problem(str(path), "nested too deeply to be an incident record", None, "unreadable")]
        )
    except Exception as exc:  # noqa: BLE001 - one file must never stop a run
        return ParseResult(None, [failed_on_file(path, exc)])


def failed_on_file(path: Path | str, exc: BaseException) -> Problem:
    """The problem for an error agentpm did not foresee on one file: the run goes on without it."""
    detail = " ".join(str(exc).split())[:200]
    return Problem(
        str(path),
        f"agentpm could not process this file ({type(exc).__name__}: {detail}); the other files were "
        "processed; please report this file",
        None,
        "unreadable",
    )


__all__ = [
    "Problem",
    "ParseResult",
    "parse_file",
    "parse_bytes",
    "parse_text",
    "load_yaml",
    "split_sections",
    "canonical_section",
    "MAX_FILE_BYTES",
    "SUFFIXES",
    "parse_when",
]

"""Write label fields into incident files, changing no other byte.

Rules (the same as :mod:`agentpm.records.store` for ``prediction``):

- The edit is textual, never a re-serialisation: comments, key order, quoting, blank lines,
  line endings and a BOM stay as they were. Only the named top-level keys are added (at the
  end of the front matter / mapping / object) or replaced (the key's line and, for a block
  value, its continuation lines).
- Scalars are written plain when YAML would read them back as the same string, else as
  JSON strings (valid YAML too); lists as flow lists ``[a, b]`` in YAML and arrays in JSON.
- The result is parsed again before it replaces the file: the set fields must read back as
  written and every other field and the body must read exactly as before, else the file is
  left alone. The write goes through :func:`atomic_write` with the fingerprint taken when
  the file was read, so a concurrent edit is never overwritten.
- Every write returns a :class:`LabelEdit` holding the previous bytes, so a caller can undo
  it exactly with :func:`undo_edit`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentpm.errors import WriteError
from agentpm.records.incident import Incident
from agentpm.records.parsing import (
    JSON_SUFFIXES,
    MARKDOWN_SUFFIXES,
    MAX_FILE_BYTES,
    YAML_SUFFIXES,
    parse_text,
)
from agentpm.records.store import json_members
from agentpm.records.writing import atomic_write, fingerprint
from agentpm.safeload import UnreadableInput, read_regular_file

# Plain YAML scalars that read back as the same string: start with a letter, then letters,
# digits and a few safe punctuation marks. Words YAML 1.1 reads as booleans or null are quoted.
_PLAIN_SAFE = re.compile(r"[A-Za-z][A-Za-z0-9_.@/-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class LabelEdit:
    """One write: the file, its bytes before, and its fingerprint after (for an exact undo)."""

    path: Path
    before: bytes
    after: tuple[int, int, str] | None


class FrontMatterMissing(WriteError):
    """A plain Markdown file has no front matter to hold the fields."""


def yaml_scalar(value: Any) -> str:
    """A YAML scalar (or flow list) that reads back as ``value``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_scalar(item) for item in value) + "]"
    if isinstance(value, str) and _PLAIN_SAFE.fullmatch(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n" if "\n" in text else "\r" if "\r" in text else "\n"


def _key_pattern(key: str) -> re.Pattern[str]:
    # The key as people write it at the top level: bare, or in double or single quotes.
    name = re.escape(key)
    return re.compile(rf"""^(?:{name}|"{name}"|'{name}')[ \t]*:(?:[ \t]|$)""")


def _value_ends(lines: list[str], index: int, end: int, inline: str) -> int:
    """Index after the last line of the value that starts on lines[index]."""
    stop = index + 1
    if inline and inline[0] not in "|>":
        return stop
    # A block scalar (| or >) and a block mapping or list run on over the lines below.
    # Indented lines belong to it, and so do "- item" lines at column 0 (a block list may
    # sit at the key's own indent). Comment lines are the user's and stay.
    while stop < end:
        line = lines[stop]
        indented = line[:1] in (" ", "\t") and not line.lstrip().startswith("#")
        dash_item = line.startswith("- ") or line.rstrip("\r\n") == "-"
        if not (indented or dash_item):
            break
        stop += 1
    return stop


def _set_yaml_key(lines: list[str], start: int, end: int, newline: str, key: str, value: Any) -> list[str]:
    """lines with the top-level ``key`` in lines[start:end] set to ``value`` (replaced or appended)."""
    entry = f"{yaml_scalar(key)}: {yaml_scalar(value)}{newline}"
    pattern = _key_pattern(key)
    for index in range(start, end):
        found = pattern.match(lines[index])
        if found:
            inline = lines[index][found.end() :].split("#", 1)[0].strip()
            # The key stays spelled as the user wrote it ('category', "category").
            written_key = lines[index][: lines[index].index(":", len(key))].rstrip()
            replaced = f"{written_key}: {yaml_scalar(value)}{newline}"
            return lines[:index] + [replaced] + lines[_value_ends(lines, index, end, inline) :]
    if end > start and not lines[end - 1].endswith(("\n", "\r")):
        lines = lines[: end - 1] + [lines[end - 1] + newline] + lines[end:]
    return lines[:end] + [entry] + lines[end:]


def _set_yaml_keys(lines: list[str], start: int, end: int, newline: str, fields: Mapping[str, Any]) -> str:
    for key, value in fields.items():
        before = len(lines)
        lines = _set_yaml_key(lines, start, end, newline, key, value)
        end += len(lines) - before
    return "".join(lines)


def _set_json_key(text: str, key: str, value: Any) -> str:
    start, members = json_members(text)
    encoded = json.dumps(value, ensure_ascii=False)
    for name, _, value_start, value_end in members:
        if name == key:
            return text[:value_start] + encoded + text[value_end:]
    member = f"{json.dumps(key, ensure_ascii=False)}: {encoded}"
    if not members:
        return text[: start + 1] + member + text[start + 1 :]
    _, last_key_start, _, last_end = members[-1]
    # A new member goes on its own line with the last member's indent when the object is
    # written one member per line; on the same line otherwise.
    line_start = text.rfind("\n", 0, last_key_start) + 1
    indent = text[line_start:last_key_start]
    separator = _newline_of(text) + indent if indent.strip() == "" and line_start > start else " "
    return text[:last_end] + "," + separator + member + text[last_end:]


def with_fields(raw: str, path: Path, fields: Mapping[str, Any]) -> str:
    """The file's text with the top-level ``fields`` set; every other byte as it was."""
    suffix = path.suffix.lower()
    bom = "\ufeff" if raw.startswith("\ufeff") else ""
    text = raw[len(bom) :]
    newline = _newline_of(text)
    if suffix in JSON_SUFFIXES:
        for key, value in fields.items():
            text = _set_json_key(text, key, value)
        return bom + text
    lines = text.splitlines(keepends=True)
    if suffix in YAML_SUFFIXES:
        # A document end marker ("...") closes the mapping: new keys go before it.
        end = next((i for i, line in enumerate(lines) if line.rstrip() == "..."), len(lines))
        return bom + _set_yaml_keys(lines, 0, end, newline, fields)
    if suffix in MARKDOWN_SUFFIXES:
        if not lines or lines[0].rstrip() != "---":
            raise FrontMatterMissing(
                f"{path}: plain Markdown without front matter has nowhere to store labels; "
                "add a front matter block (--- title: ... ---), or pass --add-front-matter"
            )
        for index in range(1, len(lines)):
            if lines[index].rstrip() in ("---", "..."):
                return bom + _set_yaml_keys(lines, 1, index, newline, fields)
    raise WriteError(f"{path}: cannot store labels in this file type ({suffix or 'no suffix'})")


def with_front_matter(raw: str, fields: Mapping[str, Any]) -> str:
    """Plain Markdown with a front matter block holding ``fields`` put before its first byte."""
    bom = "\ufeff" if raw.startswith("\ufeff") else ""
    text = raw[len(bom) :]
    newline = _newline_of(text)
    block = "".join(f"{yaml_scalar(key)}: {yaml_scalar(value)}{newline}" for key, value in fields.items())
    return f"{bom}---{newline}{block}---{newline}{text}"


def _parsed(text: str, path: Path, edited: bool = False) -> Incident:
    result = parse_text(text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"), path)
    if result.incident is None:
        reason = "; ".join(str(problem) for problem in result.problems) or "it does not parse"
        if edited:
            raise WriteError(
                f"{path}: with the labels written it would not parse ({reason}); file left unchanged "
                "(set the label fields by hand)"
            )
        raise WriteError(f"{path}: is not a valid incident ({reason}); fix it before labelling it")
    return result.incident


def _check_reads_back(before: Incident, updated: str, path: Path, fields: Mapping[str, Any]) -> None:
    after = _parsed(updated, path, edited=True)
    dumped = after.model_dump(mode="json")
    wrong = [key for key, value in fields.items() if dumped.get(key) != json.loads(json.dumps(value))]
    unchanged = before.model_dump(mode="json", exclude=set(fields)) == after.model_dump(
        mode="json", exclude=set(fields)
    )
    # A plain Markdown file that gains front matter reads its body differently (the title
    # line is no longer metadata), so only a file that already had a place for fields must
    # keep its body exactly.
    same_body = before.source_format != after.source_format or before.body == after.body
    if wrong or not unchanged or not same_body:
        what = ", ".join(wrong) if wrong else "other fields"
        raise WriteError(
            f"{path}:{what}: writing the labels would change how the file reads; file left unchanged "
            "(edit the label fields by hand)"
        )


def _read(path: Path) -> tuple[bytes, str]:
    try:
        data = read_regular_file(path, MAX_FILE_BYTES)
        return data, data.decode("utf-8")
    except (UnreadableInput, UnicodeDecodeError) as exc:
        raise WriteError(f"{path}: cannot read it to store labels ({exc})") from None


Change = Callable[[str, Incident], tuple[str, Mapping[str, Any]]]


def _edit(path: Path, change: Change) -> LabelEdit:
    """Read, change, verify, write; once more if another writer got in between.

    ``change`` gets the text and its parsed incident and returns the new text and the fields
    that must read back from it."""
    for attempt in (1, 2):
        before_bytes, raw = _read(path)
        seen = fingerprint(path)
        before = _parsed(raw, path)
        updated, expected_fields = change(raw, before)
        if updated == raw:
            # Nothing to change: no write, so the file's time stamp and fingerprint stay.
            return LabelEdit(path, before_bytes, seen)
        _check_reads_back(before, updated, path, expected_fields)
        try:
            atomic_write(path, updated.encode("utf-8"), expected=seen)
            return LabelEdit(path, before_bytes, fingerprint(path))
        except WriteError as exc:
            if attempt == 2 or "changed while" not in str(exc):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def set_fields(path: Path | str, fields: Mapping[str, Any]) -> LabelEdit:
    """Add or replace top-level ``fields`` in an incident file (front matter for Markdown).

    Raises :class:`FrontMatterMissing` for plain Markdown and :class:`WriteError` when the
    edit cannot be made safely; the file is then unchanged.
    """
    path = Path(path)
    return _edit(path, lambda raw, _: (with_fields(raw, path, fields), fields))


def plain_markdown_fields(incident: Incident) -> dict[str, Any]:
    """What a plain Markdown file's title line, ``Key: value`` lines and file name gave it,
    written out so a new front matter block keeps them (front matter replaces those sources)."""
    dumped = incident.model_dump(mode="json")
    given = incident.model_fields_set
    # In the schema's order, so the block reads like a hand-written one (title first).
    return {
        key: dumped[key]
        for key in type(incident).model_fields
        if key in given and dumped.get(key) not in (None, [])
    }


def add_front_matter(path: Path | str, fields: Mapping[str, Any]) -> LabelEdit:
    """Give a plain Markdown file a front matter block with ``fields`` (plus what its title
    line and file name already said); the rest of the file stays byte for byte. A file that
    already has front matter just gets ``fields`` set."""
    path = Path(path)
    if path.suffix.lower() not in MARKDOWN_SUFFIXES:
        raise WriteError(f"{path}: only Markdown files get a front matter block")

    def change(raw: str, before: Incident) -> tuple[str, Mapping[str, Any]]:
        if before.source_format != "markdown-plain":
            return with_fields(raw, path, fields), fields
        carried = {**plain_markdown_fields(before), **fields}
        return with_front_matter(raw, carried), carried

    return _edit(path, change)


def undo_edit(edit: LabelEdit) -> None:
    """Put back the exact bytes a :class:`LabelEdit` replaced, unless the file changed since."""
    atomic_write(edit.path, edit.before, expected=edit.after)

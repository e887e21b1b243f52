"""Store a model prediction in an incident file, changing nothing else in it.

The edit is textual, not a re-serialisation: comments, key order, quoting, blank lines and
line endings all stay as they were. Only the top-level ``prediction`` entry is added or
replaced. The result is re-parsed before it replaces the file, and written atomically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agentpm.errors import WriteError
from agentpm.records.parsing import MARKDOWN_SUFFIXES, MAX_FILE_BYTES, YAML_SUFFIXES, parse_text
from agentpm.records.writing import atomic_write, fingerprint
from agentpm.safeload import UnreadableInput, read_regular_file

# The key as people write it: bare, or quoted ("prediction": / 'prediction':).
_TOP_KEY = re.compile(r"""^(?:prediction|"prediction"|'prediction')[ \t]*:""")
_SPACE = re.compile(r"\s*")


def _yaml_value(record: dict[str, Any]) -> str:
    # A one-line flow mapping with JSON scalars is valid YAML and easy to replace later.
    return "{" + ", ".join(f"{key}: {json.dumps(value)}" for key, value in record.items()) + "}"


def _replace_yaml_entry(lines: list[str], start: int, end: int, newline: str, entry: str) -> list[str]:
    """Replace (or insert) the top-level ``prediction:`` block in lines[start:end]."""
    for index in range(start, end):
        found = _TOP_KEY.match(lines[index])
        if found:
            stop = index + 1
            inline = lines[index][found.end() :].split("#", 1)[0].strip()
            if not inline:
                # A block mapping written by hand continues over its indented lines; comment
                # lines are the user's and stay where they are.
                while (
                    stop < end and lines[stop][:1] in (" ", "\t") and not lines[stop].lstrip().startswith("#")
                ):
                    stop += 1
            return lines[:index] + [entry + newline] + lines[stop:]
    insert_at = end
    if insert_at > start and not lines[insert_at - 1].endswith(("\n", "\r")):
        lines = lines[: insert_at - 1] + [lines[insert_at - 1] + newline] + lines[insert_at:]
    return lines[:insert_at] + [entry + newline] + lines[insert_at:]


def json_members(text: str) -> tuple[int, list[tuple[str, int, int, int]]]:
    """Position of the top-level ``{`` and its members as (key, key start, value start, value end)."""
    decoder = json.JSONDecoder()
    start = text.index("{")
    position = start + 1
    members = []
    while True:
        position = _SPACE.match(text, position).end()
        if text[position] == "}":
            return start, members
        key, key_end = decoder.raw_decode(text, position)
        key_start = position
        colon = text.index(":", key_end)
        value_start = _SPACE.match(text, colon + 1).end()
        _, value_end = decoder.raw_decode(text, value_start)
        members.append((key, key_start, value_start, value_end))
        position = _SPACE.match(text, value_end).end()
        if text[position] == ",":
            position += 1


def _json_with_prediction(text: str, record: dict[str, Any]) -> str:
    start, members = json_members(text)
    value = json.dumps(record, ensure_ascii=False)
    for key, _, value_start, value_end in members:
        if key == "prediction":
            return text[:value_start] + value + text[value_end:]
    if not members:
        return text[: start + 1] + f'"prediction": {value}' + text[start + 1 :]
    _, last_key_start, _, last_end = members[-1]
    line_start = text.rfind("\n", 0, last_key_start) + 1
    indent = text[line_start:last_key_start]
    separator = ("\n" + indent) if indent.strip() == "" and line_start > start else " "
    newline_style = "\r\n" if "\r\n" in text else "\n"
    if separator.startswith("\n"):
        separator = newline_style + indent
    return text[:last_end] + "," + separator + f'"prediction": {value}' + text[last_end:]


def with_prediction(raw: str, path: Path, record: dict[str, Any]) -> str:
    """The file's text with ``prediction`` set to ``record``; everything else byte-identical."""
    suffix = path.suffix.lower()
    bom = "\ufeff" if raw.startswith("\ufeff") else ""
    text = raw[len(bom) :]
    newline = "\r\n" if "\r\n" in text else "\n" if "\n" in text else "\r" if "\r" in text else "\n"
    entry = "prediction: " + _yaml_value(record)
    if suffix in (".json",):
        return bom + _json_with_prediction(text, record)
    lines = text.splitlines(keepends=True)
    if suffix in YAML_SUFFIXES:
        # A document end marker ("...") closes the mapping: the entry goes before it.
        end = next(
            (index for index, line in enumerate(lines) if line.rstrip("\r\n").rstrip() == "..."), len(lines)
        )
        return bom + "".join(_replace_yaml_entry(lines, 0, end, newline, entry))
    if suffix in MARKDOWN_SUFFIXES:
        if not lines or lines[0].rstrip("\r\n").rstrip() != "---":
            raise WriteError(
                f"{path}: plain Markdown has no front matter to store a prediction in; add a front "
                "matter block (--- title: ... ---) to store predictions, or use --format json"
            )
        for index in range(1, len(lines)):
            if lines[index].rstrip("\r\n").rstrip() in ("---", "..."):
                return bom + "".join(_replace_yaml_entry(lines, 1, index, newline, entry))
    raise WriteError(f"{path}: cannot store a prediction in this file")


def store_prediction(path: Path, record: dict[str, Any], expected_title: str | None = None) -> None:
    """Write ``record`` as the file's ``prediction``; refuse if the result would not parse the same.

    If another process changes the file between the read and the write, the edit is made
    again on the new content once; if it changes again, the file is left to the other writer.
    """
    path = Path(path)
    for attempt in (1, 2):
        try:
            raw_bytes = read_regular_file(path, MAX_FILE_BYTES)
            raw = raw_bytes.decode("utf-8")
        except (UnreadableInput, UnicodeDecodeError) as exc:
            raise WriteError(f"{path}: cannot read it back to store the prediction ({exc})") from None
        seen = fingerprint(path)
        updated = _updated_text(path, raw, record, expected_title)
        try:
            atomic_write(path, updated.encode("utf-8"), expected=seen)
            return
        except WriteError as exc:
            if attempt == 2 or "changed while" not in str(exc):
                raise


def _updated_text(path: Path, raw: str, record: dict[str, Any], expected_title: str | None) -> str:
    try:
        updated = with_prediction(raw, path, record)
    except (ValueError, IndexError) as exc:
        raise WriteError(
            f"{path}: could not find where to put the prediction ({exc}); file left unchanged"
        ) from None
    check = parse_text(updated.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"), path)
    stored = check.incident.prediction if check.incident else None
    if (
        check.incident is None
        or stored is None
        or stored.category != record.get("category")
        or (expected_title is not None and check.incident.title != expected_title)
    ):
        reason = "; ".join(str(problem) for problem in check.problems) or "the prediction did not read back"
        raise WriteError(
            f"{path}: storing the prediction would change how the file reads ({reason}); file left unchanged"
        )
    return updated

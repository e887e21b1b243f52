"""A fast reader for the plain YAML that front matter is almost always written in.

Block mappings and sequences of one-line scalars (plus folded plain continuation lines) are
read here straight from the lines, with PyYAML's own YAML 1.1 scalar rules (the same
resolver patterns and constructors as the safe loader agentpm uses). Anything else (flow
collections, anchors, tags, comments, block scalars, escapes, tabs, odd characters) makes
:func:`load_plain` return None and the caller uses PyYAML: this reader never guesses. A
property test holds its results equal to PyYAML's wherever it gives one.

Why: at 100,000 files, composing nodes through libyaml and resolving each scalar through a
Python callback was a quarter of a cold `trends` run; this is several times faster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import yaml

_SCALARS = yaml.constructor.SafeConstructor()


def _integer(value: str) -> int:
    return _SCALARS.construct_yaml_int(yaml.ScalarNode("tag:yaml.org,2002:int", value))


def _floating(value: str) -> float:
    return _SCALARS.construct_yaml_float(yaml.ScalarNode("tag:yaml.org,2002:float", value))


def _boolean(value: str) -> bool:
    return _SCALARS.construct_yaml_bool(yaml.ScalarNode("tag:yaml.org,2002:bool", value))


_CONVERT: dict[str, Callable[[str], Any]] = {
    "tag:yaml.org,2002:int": _integer,
    "tag:yaml.org,2002:float": _floating,
    "tag:yaml.org,2002:bool": _boolean,
    "tag:yaml.org,2002:null": lambda value: None,
}
#: PyYAML's implicit resolvers for plain scalars, without timestamps (agentpm reads dates as
#: text and checks them itself), keyed by first character as PyYAML keys them; None for the
#: tags this reader leaves to PyYAML.
_RESOLVERS: dict[str, list[tuple[Callable[[str], Any] | None, re.Pattern[str]]]] = {
    first: [(_CONVERT.get(tag), pattern) for tag, pattern in resolvers if not tag.endswith(":timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    if first is not None
}

#: Characters PyYAML reads differently from plain text here (line breaks other than \n,
#: tabs, a byte-order mark, non-printables): their presence sends the document to PyYAML.
# Written as the characters it finds, not as the complement of those it allows: a class of
# the complement spans the astral planes and took 6 ms to compile at every start.
_UNUSUAL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*))?$")
#: A plain scalar must not start with an indicator, nor hold ': ' or ' #', nor end in ':'.
_PLAIN_START = frozenset("-?:,[]{}#&*!|>'\"%@`")


#: Double-quoted text whose escapes YAML and JSON read alike (JSON would join surrogate halves).
_DOUBLE_QUOTED = re.compile(r'(?:[^"\\]|\\(?:["\\/nt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4}))*')


#: Keys already seen to read as text: the same few dozen recur in every file.
_TEXT_KEYS: set[str] = set()


class _NotPlain(Exception):
    """The text uses YAML this reader leaves to PyYAML."""


def load_plain(text: str, line_offset: int = 0) -> tuple[dict[str, Any], dict[str, int]] | None:
    """(data, 1-based line of each top-level key) for plain block YAML, or None to use PyYAML."""
    if _UNUSUAL.search(text):
        return None
    lines = text.split("\n")
    try:
        reader = _Reader(lines)
        data, key_lines = reader.mapping(0, top=True)
        if reader.position != len(reader.lines) or not key_lines:
            return None  # an empty document is None to PyYAML, not {}
    except (_NotPlain, RecursionError, ValueError, OverflowError):
        return None
    return data, {key: line + 1 + line_offset for key, line in key_lines.items()}


def _scalar(text: str) -> Any:
    """One scalar written on a single line: quoted (always a string) or plain (resolved)."""
    first = text[0]
    if first == "'":
        if len(text) < 2 or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
            raise _NotPlain
        return text[1:-1].replace("''", "'")
    if first == '"':
        if len(text) < 2 or text[-1] != '"':
            raise _NotPlain
        inner = text[1:-1]
        if "\\" not in inner and '"' not in inner:
            return inner
        if not _DOUBLE_QUOTED.fullmatch(inner):
            raise _NotPlain
        return json.loads(text)
    _check_plain(text, start=True)
    return _resolve(text)


def _flow_sequence(text: str) -> list[Any]:
    """``[a, 'b', "c d"]`` on one line, without nesting, escapes or comments."""
    if text[-1] != "]":
        raise _NotPlain
    inner, items, position = text[1:-1], [], 0
    while True:
        while position < len(inner) and inner[position] == " ":
            position += 1
        if position == len(inner):
            if items:
                raise _NotPlain  # "[a, ]": a trailing comma, left to PyYAML
            return items
        quote = inner[position]
        if quote in "'\"":
            end = position + 1
            while True:
                end = inner.find(quote, end)
                if end < 0:
                    raise _NotPlain
                if quote == "'" and inner.startswith("''", end):
                    end += 2
                    continue
                break
            items.append(_scalar(inner[position : end + 1]))
            position = end + 1
            while position < len(inner) and inner[position] == " ":
                position += 1
        else:
            end = inner.find(",", position)
            end = len(inner) if end < 0 else end
            plain = inner[position:end].rstrip(" ")
            if not plain or plain[0] in _PLAIN_START or any(mark in plain for mark in "[]{}#:'\""):
                raise _NotPlain
            items.append(_resolve(plain))
            position = end
        if position == len(inner):
            return items
        if inner[position] != ",":
            raise _NotPlain
        position += 1


def _check_plain(text: str, start: bool) -> None:
    if (start and text[0] in _PLAIN_START) or ": " in text or " #" in text or text.endswith(":"):
        raise _NotPlain


def _resolve(text: str) -> Any:
    for convert, pattern in _RESOLVERS.get(text[0], ()):
        if pattern.match(text):
            if convert is None:  # '=' and '<<' (value and merge keys): PyYAML's business
                raise _NotPlain
            return convert(text)
    return text


class _Reader:
    """Reads block nodes line by line; ``depth[i]`` is line i's indentation, -1 when blank."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.depth = [len(line) - len(line.lstrip(" ")) if line.strip(" ") else -1 for line in lines]
        self.end = len(lines)
        self.position = 0
        self._skip_blank()

    def _skip_blank(self) -> None:
        depth, position = self.depth, self.position
        while position < self.end and depth[position] < 0:
            position += 1
        self.position = position

    def _next_indent(self) -> int:
        """Indentation of the current line (blank lines already skipped), -1 at the end."""
        return self.depth[self.position] if self.position < self.end else -1

    def mapping(self, indent: int, top: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
        """A block mapping whose keys sit at ``indent``, starting at the current line."""
        built: dict[str, Any] = {}
        key_lines: dict[str, int] = {}
        while self.position < self.end and self.depth[self.position] == indent:
            line = self.lines[self.position]
            match = _KEY.match(line, indent)
            if match is None:
                if top or not line.startswith("- ", indent):
                    raise _NotPlain
                break  # a sequence at the key's own indentation: the caller decides
            key = match.group(1)
            if key not in _TEXT_KEYS:
                if _resolve(key) is not key:  # yes:, null:, 123: are not string keys
                    raise _NotPlain
                if len(_TEXT_KEYS) < 4096:
                    _TEXT_KEYS.add(key)
            key_lines.setdefault(key, self.position)
            built[key] = self.value(match.group(2), indent)
        if self._next_indent() > indent:
            raise _NotPlain
        return built, key_lines

    def value(self, rest: str | None, indent: int) -> Any:
        """The value after ``key:`` (or ``- ``) of a node at ``indent``; moves past it."""
        self.position += 1
        rest = (rest or "").rstrip(" ")
        if rest:
            if rest[0] == "[" or rest == "{}":
                found: Any = _flow_sequence(rest) if rest[0] == "[" else {}
                self._skip_blank()
                if self._next_indent() > indent:
                    raise _NotPlain  # a flow collection over several lines
                return found
            if rest in ("|", "|-"):
                found = self._literal(indent, rest == "|")
            elif self.position < self.end and self.depth[self.position] <= indent:
                found = _scalar(rest)  # the common case: a one-line scalar, the next key below
            else:
                found = self._folded(rest, indent)
            if self.position < self.end and self.depth[self.position] < 0:
                self._skip_blank()
            return found
        self._skip_blank()
        below = self._next_indent()
        if below < indent:
            return None
        line = self.lines[self.position]
        if line[below:] == "-":
            raise _NotPlain  # an empty entry
        if line.startswith("- ", below):
            return self.sequence(below)
        if below == indent:
            return None
        return self.mapping(below)[0]

    def _folded(self, first: str, indent: int) -> Any:
        """A scalar that starts on the current line; plain ones may go on over deeper lines."""
        parts = [first]
        while self.position < self.end:
            depth = self.depth[self.position]
            if depth < 0:
                # A blank line inside a plain scalar becomes a line break: left to PyYAML.
                ahead = self.position
                while ahead < self.end and self.depth[ahead] < 0:
                    ahead += 1
                if ahead < self.end and self.depth[ahead] > indent:
                    raise _NotPlain
                break
            if depth <= indent:
                break
            if first[0] in "'\"":
                raise _NotPlain  # a quoted scalar over several lines
            stripped = self.lines[self.position].strip(" ")
            _check_plain(stripped, start=False)
            if stripped.startswith("#"):
                raise _NotPlain
            parts.append(stripped)
            self.position += 1
        if len(parts) == 1:
            return _scalar(first)
        _check_plain(first, start=True)
        return _resolve(" ".join(parts))

    def _literal(self, indent: int, final_newline: bool) -> str:
        """A ``|`` (or ``|-``) block: its lines as written, less the block's indentation."""
        if self.position < self.end and self.depth[self.position] < 0:
            raise _NotPlain  # blank lines before the text set the indentation: PyYAML's rules
        block = self._next_indent()
        if block <= indent:
            raise _NotPlain
        kept: list[str] = []
        while self.position < self.end:
            line = self.lines[self.position]
            depth = self.depth[self.position]
            if depth < 0 and line:
                raise _NotPlain  # a line of a few spaces: content or break, by PyYAML's count
            if 0 <= depth < block:
                break
            kept.append(line[block:])
            self.position += 1
        while kept and not kept[-1]:
            kept.pop()
            self.position -= 1
        # clip keeps one final line break, if the text had one after its last line
        broken = self.position < self.end
        return "\n".join(kept) + ("\n" if final_newline and broken else "")

    def sequence(self, indent: int) -> list[Any]:
        """A block sequence whose dashes sit at ``indent``."""
        built: list[Any] = []
        while self.position < self.end and self.depth[self.position] == indent:
            line = self.lines[self.position]
            if not line.startswith("- ", indent):
                break
            item = line[indent + 2 :]
            inner = indent + 2 + len(item) - len(item.lstrip(" "))
            item = item.lstrip(" ")
            if not item or item.startswith("- ") or item == "-":
                raise _NotPlain
            match = _KEY.match(item)
            if match is None:
                built.append(self.value(item, indent))
                continue
            # "- key: value" opens a mapping whose keys line up with this first key.
            self.lines[self.position] = " " * inner + item
            self.depth[self.position] = inner
            built.append(self.mapping(inner)[0])
        return built

"""What the classifier reads from an incident: two text channels, normalised.

* ``cause``: title, summary, root cause, contributing factors, fix, prevention and free
  prose: where a post-mortem says *why*. It carries the most weight.
* ``context``: impact, detection, timeline, lessons, action items, systems and tools, other
  sections, and code blocks (logs, stack traces): useful evidence, weighted lower.

Labelling metadata (``category``, ``secondary``, ``labelling_note``, ``prediction``) is
never a feature. Volatile tokens (UUIDs, hex ids, URLs, e-mails, IPs, timestamps,
versions, numbers) become placeholders so the model learns patterns, not one incident's ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from agentpm.records.incident import Incident

CAUSE_SECTIONS = ("summary", "root_cause", "contributing_factors", "fix", "prevention", "preamble")
CONTEXT_SECTIONS = ("impact", "detection", "timeline", "lessons_learned", "action_items")

_FENCED = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)

_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Every other volatile token contains a digit: find such chunks once, then rewrite only them.
# A chunk is what ``\b\w*\d[\w.:+\-/%,]*`` matches (tests/test_properties.py holds that
# pattern as the reference); _digit_chunks finds the same spans three times faster.
_DIGIT = re.compile(r"\d")
_CHUNK_REST = re.compile(r"[\w.:+\-/%,]*")
# Order matters: the most specific shapes first, bare numbers last.
_IN_CHUNK = [
    (
        re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
        " idtoken ",
    ),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), " iptoken "),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b"),
        " timetoken ",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), " datetoken "),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?\b"), " timetoken "),
    (
        re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b", re.IGNORECASE),
        " hextoken ",
    ),
    (
        re.compile(r"\bv?\d+\.\d+(?:\.\d+)+(?:[-+][\w.]+)?\b|\bv\d+(?:\.\d+)?\b", re.IGNORECASE),
        " versiontoken ",
    ),
    # HTTP status codes are categories, not quantities: 429 and 503 tell different stories.
    (re.compile(r"\b([45]\d\d)\b"), r" status\1 "),
    (re.compile(r"\b\d+(?:[.,]\d+)*\b"), " numtoken "),
]


@lru_cache(maxsize=65536)
def _normalise_chunk(chunk: str) -> str:
    for pattern, replacement in _IN_CHUNK:
        chunk = pattern.sub(replacement, chunk)
    return chunk


def _digit_chunks(text: str) -> Iterator[tuple[int, int]]:
    """Spans of the chunks that may hold volatile tokens: from the start of the first word run
    with a digit to the end of the run of word and ``.:+-/%,`` characters it begins.

    Searching for digits and stepping back to the word start skips the regex engine's try at
    every position of the text, which is where the single-pattern version spent its time.
    """
    position = 0
    search, rest = _DIGIT.search, _CHUNK_REST.match
    while True:
        digit = search(text, position)
        if digit is None:
            return
        start = digit.start()
        while start > position and (text[start - 1].isalnum() or text[start - 1] == "_"):
            start -= 1
        position = rest(text, start).end()  # type: ignore[union-attr]  # a * pattern always matches
        yield start, position


def normalise(text: str) -> str:
    """Replace volatile tokens with placeholders."""
    if "://" in text or "www." in text:
        text = _URL.sub(" urltoken ", text)
    if "@" in text:
        text = _EMAIL.sub(" emailtoken ", text)
    pieces, done = [], 0
    for start, end in _digit_chunks(text):
        pieces.append(text[done:start])
        pieces.append(_normalise_chunk(text[start:end]))
        done = end
    if not done:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _split_code(text: str) -> tuple[str, str]:
    """(prose, code blocks) of a Markdown text."""
    blocks = [match.group(0) for match in _FENCED.finditer(text)]
    return (_FENCED.sub(" ", text), "\n".join(blocks)) if blocks else (text, "")


def channels(incident: Incident) -> tuple[str, str]:
    """The (cause, context) texts of an incident, normalised, in a stable order."""
    sections = incident.sections
    cause_parts = [incident.title]
    context_parts: list[str] = []
    for key in CAUSE_SECTIONS:
        if key in sections:
            prose, code = _split_code(sections[key])
            cause_parts.append(prose)
            context_parts.append(code)
    for key in CONTEXT_SECTIONS:
        if key in sections:
            context_parts.append(sections[key])
    for key, text in sections.items():
        if key not in CAUSE_SECTIONS and key not in CONTEXT_SECTIONS:
            context_parts.append(key)
            context_parts.append(text)
    if incident.impact:
        context_parts.append(incident.impact)
    context_parts.extend(item.title for item in incident.action_items)
    context_parts.extend(incident.systems)
    context_parts.extend(incident.tools)
    cause = normalise("\n".join(part for part in cause_parts if part))
    context = normalise("\n".join(part for part in context_parts if part))
    return cause, context


def prose_word_count(
    incident: Incident, texts: tuple[str, str] | None = None, channel_words: int | None = None
) -> int:
    """Words of prose beyond the title: too few, and the model should not guess.

    ``channel_words``, the whitespace-separated words of both channels, saves splitting them
    again when the caller has counted them already.
    """
    if channel_words is None:
        cause, context = texts if texts is not None else channels(incident)
        channel_words = len(cause.split()) + len(context.split())
    return max(0, channel_words - len(incident.title.split()))

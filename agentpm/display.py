"""Text from incident files made safe to show: no terminal escapes, no formulas in CSV.

A title can carry ``ESC[2J`` (clear the screen), an OSC 8 hyperlink or raw C1 bytes; shown
as they are, they act on the reader's terminal. Everything agentpm prints to a terminal, and
every Markdown report, goes through :func:`clean`. Every CSV cell goes through
:func:`csv_cell` (the OWASP rule against formula injection in spreadsheets).
"""

from __future__ import annotations

import re
from typing import Any

# ESC sequences first (CSI, OSC to BEL or ST, two-character), then any other control character:
# C0 except tab and newline, DEL, C1. Lone surrogates (undecodable file names) become U+FFFD.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]{0,64}[ -/]{0,16}[@-~]?|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)?|\x1b[@-_]?"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text: Any) -> str:
    """The text with terminal escape sequences and control characters removed."""
    value = "" if text is None else str(text)
    if not value.isprintable():
        value = _SURROGATE.sub("\ufffd", _CONTROL.sub("", _ESCAPES.sub("", value)))
    return value


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ (or tab, CR) gets a
    leading apostrophe. Numbers stay numbers."""
    if isinstance(value, str):
        value = clean(value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value

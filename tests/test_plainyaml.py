"""The fast front-matter reader gives PyYAML's result whenever it gives one."""

from __future__ import annotations

import json

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentpm.plainyaml import load_plain
from agentpm.records.parsing import decode_text
from agentpm.safeload import UnreadableInput, load_yaml


def pyyaml(text: str, line_offset: int = 0):
    try:
        return load_yaml(text, line_offset, plain_first=False)
    except UnreadableInput as exc:
        return exc


def same_as_pyyaml(text: str, line_offset: int = 0) -> bool:
    """True when the fast reader declines or agrees with PyYAML (values, types and key lines)."""
    fast = load_plain(text, line_offset)
    if fast is None:
        return True
    reference = pyyaml(text, line_offset)
    assert not isinstance(reference, Exception), (text, fast, reference)
    # repr keeps types apart (1 vs 1.0 vs True vs "1"), which == would not
    assert repr(fast) == repr(reference), text
    return False


# Scalars chosen to hit YAML 1.1's corners: numbers in every base, booleans, nulls, dates,
# sexagesimals, indicators, quotes, '#', ': ', unicode, surrogate escapes.
TRICKY = [
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "~",
    "Null",
    "NULL",
    "",
    "0",
    "-1",
    "+12",
    "012",
    "0x1F",
    "0b101",
    "1_000",
    "1:30",
    "190:20:30",
    "1.5",
    "-.5e3",
    ".inf",
    "-.Inf",
    ".NaN",
    "1e5",
    "6.8523015e+5",
    "2025-11-26",
    "2025-11-26T09:54:00+00:00",
    "2025-11-26 09:54",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "#a",
    "- a",
    "-a",
    "? a",
    "'q'",
    '"q"',
    "it's",
    'say "hi"',
    "tab\there",
    "back\\slash",
    "x:",
    "[a]",
    "{a: 1}",
    "&anchor",
    "*alias",
    "!tag",
    "|",
    ">",
    "%",
    "@",
    "`",
    "http://x.y/z?a=b",
    "é ü 日本",
    "emoji 🚀",
    "trailing ",
    " leading",
    "a,b",
    "a, b",
    "\\u00e9",
    "\\ud83d",
    "=",
    "<<",
]
scalar_text = st.one_of(st.sampled_from(TRICKY), st.text(min_size=0, max_size=12))
key = st.one_of(
    st.sampled_from(["id", "title", "date", "yes", "null", "on", "x1", "a-b", "_k", "1a", "key with"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True),
)


def single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def written_scalar(draw, text: str) -> str:
    style = draw(st.sampled_from(["plain", "single", "double", "json"]))
    if style == "plain":
        return text
    if style == "single":
        return single_quoted(text)
    if style == "json":
        return json.dumps(text, ensure_ascii=draw(st.booleans()))
    return '"' + text + '"'


@st.composite
def value_lines(draw, indent: int, depth: int) -> list[str]:
    """The lines after 'key:' (the first line's tail starts with ' ' or is empty)."""
    kinds = ["scalar", "folded", "flow", "literal", "list", "maps", "map", "empty"]
    kind = draw(st.sampled_from(kinds[: 8 if depth else 4]))
    if kind == "scalar":
        return [" " + written_scalar(draw, draw(scalar_text))]
    if kind == "folded":
        parts = draw(st.lists(scalar_text, min_size=2, max_size=3))
        deeper = " " * (indent + draw(st.integers(1, 3)))
        return [" " + parts[0], *[deeper + part for part in parts[1:]]]
    if kind == "flow":
        items = draw(st.lists(st.builds(lambda t: t, scalar_text), max_size=4))
        return [" [" + ", ".join(written_scalar(draw, item) for item in items) + "]"]
    if kind == "literal":
        block = " " * (indent + draw(st.integers(1, 3)))
        texts = draw(
            st.lists(st.one_of(scalar_text, st.just(""), st.just("  deeper")), min_size=1, max_size=4)
        )
        return [draw(st.sampled_from([" |", " |-"])), *[(block + text) if text else "" for text in texts]]
    if kind == "empty":
        return [draw(st.sampled_from(["", " ", "  "]))]
    inner = indent + draw(st.sampled_from([0, 2])) if kind in ("list", "maps") else indent + 2
    lines = [""]
    if kind == "list":
        for item in draw(st.lists(scalar_text, min_size=1, max_size=3)):
            lines.append(" " * inner + "- " + written_scalar(draw, item))
    elif kind == "maps":
        for _ in range(draw(st.integers(1, 2))):
            entries = draw(mapping_lines(inner + 2, depth - 1))
            entries[0] = " " * inner + "- " + entries[0].lstrip(" ")
            lines += entries
    else:
        lines += draw(mapping_lines(inner, depth - 1))
    return lines


@st.composite
def mapping_lines(draw, indent: int, depth: int) -> list[str]:
    lines = []
    for name in draw(st.lists(key, min_size=1, max_size=4)):
        tail = draw(value_lines(indent, depth))
        lines.append(" " * indent + name + ":" + tail[0])
        lines += tail[1:]
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.sampled_from(["", "  ", "# note", "  # note"])))
    return lines


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mapping_lines(0, 2), st.integers(0, 3))
def test_generated_front_matter_reads_as_pyyaml_reads_it(lines, offset):
    same_as_pyyaml("\n".join(lines), offset)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:- #'\"[],\n\t\\yn01.~{}é")), max_size=60))
def test_arbitrary_text_reads_as_pyyaml_reads_it(text):
    same_as_pyyaml(text)


def test_the_shipped_corpus_reads_as_pyyaml_reads_it_and_mostly_fast():
    from agentpm.records.parsing import split_front_matter

    fronts = []
    for path in sorted((REPO / "corpus").rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            fronts.append(decode_text(path.read_bytes()))
        elif path.suffix == ".md":
            front, _, _ = split_front_matter(decode_text(path.read_bytes()))
            if front is not None:
                fronts.append(front)
    declined = sum(same_as_pyyaml(front, 1) for front in fronts)
    assert len(fronts) > 1400
    # the fast reader is only worth having if real front matter takes it
    assert declined / len(fronts) < 0.02


@pytest.mark.parametrize(
    "text",
    [
        "title: a\n  b\n\n  c\n",  # a blank line inside a plain scalar is a line break
        "title: a # comment\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: >\n  text\n",
        "a: |\n\n  text\n",
        "a: [1, [2]]\n",
        "a: 'two\n  lines'\n",
        "a:\n-\n",
        "a: 1\n- b\n",
        "  a: 1\n",
        "a:\tb\n",
        "\ufeffa: 1\n",
        "a: 1\r\nb: 2\r\n",
        "",
        "# only a comment\n",
        "yes: 1\n",
    ],
)
def test_what_the_fast_reader_leaves_to_pyyaml(text):
    assert load_plain(text) is None
    try:
        found = load_yaml(text)
    except UnreadableInput as exc:
        found = exc
    assert repr(found) == repr(pyyaml(text))

"""Parsing is linear in the input: pathological lines parse fast, and the linear matchers find
exactly what the old regular expressions found (kept here as the reference)."""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from agentpm.records.parsing import match_bold_label, match_heading, match_meta_line, parse_text

OLD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
OLD_BOLD_LABEL = re.compile(r"^\*\*([^*\n]{2,40}?)\s*:?\s*\*\*\s*:?\s*(.*)$")
OLD_META_LINE = re.compile(
    r"^[ \t]*(?:[-*][ \t]+)?(?:\*\*)?([A-Za-z][A-Za-z _-]{0,30}?)(?:\*\*)?[ \t]*:(?:\*\*)?[ \t]*(.*?)[ \t]*$"
)

# Short lines from the characters that matter to these patterns.
_lines = st.text(alphabet=st.sampled_from(list("#*: \t-_aBc1")), max_size=30)


@given(_lines)
def test_heading_matcher_agrees_with_the_old_pattern(line):
    old = OLD_HEADING.match(line)
    assert match_heading(line) == ((len(old.group(1)), old.group(2)) if old else None)


@given(_lines)
def test_bold_label_matcher_agrees_with_the_old_pattern(line):
    old = OLD_BOLD_LABEL.match(line)
    new = match_bold_label(line)
    if old is None:
        assert new is None
    else:
        assert new is not None and new[0].strip() == old.group(1).strip() and new[1] == old.group(2).strip()


@given(st.text(alphabet=st.sampled_from(list("*: -abcKey")), max_size=25))
def test_meta_line_matcher_agrees_with_the_old_pattern(line):
    old = OLD_META_LINE.match(line)
    new = match_meta_line(line)
    assert (new is None) == (old is None)
    if old:
        assert new == (old.group(1), old.group(2))


_PATHOLOGICAL = st.sampled_from([" ", "\t", "#", "*", "-", "`", ":", "**", "# ", "a", "~"])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            _PATHOLOGICAL,
            _PATHOLOGICAL,
            st.sampled_from(["#", "# a", "**ab", "**", "Category: a", "- ", "```", ""]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_64_kb_file_of_pathological_lines_parses_in_under_a_second(parts):
    # Each line: a prefix, then one character repeated thousands of times, then another.
    lines = [f"{prefix}{middle * 4000}{end}" for middle, end, prefix in parts]
    body = "\n".join(lines)
    text = (body * (65536 // max(1, len(body)) + 1))[:65536]
    for document in (f"# Title\nCategory: a{' ' * 2000}b\n\n{text}", f"---\ntitle: t\n---\n{text}"):
        started = time.perf_counter()
        parse_text(document, "pathological.md")
        assert time.perf_counter() - started < 1.0


def test_the_known_slow_lines_are_fast():
    for line in (
        "# a" + " " * 8000 + "b",
        "Category: a" + " " * 50000 + "b",
        "**ab" + " " * 8000 + "x",
        "#" * 6 + " " + "#" * 8000 + " x",
        "* " + ":" * 8000,
    ):
        started = time.perf_counter()
        parse_text(f"# Title\n{line}\n\n## Summary\n{line}\n", "slow.md")
        assert time.perf_counter() - started < 1.0, line[:20]

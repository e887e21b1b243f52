"""Every kind of bad input: one line naming the file (and line), no traceback, the right exit
code, and the other files still processed."""

from __future__ import annotations

import json
import time

import pytest
from conftest import write

GOOD = "---\nid: G1\ntitle: a fine incident\ndate: 2026-01-05\ncategory: other\n---\n## Summary\nDNS.\n"

BOMB = (
    "\n".join(
        [
            f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]"
            if i
            else 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
            for i in range(9)
        ]
        + ["title: boom"]
    )
    + "\n"
)

# name, content, expected exit code, a fragment of the message, expected line (or None)
CASES = [
    ("empty.md", "", 1, "empty file", None),
    ("unclosed.md", "---\ntitle: x\ncategory: other\n", 2, "never closed", 1),
    ("badyaml.md", "---\ntitle: [x\n---\n", 2, "malformed YAML", 3),
    ("bad.json", '{"title": "x",\n}', 2, "malformed JSON", 2),
    ("array.json", "[1, 2]", 1, "must be a mapping", 1),
    ("scalar.yaml", "just words\n", 1, "must be a mapping", 1),
    (
        "tag.yaml",
        "title: !!python/object/apply:os.system ['echo hacked']\n",
        2,
        "!!python/object/apply:os.system is not allowed",
        1,
    ),
    ("bomb.yaml", BOMB, 2, "alias bomb", None),
    ("binary.md", bytes(range(256)) * 8, 2, "binary file", None),
    ("utf16.md", "# Titel\n".encode("utf-16"), 2, "UTF-16", None),
    ("latin1.md", "# Caf\xe9 agent\n".encode("latin-1"), 2, "not UTF-8", 1),
    (
        "wrongtype.md",
        "---\ntitle: t\nseverity: [1,2]\n---\n",
        1,
        "severity [1, 2] is not one agentpm knows",
        3,
    ),
    ("impossible.md", "---\ntitle: t\ndate: 2026-02-30\n---\n", 1, "2026-02-30", 3),
    (
        "order.yaml",
        "title: t\ndate: 2026-03-02T10:00:00+02:00\nresolved: 2026-03-02T07:00:00Z\n",
        1,
        "resolved is before date",
        3,
    ),
    ("unknown.md", "---\ntitle: t\ncategory: flaky-llm\n---\n", 1, "unknown category 'flaky-llm'", 3),
    ("notitle.json", '{"severity": "SEV2"}', 1, "title is required", None),
    ("unsupported-key.yaml", "? [a, b]\n: c\ntitle: t\n", 2, "malformed YAML", None),
]


@pytest.mark.parametrize("name,content,code,fragment,line", CASES, ids=[case[0] for case in CASES])
def test_bad_file_gives_one_line_and_others_still_load(cli, tmp_path, name, content, code, fragment, line):
    write(tmp_path, "good.md", GOOD)
    write(tmp_path, name, content)
    result = cli("list", str(tmp_path), "--format", "json")
    assert result.code == code, result.stderr
    assert "Traceback" not in result.stderr
    rows = json.loads(result.stdout)
    ids = [row["id"] for row in rows]
    assert "G1" in ids, "the good file must still be listed"
    # A broken field costs the field, not the incident; a file that is not a record costs itself.
    assert len(ids) == (2 if name in FIELD_LEVEL else 1), ids
    lines = [entry for entry in result.stderr.splitlines() if entry.strip()]
    assert len(lines) == 1, lines
    message = lines[0]
    assert name in message and fragment in message
    if line is not None:
        assert f"{name}:{line}:" in message


def test_huge_file_is_refused_without_reading(cli, tmp_path):
    write(tmp_path, "good.md", GOOD)
    big = tmp_path / "huge.md"
    with big.open("wb") as stream:
        stream.write(b"# big\n")
        stream.seek(50 * 1024 * 1024)
        stream.write(b"x")
    result = cli("validate", str(tmp_path))
    assert result.code == 2
    assert "huge.md: file is 50.0 MiB, over the 5 MiB limit" in result.stdout
    assert "1 read as incidents" in result.stderr


def test_alias_bomb_is_fast_and_small(tmp_path):
    import resource

    from agentpm.records.parsing import parse_file

    path = write(tmp_path, "bomb.yaml", BOMB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = parse_file(path)
    elapsed = time.perf_counter() - started
    assert result.incident is None and "alias bomb" in result.problems[0].message
    assert elapsed < 1.0  # a generous bound: the real figure is well under a millisecond
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_recursive_alias_is_refused(tmp_path):
    from agentpm.records.parsing import parse_file

    result = parse_file(write(tmp_path, "loop.yaml", "title: t\nx: &x [1, *x]\n"))
    assert result.incident is None
    assert result.problems[0].kind == "unreadable"


def test_duplicate_ids_name_both_files(cli, tmp_path):
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "b.yaml", "id: G1\ntitle: another\n")
    result = cli("validate", str(tmp_path))
    assert result.code == 1
    assert "b.yaml:1: id: duplicate id 'G1', already used by" in result.stdout
    assert "a.md:2" in result.stdout


def test_missing_path_is_unreadable(cli, tmp_path):
    write(tmp_path, "good.md", GOOD)
    result = cli("list", str(tmp_path), str(tmp_path / "nope"), "--format", "json")
    assert result.code == 2
    assert "nope: no such file or folder" in result.stderr
    assert len(json.loads(result.stdout)) == 1


def test_validate_json_reports_each_file(cli, tmp_path):
    write(tmp_path, "good.md", GOOD)
    write(tmp_path, "bad.md", "---\ntitle: t\nseverity: SEV9\n---\n")
    write(tmp_path, "worse.md", "---\ntitle: [unclosed\n---\n")
    result = cli("validate", str(tmp_path), "--format", "json")
    data = {Path_name(item["path"]): item for item in json.loads(result.stdout)}
    assert data["good.md"]["valid"] is True and data["good.md"]["problems"] == []
    # An unknown severity is kept as written with a warning: the incident still counts.
    problem = data["bad.md"]["problems"][0]
    assert data["bad.md"]["valid"] is True
    assert problem["line"] == 3 and problem["field"] == "severity" and problem["kind"] == "warning"
    assert data["worse.md"]["valid"] is False
    assert result.code == 2


FIELD_LEVEL = {"wrongtype.md", "impossible.md", "order.yaml"}


def Path_name(text: str) -> str:
    return text.rsplit("/", 1)[-1]


def test_clean_corpus_exits_zero(cli, tmp_path):
    write(tmp_path, "good.md", GOOD)
    result = cli("validate", str(tmp_path))
    assert result.code == 0 and result.stdout == ""
    assert "1 files checked: all valid" in result.stderr


def test_usage_error_exit_code_two(cli):
    result = cli("list", "--format", "xml")
    assert result.code == 2
    assert "Traceback" not in result.stderr

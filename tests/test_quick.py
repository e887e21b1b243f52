"""The quick reader of well-formed files caches exactly what the full parser does."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentpm.classifier.features import channels, prose_word_count
from agentpm.records.cache import parse_to_data
from agentpm.records.parsing import parse_file
from agentpm.records.quick import quick_data, quick_read

SUFFIXES = (".md", ".markdown", ".yaml", ".yml", ".json")


def same_as_full(path: Path) -> bool:
    """False when the quick reader declines the file; else its data must be the full parser's,
    and its text view must give the model the same text (a trends run labels files from it)."""
    quick, view = quick_read(str(path))
    if quick is None:
        assert view is None
        return False
    # sort_keys and the types json keeps (int vs float, None, lists) are what the cache stores
    assert json.dumps(quick, sort_keys=True) == json.dumps(
        parse_to_data(str(path), quick=False), sort_keys=True
    )
    assert quick_data(str(path)) == quick
    incident = parse_file(path).incident
    assert view is not None and incident is not None
    assert (view.path, view.id, view.title) == (incident.path, incident.id, incident.title)
    assert view.sections == incident.sections
    assert channels(view) == channels(incident)  # type: ignore[arg-type]
    assert prose_word_count(view) == prose_word_count(incident)  # type: ignore[arg-type]
    return True


def test_every_shipped_and_test_file_reads_the_same_quick_or_full():
    files = [
        path
        for folder in (REPO / "corpus", REPO / "tests" / "data", REPO / "reports")
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in SUFFIXES and path.is_file()
    ]
    taken = sum(same_as_full(path) for path in files)
    assert len(files) > 1600
    assert taken / len(files) > 0.9  # most real files are well-formed: the quick reader is worth having


FIELD_VALUES = {
    "id": st.one_of(st.text(max_size=6), st.integers(-5, 10**6), st.booleans(), st.none(), st.floats(0, 3)),
    "title": st.one_of(st.just("A title"), st.text(max_size=10), st.just(""), st.none(), st.integers(0, 9)),
    "date": st.sampled_from(
        [
            "2025-03-01",
            "2025-03-01T09:30:00Z",
            "2025-03-01 09:30",
            "2025-03-01T09:30:00+05:30",
            "1969-12-31",
            "2025-02-30",
            "yesterday",
            "",
            "2025-03-01T09:30:00",
            None,
            20250301,
        ]
    ),  # fmt: skip
    "detected": st.sampled_from(["2025-03-01T10:00:00Z", "2025-02-28T10:00:00Z", "2025-03-01", None, "x"]),
    "resolved": st.sampled_from(["2025-03-02T10:00:00Z", "2025-03-01T09:00:00Z", "2025-03-02", None]),
    "severity": st.sampled_from(["SEV1", "sev2", " SEV3 ", "SEV-4", "High", "P1", None, 3, "SEV5"]),
    "status": st.sampled_from(["final", "draft", "in-review", "Final", "closed", None, 1]),
    "category": st.sampled_from(["other", "prompt-injection", "made-up", "", None, 7, ["other"]]),
    "secondary": st.one_of(
        st.sampled_from(["other", "other, tool-api-drift", "", None, 3]),
        st.lists(st.sampled_from(["other", "nope", 5]), max_size=3),
    ),
    "systems": st.one_of(
        st.sampled_from(["a, b", None, {"a": 1}]), st.lists(st.text(max_size=5), max_size=3)
    ),
    "tags": st.one_of(st.sampled_from(["x", None]), st.lists(st.sampled_from(["t", "u", 1]), max_size=3)),
    "impact": st.sampled_from(["  Two   customers\n billed twice ", "", None, ["a", "b"], 12]),
    "summary": st.sampled_from(["text", ["a", "b"], {"k": "v"}, None, "  ", "```\ncode\n```\nprose"]),
    "root_cause": st.sampled_from(["The schema changed.", "", None, 3]),
    "description": st.sampled_from(["Described in the front matter.", " ", None]),
    "resolution": st.sampled_from(["Pinned the version.", None]),
    "tools": st.one_of(
        st.sampled_from(["search, fetch", None, 3]), st.lists(st.text(max_size=5), max_size=3)
    ),
    "label_source": st.sampled_from(["human", "accepted-prediction", "imported", None, ["x"]]),
    "prediction": st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "category": st.sampled_from(["other", None, "made-up", 3]),
                "confidence": st.sampled_from([0.5, 1, 0, 1.5, -0.1, True, "0.4", None]),
                "model": st.sampled_from(["abc", None, 5]),
                "at": st.sampled_from(["2025-03-01T00:00:00Z", "nope", None]),
            },
        ),
        st.just("other"),
    ),
    "action_items": st.one_of(
        st.none(),
        st.just("fix it"),
        st.lists(
            st.one_of(
                st.sampled_from(["Add a check", "", 4]),
                st.fixed_dictionaries(
                    {"title": st.sampled_from(["Add alert", "", None, 3])},
                    optional={
                        "owner": st.sampled_from(["@ana", None, 12]),
                        "due": st.sampled_from(["2025-04-01", "2025-04-01T12:00:00Z", "soon", None]),
                        "status": st.sampled_from(["open", "done", "wontfix", "Done", "todo", None]),
                        "kind": st.sampled_from(["prevent", "detect", "process", None]),
                        "extra": st.just("kept"),
                    },
                ),
            ),
            max_size=3,
        ),
    ),
    "rootcause": st.just("a typo of a known field"),
    "titel": st.just("another typo"),
    "owner_team": st.sampled_from(["payments", ["a", "b"], {"k": 1}, None, 3, ""]),
    "Attack Vector": st.sampled_from(["prompt", None]),
    "attack-vector": st.just("prompt"),
    "_hidden": st.just(1),
    "model_config": st.just("x"),
    "sections": st.just("a name the schema uses for itself"),
    "source": st.just("owner/repo#1"),
    "severity_as_written": st.just("High"),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    record=st.fixed_dictionaries(
        {"title": FIELD_VALUES["title"]},
        optional={name: values for name, values in FIELD_VALUES.items() if name != "title"},
    ),
    form=st.sampled_from(["md", "yaml", "json"]),
    body=st.sampled_from(
        [
            "",
            "## Summary\nIt broke.\n",
            "## Category\nother\n\n## Impact\nSome.\n",
            "# A title\n",
            "## Root cause\n```\nstack 42\n```\nThe API renamed a field.\n\n## Notes from the on-call\nLate page.\n",
            "**Fix:** pinned the client\n\n## Timeline\n- 09:00 alert\n",
        ]
    ),
)
def test_generated_records_read_the_same_quick_or_full(tmp_path, record, form, body):
    path = tmp_path / f"incident.{form}"
    if form == "json":
        path.write_text(json.dumps(record), encoding="utf-8")
    elif form == "yaml":
        path.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(f"---\n{yaml.safe_dump(record, sort_keys=False)}---\n{body}", encoding="utf-8")
    same_as_full(path)

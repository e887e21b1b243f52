"""The shipped corpus is held to the standards it was built for: the hand-written post-mortems
(issue 3) and the reports modelled on public incident texts (tools/check_corpus.py)."""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest
from conftest import CORPUS, TAXONOMY

from agentpm.records.corpus import load_corpus
from agentpm.taxonomy import load_taxonomy

# The words real reporters use for each phenomenon (DESIGN §7): reports modelled on public texts keep them.
NAMED = {
    "prompt-injection": re.compile(r"inject|jailbreak", re.IGNORECASE),
    "context-pollution": re.compile(r"context|token", re.IGNORECASE),
    "cascading-multi-agent": re.compile(r"agent", re.IGNORECASE),
}


@pytest.fixture(scope="module")
def everything():
    return load_corpus([CORPUS], taxonomy=load_taxonomy(TAXONOMY))


@pytest.fixture(scope="module")
def corpus(everything):
    """The hand-written post-mortems (no public source)."""
    hand_written = [
        incident for incident in everything.incidents if not (incident.model_extra or {}).get("source")
    ]
    return type(everything)(hand_written, list(everything.problems), len(hand_written))


def test_the_whole_corpus_passes_its_checker(everything):
    import sys

    sys.path.insert(0, str(CORPUS.parent / "tools"))
    from check_corpus import check

    problems, summary = check(CORPUS)
    assert problems == [], problems[:20]
    assert summary["reports"] >= 1488 and summary["modelled"] >= 900


def test_modelled_reports_name_the_phenomenon_as_reporters_do(everything):
    for category, pattern in NAMED.items():
        reports = [
            incident
            for incident in everything.incidents
            if incident.category == category and (incident.model_extra or {}).get("source")
        ]
        named = [i for i in reports if pattern.search(i.title + "\n" + "\n".join(i.sections.values()))]
        assert len(named) / len(reports) >= 0.6, (category, len(named), len(reports))


def test_every_file_validates(everything, corpus):
    assert everything.problems == []
    assert everything.files_read == len(everything.incidents)
    assert len(corpus.incidents) >= 540


def test_every_category_has_at_least_80_reports(corpus):
    counts = Counter(incident.category for incident in corpus.incidents)
    assert set(counts) == set(load_taxonomy(TAXONOMY).ids)
    assert min(counts.values()) >= 80, counts


def test_format_mix(corpus):
    formats = Counter(incident.source_format for incident in corpus.incidents)
    total = len(corpus.incidents)
    assert formats["markdown"] / total >= 0.60
    assert formats["yaml"] / total >= 0.10
    assert formats["markdown-plain"] / total >= 0.05
    assert formats["json"] > 0


def test_dates_span_eight_quarters_and_the_mix_shifts(corpus):
    quarters = Counter(incident.quarter for incident in corpus.incidents)
    assert {f"{year}Q{q}" for year in (2025, 2026) for q in range(1, 5)} <= set(quarters)
    injection = Counter(
        incident.quarter for incident in corpus.incidents if incident.category == "prompt-injection"
    )
    early = sum(injection[f"2025Q{q}"] for q in range(1, 5))
    late = sum(injection[f"2026Q{q}"] for q in range(1, 5))
    assert late > 2 * early, "injection should rise over time, as the seed article describes"


def test_boundary_cases_carry_a_labelling_note(corpus):
    noted = [incident for incident in corpus.incidents if incident.labelling_note]
    assert len(noted) / len(corpus.incidents) >= 0.15
    assert all(len(incident.labelling_note.split()) >= 5 for incident in noted)


def test_secondary_labels_differ_from_the_primary(corpus):
    for incident in corpus.incidents:
        assert incident.category not in incident.secondary, incident.path


def test_length_range(corpus):
    words = sorted(
        len((incident.title + " " + " ".join(incident.sections.values())).split())
        for incident in corpus.incidents
    )
    assert words[0] <= 60 and words[-1] >= 1000
    middle = sum(1 for count in words if 120 <= count <= 500)
    assert middle / len(words) >= 0.5


def test_full_postmortems_have_trend_metadata(corpus):
    final = [incident for incident in corpus.incidents if incident.status == "final"]
    complete = [
        incident
        for incident in final
        if incident.severity
        and incident.detected
        and incident.resolved
        and incident.systems
        and incident.tools
        and incident.action_items
    ]
    assert len(complete) / len(final) >= 0.75
    items = [item for incident in corpus.incidents for item in incident.action_items]
    assert any(item.status == "open" for item in items) and any(item.status == "done" for item in items)


def test_no_near_duplicates(corpus):
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [incident.title + "\n" + "\n".join(incident.sections.values()) for incident in corpus.incidents]
    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    similarity = (matrix @ matrix.T).toarray()
    similarity[range(len(texts)), range(len(texts))] = 0
    assert similarity.max() <= 0.8, "two reports are near-duplicates"


@pytest.mark.parametrize("spelling", ["{root}", "{root}/", "{root}/./", "{root}/sub/..", "{relative}"])
def test_each_discovered_file_keys_by_its_absolute_path(tmp_path, monkeypatch, spelling):
    root = tmp_path / "reports"
    (root / "sub" / "deeper").mkdir(parents=True)
    for name in ("a.md", "sub/b.yaml", "sub/deeper/c.json"):
        (root / name).write_text("title: x\n", encoding="utf-8")
    (root / "linked").symlink_to(root / "sub")  # a symlinked folder is not followed
    monkeypatch.chdir(tmp_path)
    given = spelling.format(root=root, relative="reports")
    from agentpm.records.corpus import discover_keyed

    names, keys, problems = discover_keyed([given, root / "a.md"])
    assert not problems
    assert len(names) == 3  # a.md given twice is read once
    assert keys == [os.path.abspath(name) for name in names]

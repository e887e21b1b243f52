"""`agentpm model agreement`: Cohen's kappa (checked against scikit-learn), its bootstrap
interval, matching of folders and CSV files, items only one source has, human vs model."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from conftest import CORPUS, run_cli, write
from sklearn.metrics import cohen_kappa_score

import agentpm.cli.review  # noqa: F401  (registers `review` and `model agreement`)
from agentpm.classifier.agreement import (
    LabelPair,
    agreement,
    bootstrap_kappa,
    cohen_kappa,
    csv_source,
    paired_labels,
)

CLASSES = [
    "context-pollution",
    "tool-api-drift",
    "cascading-multi-agent",
    "inadequate-fallback",
    "prompt-injection",
    "other",
]


def two_raters(n: int = 120, seed: int = 7) -> tuple[list[str], list[str]]:
    """Two raters who agree about 70 % of the time, the rest at random."""
    rng = random.Random(seed)
    first = [rng.choice(CLASSES) for _ in range(n)]
    second = [label if rng.random() < 0.7 else rng.choice(CLASSES) for label in first]
    return first, second


def label_csv(folder, name, ids, labels):
    return write(
        folder, name, "id,category\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, labels, strict=True))
    )


def test_kappa_matches_scikit_learn_and_the_interval_contains_it(tmp_path):
    first, second = two_raters()
    ids = [f"INC-{number}" for number in range(len(first))]
    # One item only in each file, and one row left blank in the second.
    a = label_csv(tmp_path, "a.csv", [*ids, "ONLY-A"], [*first, "other"])
    b = label_csv(tmp_path, "b.csv", [*reversed(ids), "ONLY-B", "BLANK-1"], [*reversed(second), "other", ""])
    result = run_cli("model", "agreement", str(a), str(b), "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    expected = cohen_kappa_score(first, second)
    assert data["kappa"] == pytest.approx(expected, abs=5e-5)
    assert cohen_kappa(first, second) == pytest.approx(expected, abs=1e-12)
    assert data["kappa_low"] <= data["kappa"] <= data["kappa_high"]
    assert data["kappa_high"] - data["kappa_low"] < 0.4
    assert data["n"] == len(first)
    assert data["agreement"] == pytest.approx(
        sum(x == y for x, y in zip(first, second, strict=True)) / len(first), abs=1e-4
    )
    assert data["only_in_a"] == {"count": 1, "examples": ["ONLY-A"]}
    assert data["only_in_b"] == {"count": 1, "examples": ["ONLY-B"]}
    assert data["unlabelled_b"] == 1
    assert sum(map(sum, data["confusion"]["matrix"])) == len(first)
    assert [row["category"] for row in data["per_category"]] == CLASSES
    table = run_cli("model", "agreement", str(a), str(b))
    assert table.code == 0 and "Cohen's kappa" in table.stdout and "ONLY-A" in table.stdout


def test_the_interval_is_reproducible_and_per_category_figures_are_right():
    first, second = two_raters(80, seed=3)
    assert bootstrap_kappa(first, second, 500) == bootstrap_kappa(first, second, 500)
    pair = LabelPair("a", "b", ["x", "x", "y", "y"], ["x", "y", "y", "y"], [], [], 0, 0, [])
    result = agreement(pair, resamples=200)
    by_label = {row["category"]: row for row in result["per_category"]}
    assert by_label["x"]["positive_agreement"] == pytest.approx(2 * 1 / (2 + 1), abs=1e-4)
    assert by_label["y"]["positive_agreement"] == pytest.approx(2 * 2 / (2 + 3), abs=1e-4)
    assert result["kappa"] == pytest.approx(cohen_kappa_score(pair.a, pair.b), abs=1e-4)


def test_kappa_is_undefined_when_both_sources_use_one_label():
    pair = LabelPair("a", "b", ["other"] * 5, ["other"] * 5, [], [], 0, 0, [])
    result = agreement(pair, resamples=100)
    assert result["kappa"] is None and result["agreement"] == 1.0


def test_folders_are_matched_by_id_then_by_relative_path(tmp_path):
    for side, labels in (("a", ("other", "tool-api-drift", "other")), ("b", ("other", "other", None))):
        write(tmp_path / side, "one.md", f"---\nid: INC-1\ntitle: One\ncategory: {labels[0]}\n---\n")
        # No id: matched by its path relative to the folder.
        write(tmp_path / side, "sub/two.md", f"---\ntitle: Two\ncategory: {labels[1]}\n---\n")
        third = f"category: {labels[2]}\n" if labels[2] else ""
        write(tmp_path / side, "three.md", f"---\nid: INC-3\ntitle: Three\n{third}---\n")
    write(tmp_path / "b", "extra.md", "---\nid: INC-9\ntitle: Extra\ncategory: other\n---\n")
    # The same id under another name still matches.
    shutil.move(tmp_path / "b" / "one.md", tmp_path / "b" / "renamed.md")
    result = run_cli("model", "agreement", str(tmp_path / "a"), str(tmp_path / "b"), "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n"] == 2 and data["agreement"] == 0.5
    assert data["only_in_a"] == {"count": 1, "examples": ["INC-3"]}
    assert data["only_in_b"] == {"count": 1, "examples": ["INC-9"]}
    assert data["unlabelled_b"] == 1


def test_csv_rows_that_disagree_about_one_item_are_reported(tmp_path):
    path = write(tmp_path, "l.csv", "id,category\nA,other\nA,tool-api-drift\nB,other\n")
    source = csv_source(path)
    assert [item.label for item in source.items] == ["other", "other"]
    assert "line 2" in str(source.problems[0])
    pair = paired_labels(source, source)
    assert pair.a == pair.b and not pair.only_in_a


def test_human_vs_model_counts_abstentions_as_their_own_label(tmp_path):
    folder = tmp_path / "incidents"
    folder.mkdir()
    for source in sorted(CORPUS.glob("2025-01-*.md"))[:5]:
        shutil.copy(source, folder / source.name)
    write(folder, "short.md", "---\nid: SHORT-1\ntitle: Short\ncategory: other\n---\nIt broke.\n")
    write(folder, "unlabelled.md", "---\nid: U-1\ntitle: No label\n---\nIt broke again.\n")
    result = run_cli("model", "agreement", str(folder), "--human-vs-model", "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n"] == 6
    assert "needs-review" in data["confusion"]["labels"]
    row = data["confusion"]["labels"].index("other")
    assert data["confusion"]["matrix"][row][data["confusion"]["labels"].index("needs-review")] == 1
    assert data["only_in_b"]["examples"] == ["U-1"]
    assert data["b"].startswith("model ")


def test_wrong_calls_are_usage_errors(tmp_path):
    a = label_csv(tmp_path, "a.csv", ["X"], ["other"])
    b = label_csv(tmp_path, "b.csv", ["Y"], ["other"])
    one = run_cli("model", "agreement", str(a))
    assert one.code == 2 and "--human-vs-model" in one.stderr
    disjoint = run_cli("model", "agreement", str(a), str(b))
    assert disjoint.code == 2 and "no item is labelled in both" in disjoint.stderr
    missing = run_cli("model", "agreement", str(a), str(tmp_path / "nope"))
    assert missing.code == 2 and "no such file or folder" in missing.stderr
    help_text = run_cli("model", "agreement", "--help")
    assert "Example: agentpm model agreement" in help_text.stdout

"""The learning loop on the model side: adapt to your reports, score on them, suggest a secondary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_cli

PUBLIC = REPO / "corpus" / "public"


def _test_split_reports(count: int) -> list[Path]:
    """Reports of the real-text test split: never trained on by the shipped model."""
    found = []
    for path in sorted(PUBLIC.rglob("*.md")):
        if "\nsplit: test\n" in path.read_text(encoding="utf-8"):
            found.append(path)
    # every category, round robin, so the user's set is not one category
    by_category: dict[str, list[Path]] = {}
    for path in found:
        by_category.setdefault(path.parent.name, []).append(path)
    ordered = [
        paths[i]
        for i in range(max(map(len, by_category.values())))
        for paths in by_category.values()
        if i < len(paths)
    ]
    return ordered[:count]


def _copy(paths: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in paths:
        text = (
            path.read_text(encoding="utf-8")
            .replace("\nsplit: test\n", "\n")
            .replace("\nsource:", "\nwas_source:")
        )
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def test_classify_suggests_a_secondary_category_only_with_a_label():
    rows = json.loads(
        run_cli(
            "classify",
            "corpus/2025-01-08-ap-intake-blank-lines-ocr-timeouts.md",
            "tests/data/ood",
            "--format",
            "json",
        ).stdout
    )
    assert all(isinstance(row["secondary"], list) for row in rows)
    assert all(row["secondary"] == [] for row in rows if row["abstained"])
    assert all(row["secondary"] == [row["runner_up"]] for row in rows if row["secondary"])
    manifest = json.loads((REPO / "agentpm" / "models" / "default" / "manifest.json").read_text())
    secondary = manifest["cv"]["secondary"]
    # Either a threshold that is right at least half the time, or none at all (never noise).
    assert manifest["thresholds"]["secondary"] is None or secondary["precision"] >= 0.5


def test_eval_on_scores_two_models_side_by_side(tmp_path):
    own = _copy(_test_split_reports(30), tmp_path / "ours")
    shipped = str(REPO / "agentpm" / "models" / "default")
    result = run_cli(
        "model", "eval", "--on", str(own), "--model", shipped, "--against", shipped, "--format", "json"
    )
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["order"] == ["model_1", "model_2"]
    assert data["model_1"]["n"] == 30 and data["model_1"]["macro_f1"] == data["model_2"]["macro_f1"]
    table = run_cli("model", "eval", "--on", str(own), "--model", shipped)
    assert table.code == 0 and "macro-F1" in table.stdout


def _every_third_report(folder: Path) -> tuple[Path, int]:
    """A third of the shipped corpus, laid out as it is (the adaptation is the same on a smaller
    base, at a third of the cost); returns the folder and how many of its reports train."""
    corpus = REPO / "corpus"
    training = 0
    for number, path in enumerate(sorted(corpus.rglob("*.md"))):
        if number % 3 == 0:
            target = folder / path.relative_to(corpus)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(encoding="utf-8")
            target.write_text(text, encoding="utf-8")
            training += "\nsplit: test\n" not in text
    return folder, training


@pytest.mark.slow
def test_train_add_adapts_and_the_adapted_model_classifies(tmp_path):
    own = _copy(_test_split_reports(30), tmp_path / "ours")
    base, training = _every_third_report(tmp_path / "base")
    out = tmp_path / "adapted"
    result = run_cli(
        "model",
        "train",
        "--corpus",
        str(base),
        "--add",
        str(own),
        "-o",
        str(out),
        env={"SOURCE_DATE_EPOCH": "1795000000"},
    )
    assert result.code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["selection"]["chosen"]["user_weight"] in (1.0, 3.0, 10.0)
    assert "user's own 30" in manifest["cv"]["scored_on"]
    assert manifest["corpus"]["incidents"] == training + 30 and training > 300
    classified = run_cli("classify", str(own), "--model", str(out), "--format", "json")
    assert classified.code == 0 and len(json.loads(classified.stdout)) == 30
    shutil.rmtree(out)

"""How far two label sources agree: Cohen's kappa with a bootstrap interval, raw and
per-category agreement, and the confusion table.

Rules:

- A source is a folder of incident files (its ``category`` fields), a CSV with ``id`` (or
  ``path``) and ``category`` columns, or the model's predictions now on one folder, where an
  abstention is its own label, ``needs-review``.
- Items are matched by id, else by path relative to the source's folder. Items present in
  only one source, and items a source holds without a label, are counted and listed, never
  dropped silently.
- The interval is a percentile bootstrap over matched items with a fixed seed, so the same
  inputs give the same figures. Kappa is undefined when both sources use a single label
  throughout (expected agreement 1); it is then ``None``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentpm.errors import InputError
from agentpm.records.corpus import load_corpus
from agentpm.records.parsing import Problem
from agentpm.safeload import UnreadableInput, read_regular_file
from agentpm.taxonomy import Taxonomy

NEEDS_REVIEW = "needs-review"
SEED = 20_260_301
#: Items shown by name in the "only in one source" lists; the counts are always complete.
EXAMPLES = 20
#: Bootstrap cells (resamples × items) built at once: bounds memory on large corpora.
BOOTSTRAP_CHUNK = 4_000_000


@dataclass(frozen=True)
class LabelledItem:
    key_id: str | None
    key_path: str | None
    label: str

    @property
    def name(self) -> str:
        return self.key_id or self.key_path or "?"


@dataclass
class LabelSource:
    name: str
    items: list[LabelledItem]
    unlabelled: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass
class LabelPair:
    """Matched labels of two sources and what only one of them has."""

    a_name: str
    b_name: str
    a: list[str]
    b: list[str]
    only_in_a: list[str]
    only_in_b: list[str]
    unlabelled_a: int
    unlabelled_b: int
    problems: list[Problem]


# -- reading sources -------------------------------------------------------------------------


def folder_source(folder: Path, taxonomy: Taxonomy) -> LabelSource:
    """The human ``category`` of every incident under ``folder``."""
    corpus = load_corpus([folder], taxonomy=taxonomy)
    base = folder if folder.is_dir() else folder.parent
    items, unlabelled = [], 0
    for incident in corpus.incidents:
        if not incident.category:
            unlabelled += 1
            continue
        relative = Path(os.path.relpath(incident.path, base)).as_posix()
        items.append(LabelledItem(incident.id, relative, incident.category))
    return LabelSource(str(folder), items, unlabelled, list(corpus.problems))


def csv_source(path: Path) -> LabelSource:
    """Labels from a CSV with a ``category`` column and an ``id`` or ``path`` column."""
    try:
        text = read_regular_file(path, 50 * 1024 * 1024, "a labels CSV").decode("utf-8").lstrip("\ufeff")
    except (UnreadableInput, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the labels CSV ({exc}); give a UTF-8 CSV file") from None
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
    if "category" not in reader.fieldnames or not {"id", "path"} & set(reader.fieldnames):
        raise InputError(f"{path}:1: needs a header with `category` and `id` (or `path`) columns")
    items, unlabelled, problems = [], 0, []
    seen: dict[str, tuple[str, int]] = {}
    for row in reader:
        key_id = (row.get("id") or "").strip() or None
        key_path = (row.get("path") or "").strip() or None
        label = (row.get("category") or "").strip()
        if not (key_id or key_path):
            problems.append(Problem(str(path), "row names no id or path; it is left out", reader.line_num))
            continue
        if not label:
            unlabelled += 1
            continue
        key = key_id or key_path or ""
        if key in seen:
            if seen[key][0] != label:
                problems.append(
                    Problem(
                        str(path),
                        f"{key}: labelled {label!r} here and {seen[key][0]!r} on line {seen[key][1]}; "
                        "the first is used — keep one row per item",
                        reader.line_num,
                    )
                )
            continue
        seen[key] = (label, reader.line_num)
        items.append(LabelledItem(key_id, key_path, label))
    return LabelSource(str(path), items, unlabelled, problems)


def read_source(path: Path, taxonomy: Taxonomy) -> LabelSource:
    """A folder (or one incident file) or a ``.csv`` file of labels."""
    if path.suffix.lower() == ".csv" and not path.is_dir():
        return csv_source(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; give a labelled folder or an id,category CSV")
    return folder_source(path, taxonomy)


def paired_labels(first: LabelSource, second: LabelSource) -> LabelPair:
    """Match two sources by id, else by relative path."""
    by_id = {item.key_id: index for index, item in enumerate(second.items) if item.key_id}
    by_path = {item.key_path: index for index, item in enumerate(second.items) if item.key_path}
    used: set[int] = set()
    a, b, only_in_a = [], [], []
    for item in first.items:
        match = by_id.get(item.key_id) if item.key_id else None
        if match is None and item.key_path:
            match = by_path.get(item.key_path)
        if match is None or match in used:
            only_in_a.append(item.name)
            continue
        used.add(match)
        a.append(item.label)
        b.append(second.items[match].label)
    only_in_b = [item.name for index, item in enumerate(second.items) if index not in used]
    return LabelPair(
        first.name,
        second.name,
        a,
        b,
        only_in_a,
        only_in_b,
        first.unlabelled,
        second.unlabelled,
        first.problems + second.problems,
    )


def human_vs_model_labels(folder: Path, taxonomy: Taxonomy, model_path: Path | str) -> LabelPair:
    """Each incident's human ``category`` against the model's prediction now (abstention:
    ``needs-review``). Incidents without a human label are the model's alone."""
    from agentpm.classifier.classify import classify_files, model_for

    model = model_for(model_path, taxonomy)
    # ids, paths and labels are all this needs: the light records, not the parsed incidents
    records, predictions = classify_files([folder], taxonomy, model)
    human, predicted = [], []
    for incident, prediction in zip(records.records, predictions, strict=True):
        relative = Path(os.path.relpath(incident.path, folder)).as_posix()
        predicted.append(LabelledItem(incident.id, relative, prediction.category or NEEDS_REVIEW))
        if incident.category:
            human.append(LabelledItem(incident.id, relative, incident.category))
    unlabelled = len(records.records) - len(human)
    pair = paired_labels(
        LabelSource(f"{folder} (human)", human, unlabelled, list(records.problems)),
        LabelSource(f"model {model.hash}", predicted),
    )
    return pair


# -- the figures -----------------------------------------------------------------------------


def _kappa_from_counts(counts: np.ndarray) -> np.ndarray:
    """Cohen's kappa of one or many k×k confusion tables (last two axes); NaN where undefined."""
    total = counts.sum(axis=(-2, -1)).astype(float)
    observed = np.trace(counts, axis1=-2, axis2=-1) / total
    expected = (counts.sum(axis=-1) * counts.sum(axis=-2)).sum(axis=-1) / total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two equally long label lists (None when undefined)."""
    labels = sorted(set(a) | set(b))
    counts = confusion(a, b, labels)
    value = float(_kappa_from_counts(counts))
    return None if np.isnan(value) else value


def confusion(a: Sequence[str], b: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts with A's labels as rows and B's as columns."""
    index = {label: position for position, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, ([index[x] for x in a], [index[y] for y in b]), 1)
    return counts


def bootstrap_kappa(
    a: Sequence[str], b: Sequence[str], resamples: int = 2000, seed: int = SEED
) -> tuple[float | None, float | None]:
    """Percentile 95 % interval of kappa over resampled items (fixed seed)."""
    labels = sorted(set(a) | set(b))
    k, n = len(labels), len(a)
    if n == 0:
        return None, None
    index = {label: position for position, label in enumerate(labels)}
    cells = np.array([index[x] * k + index[y] for x, y in zip(a, b, strict=True)], dtype=np.int64)
    rng = np.random.default_rng(seed)
    values = []
    step = max(1, BOOTSTRAP_CHUNK // n)
    for start in range(0, resamples, step):
        rows = min(step, resamples - start)
        drawn = cells[rng.integers(0, n, size=(rows, n))]
        # One bincount for the whole chunk: each resample's cells are shifted into its own block.
        shifted = (drawn + (np.arange(rows) * k * k)[:, None]).ravel()
        tables = np.bincount(shifted, minlength=rows * k * k).reshape(rows, k, k)
        values.append(_kappa_from_counts(tables))
    kappas = np.concatenate(values)
    kappas = kappas[~np.isnan(kappas)]
    if not len(kappas):
        return None, None
    low, high = np.percentile(kappas, [2.5, 97.5])
    return float(low), float(high)


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def per_category(counts: np.ndarray, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per label: how often each source used it, both at once, positive agreement
    (2·both / (a + b)) and the one-against-the-rest kappa."""
    total = int(counts.sum())
    rows = []
    for position, label in enumerate(labels):
        both = int(counts[position, position])
        in_a, in_b = int(counts[position].sum()), int(counts[:, position].sum())
        binary = np.array([[both, in_a - both], [in_b - both, total - in_a - in_b + both]])
        kappa = float(_kappa_from_counts(binary)) if total else float("nan")
        rows.append(
            {
                "category": label,
                "a": in_a,
                "b": in_b,
                "both": both,
                "positive_agreement": _ratio(2 * both, in_a + in_b),
                "kappa": None if np.isnan(kappa) else round(kappa, 4),
            }
        )
    return rows


def agreement(
    pair: LabelPair, categories: Iterable[str] = (), resamples: int = 2000, seed: int = SEED
) -> dict[str, Any]:
    """Every figure for one pair of sources, JSON-ready."""
    if not pair.a:
        raise InputError(
            f"{pair.a_name} and {pair.b_name}: no item is labelled in both "
            f"({len(pair.only_in_a)} only in the first, {len(pair.only_in_b)} only in the second); "
            "check that they name the same incidents by id or relative path"
        )
    seen = set(pair.a) | set(pair.b)
    labels = [label for label in categories if label in seen]
    labels += sorted(seen - set(labels))
    counts = confusion(pair.a, pair.b, labels)
    total = int(counts.sum())
    observed = float(np.trace(counts)) / total
    expected = float((counts.sum(axis=1) * counts.sum(axis=0)).sum()) / total**2
    kappa = cohen_kappa(pair.a, pair.b)
    low, high = bootstrap_kappa(pair.a, pair.b, resamples, seed)
    return {
        "a": pair.a_name,
        "b": pair.b_name,
        "n": total,
        "kappa": _rounded(kappa),
        "kappa_low": _rounded(low),
        "kappa_high": _rounded(high),
        "interval": {"level": 0.95, "method": "percentile bootstrap", "resamples": resamples, "seed": seed},
        "agreement": round(observed, 4),
        "expected_agreement": round(expected, 4),
        "per_category": per_category(counts, labels),
        "confusion": {"labels": labels, "rows": "a", "columns": "b", "matrix": counts.tolist()},
        "only_in_a": {"count": len(pair.only_in_a), "examples": pair.only_in_a[:EXAMPLES]},
        "only_in_b": {"count": len(pair.only_in_b), "examples": pair.only_in_b[:EXAMPLES]},
        "unlabelled_a": pair.unlabelled_a,
        "unlabelled_b": pair.unlabelled_b,
    }


def _shown(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def agreement_tables(result: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]], list[dict]]]:
    """(title, columns, rows) for the terminal: summary, per category, confusion."""
    summary = [
        {"key": "compared", "value": f"{result['a']}  vs  {result['b']}"},
        {"key": "items in both", "value": result["n"]},
        {
            "key": "Cohen's kappa (95 % CI)",
            "value": f"{_shown(result['kappa'])} ({_shown(result['kappa_low'])}–{_shown(result['kappa_high'])})",
        },
        {"key": "raw agreement", "value": f"{result['agreement']:.3f}"},
        {"key": "chance agreement", "value": f"{result['expected_agreement']:.3f}"},
        {"key": "only in A", "value": _only(result["only_in_a"])},
        {"key": "only in B", "value": _only(result["only_in_b"])},
        {"key": "unlabelled in A / B", "value": f"{result['unlabelled_a']} / {result['unlabelled_b']}"},
    ]
    per_category_columns = [
        ("category", "Category"),
        ("a", "A"),
        ("b", "B"),
        ("both", "Both"),
        ("positive_agreement", "Positive agreement"),
        ("kappa", "Kappa"),
    ]
    labels = result["confusion"]["labels"]
    confusion_rows = [
        {"label": label, **{other: row[position] for position, other in enumerate(labels)}}
        for label, row in zip(labels, result["confusion"]["matrix"], strict=True)
    ]
    return [
        ("agreement", [("key", ""), ("value", "")], summary),
        ("per category", per_category_columns, result["per_category"]),
        (
            "confusion (rows: A, columns: B)",
            [("label", "A \\ B"), *[(name, name) for name in labels]],
            confusion_rows,
        ),
    ]


def _only(part: dict[str, Any]) -> str:
    if not part["count"]:
        return "0"
    more = part["count"] - len(part["examples"])
    return f"{part['count']}: {', '.join(part['examples'])}" + (f" and {more} more" if more > 0 else "")

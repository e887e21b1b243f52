"""The Markdown model card that `agentpm model eval` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentpm.classifier.predictor import load_model
from agentpm.errors import WriteError
from agentpm.records.writing import write_new_file
from agentpm.templating import render


def refuse_card_overwrite(card: Path | None, force: bool) -> None:
    """Checked before a long evaluation, so it does not end in a refusal."""
    if card is not None and card.exists() and not force:
        raise WriteError(
            f"{card}: already exists; pass --force to replace the model card, --card PATH or --no-card"
        )


def write_model_card(result: dict[str, Any], card: Path, force: bool = False) -> None:
    write_new_file(card, render_model_card(result), overwrite=force)


def render_model_card(result: dict[str, Any]) -> str:
    """Render the evaluation result, with the model's provenance, as Markdown."""
    model = load_model(result["model"]["path"])
    return render("model-card.md.j2", {"result": result, "manifest": model.manifest, "hash": model.hash})


def provenance_rows(info: dict[str, Any]) -> list[dict[str, str]]:
    """`model info`'s table: one key/value row per fact of :meth:`Model.provenance`."""
    features = "; ".join(
        f"{b['name']} {b['analyzer']} {tuple(b['ngram_range'])} x{b['weight']} ({b['n_features']:,})"
        for b in info["features"]
    )
    versions = ", ".join(f"{name} {version}" for name, version in (info["versions"] or {}).items())
    taxonomy, corpus, thresholds, classifier = (
        info["taxonomy"],
        info["corpus"],
        info["thresholds"],
        info["classifier"],
    )
    facts = [
        ("path", info["path"]),
        ("model hash", info["hash"]),
        ("trained", info["trained_at"]),
        ("versions", f"agentpm {info['agentpm_version']}, {versions}"),
        ("taxonomy", f"{taxonomy['name']} v{taxonomy['version']} (sha256 {taxonomy['sha256'][:12]})"),
        ("corpus", f"{corpus['incidents']} labelled incidents (sha256 {corpus['sha256'][:12]})"),
        ("per class", ", ".join(f"{k} {v}" for k, v in corpus["per_class"].items())),
        ("classifier", f"{classifier['type']}; C={classifier['C']}, T={classifier['temperature']}"),
        ("features", features),
        ("selection", info["selection"]),
        (
            "abstains",
            f"below {thresholds['min_words']} words, top-two margin under {thresholds['margin']}, "
            f"confidence under {thresholds['confidence']}",
        ),
    ]
    cv = info.get("cv") or {}
    if cv:
        facts.append(
            (
                "grouped cross-validation",
                f"macro-F1 {cv['macro_f1']:.3f}, ECE {cv['ece']:.3f}, on the "
                f"{cv.get('scored_on', 'out-of-fold scores')}; labels {thresholds['cv_coverage']:.1%} at "
                f"{thresholds['cv_precision']:.1%} precision",
            )
        )
    facts += [(name, _score_line(scores)) for name, scores in (info.get("scores") or {}).items()]
    return [{"key": key, "value": "" if value is None else str(value)} for key, value in facts]


def _score_line(scores: dict[str, Any]) -> str:
    parts = [f"macro-F1 {scores['macro_f1']:.3f}"]
    if scores.get("macro_f1_95ci"):
        low, high = scores["macro_f1_95ci"]
        parts[0] += f" ({low:.3f}-{high:.3f})"
    if scores.get("coverage") is not None:
        parts.append(f"labels {scores['coverage']:.1%}")
    if scores.get("precision") is not None:
        parts.append(f"{scores['precision']:.1%} correct")
    if scores.get("n"):
        parts.append(f"n={scores['n']}")
    return ", ".join(parts)


SCORE_COLUMNS = [
    ("what", ""),
    ("n", "n"),
    ("macro_f1", "macro-F1"),
    ("ci", "95% CI"),
    ("kappa", "kappa"),
    ("ece", "ECE"),
    ("coverage", "coverage"),
    ("precision", "precision@threshold"),
]


def _score_row(scores: dict[str, Any]) -> dict[str, Any]:
    low, high = scores["macro_f1_95ci"]
    return {
        "what": scores["name"],
        "n": scores["n"],
        "macro_f1": f"{scores['macro_f1']:.3f}",
        "ci": f"{low:.3f}-{high:.3f}",
        "kappa": f"{scores['cohen_kappa']:.3f}",
        "ece": "" if scores["ece"] is None else f"{scores['ece']:.3f}",
        "coverage": f"{scores['coverage_at_threshold']:.1%}",
        "precision": ""
        if scores["precision_at_threshold"] is None
        else f"{scores['precision_at_threshold']:.1%}",
    }


def evaluation_tables(
    result: dict[str, Any],
) -> list[tuple[str, list[tuple[str, str]], list[dict[str, Any]]]]:
    """`model eval`'s tables as (title, columns, rows): the scores of every evaluated set, first
    the one the result names as headline, then per class and the confusion matrix of it."""
    order = result.get("order") or [
        key for key in result if isinstance(result[key], dict) and "macro_f1" in result[key]
    ]
    scored = [result[key] for key in order if key in result]
    tables = [
        (
            f"model {result['model']['hash']}: {result['method']}",
            SCORE_COLUMNS,
            [_score_row(scores) for scores in scored],
        )
    ]
    headline = result[result.get("headline", "cross_validated")]
    per_class = [
        {"category": name, **{k: f"{v:.3f}" if isinstance(v, float) else v for k, v in values.items()}}
        for name, values in headline["per_class"].items()
    ]
    tables.append(
        (
            f"per class ({headline['name']})",
            [
                ("category", "category"),
                ("precision", "precision"),
                ("recall", "recall"),
                ("f1", "F1"),
                ("support", "n"),
            ],
            per_class,
        )
    )
    classes = result["classes"]
    matrix = headline["confusion_matrix"]
    columns = [("human", "human \\ predicted")] + [(str(j), classes[j][:12]) for j in range(len(classes))]
    rows = []
    for i, name in enumerate(classes):
        counts = {str(j): matrix[i][j] for j in range(len(classes))}
        rows.append({"human": name, **counts})
    tables.append((f"confusion matrix ({headline['name']})", columns, rows))
    return tables

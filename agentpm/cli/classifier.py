"""`agentpm classify` and `agentpm model train|info|eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agentpm.cli.app import (
    MODEL_OPT,
    PATHS_ARG,
    TAXONOMY_OPT,
    app,
    load,
    model_app,
    paths_or_corpus,
    settings,
)
from agentpm.cli.output import (
    LIST_FORMATS,
    SHOW_FORMATS,
    Progress,
    StepProgress,
    emit,
    emit_table,
    format_option,
    note,
    report_problems,
    value,
)


@app.command("classify")
def classify_command(
    paths: list[Path] | None = PATHS_ARG,
    explain: bool = typer.Option(
        False, "--explain", help="Add the terms that drove the decision (and the runner-up's)."
    ),
    write: bool = typer.Option(
        False, "--write", help="Store each result in the file's `prediction` field (nothing else changes)."
    ),
    output_format: LIST_FORMATS = format_option(LIST_FORMATS),
    model: Path | None = MODEL_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Classify incidents into the taxonomy's categories, with calibrated confidence.

    Says "needs review" (category null, with a reason: insufficient_text, low_confidence or
    ambiguous) instead of guessing. Human `category` labels are shown beside the prediction
    and never changed.

    Example: agentpm classify corpus/ --format json --explain
    """
    from agentpm.classifier import classify as core
    from agentpm.records.parsing import exit_code_for
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy, model=model)
    loaded_taxonomy = load_taxonomy(chosen.taxonomy)
    predictor = core.model_for(chosen.model, loaded_taxonomy)
    with Progress("classifying") as progress:
        records, predictions = core.classify_files(
            paths_or_corpus(paths, chosen), loaded_taxonomy, predictor, explain=explain, progress=progress
        )
    rows = core.result_rows(records.records, predictions)
    emit(
        rows,
        output_format,
        core.TABLE_COLUMNS + ([core.EXPLAIN_COLUMN] if explain else []),
        title=core.table_title(rows, predictor),
        table_data=core.table_rows(rows, explain),
        csv_data=core.csv_rows(rows),
        csv_columns=core.csv_columns(predictor.classes),
    )
    problems = list(records.problems)
    if write:
        written, refused = core.write_predictions(records.records, predictions, predictor)
        problems += refused
        note(f"stored {written} predictions" + (f", {len(refused)} files refused" if refused else ""))
    report_problems(problems)
    raise typer.Exit(exit_code_for(problems))


@model_app.command("train")
def model_train(
    corpus_path: Path | None = typer.Option(None, "--corpus", help="Labelled corpus (default: configured)."),
    add: list[Path] | None = typer.Option(
        None,
        "--add",
        help="Your own labelled reports, added to the corpus with "
        "a weight chosen by cross-validation (repeatable).",
    ),
    only: Path | None = typer.Option(None, "--only", help="Train on your own labelled reports alone."),
    taxonomy: Path | None = TAXONOMY_OPT,
    output: Path = typer.Option(
        Path("agentpm-model"), "--output", "-o", help="Folder to write the model to."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing model folder at OUTPUT."),
) -> None:
    """Train the classifier on a labelled corpus and write a weights-only model folder.

    Reports modelled on public texts are split by source group: the test groups are never
    trained on; settings, temperature and the abstention threshold are chosen on grouped
    out-of-fold scores of the rest. --add DIR adapts the shipped settings to your reports
    (their weight, temperature and threshold chosen on their own out-of-fold scores); --only DIR
    trains on your reports alone. Set SOURCE_DATE_EPOCH for a reproducible training date.

    Example: agentpm model train --add our-postmortems/ -o models/ours
    """
    from agentpm.classifier.training import train, training_summary

    refuse_existing_model(output, force)
    corpus, loaded_taxonomy, chosen = load([only or corpus_path] if (only or corpus_path) else None, taxonomy)
    own = load_own(add, loaded_taxonomy) if add and not only else None
    report_problems(corpus.problems + (own.problems if own else []))
    with StepProgress("training") as progress:
        manifest = train(
            corpus,
            loaded_taxonomy,
            output,
            root=Path.cwd(),
            progress=progress,
            own=own,
            base_settings=base_settings(chosen.model) if own else None,
        )
    emit(None, "text", text=training_summary(manifest, output))


def eval_on(folder: Path, model: Path | None, against: Path | None, taxonomy: Path | None, fmt: Any) -> None:
    """`model eval --on DIR`: the model (and the one --against) on the user's labelled reports."""
    from agentpm.classifier.modelcard import evaluation_tables
    from agentpm.classifier.training import evaluate_on

    corpus, loaded_taxonomy, chosen = load([folder], taxonomy, model=model)
    report_problems(corpus.problems)
    models = [chosen.model] + ([against] if against else [])
    result = evaluate_on(corpus, loaded_taxonomy, models)
    if value(fmt) == "json":
        emit(result, "json")
        return
    for title, columns, rows in evaluation_tables(result):
        emit_table(rows, columns, title)


def refuse_existing_model(output: Path, force: bool) -> None:
    from agentpm.errors import WriteError

    if output.exists() and not force:
        raise WriteError(
            f"{output}: already exists; pass --force to replace the model there, or choose another -o"
        )


def load_own(folders: list[Path], taxonomy: Any) -> Any:
    """The user's labelled reports from every --add folder, as one corpus."""
    from agentpm.records.corpus import load_corpus

    return load_corpus(folders, taxonomy=taxonomy)


def base_settings(model_path: Path) -> dict[str, Any]:
    from agentpm.classifier.predictor import load_model

    return dict(load_model(model_path).manifest["selection"]["chosen"])


@model_app.command("info")
def model_info(
    model: Path | None = MODEL_OPT,
    output_format: SHOW_FORMATS = format_option(SHOW_FORMATS),
) -> None:
    """Show where a model came from: versions, taxonomy, corpus, settings, thresholds, scores.

    Example: agentpm model info --format json
    """
    from agentpm.classifier.modelcard import provenance_rows
    from agentpm.classifier.predictor import load_model

    info = load_model(settings(model=model).model).provenance()
    emit(
        info,
        output_format,
        [("key", ""), ("value", "")],
        title="model provenance",
        table_data=provenance_rows(info),
    )


@model_app.command("eval")
def model_eval(
    corpus_path: Path | None = typer.Option(None, "--corpus", help="Labelled corpus (default: configured)."),
    model: Path | None = MODEL_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
    ood: Path | None = typer.Option(
        None, "--ood", help="Held-out reports in another register, never trained on."
    ),
    on: Path | None = typer.Option(
        None,
        "--on",
        help="Only score the model (and --against) on these labelled reports, trained on by neither.",
    ),
    against: Path | None = typer.Option(
        None, "--against", help="A second model to compare side by side (with --on)."
    ),
    repeats: int = typer.Option(2, "--repeats", min=1, max=20, help="Repeats of the grouped 5-fold split."),
    output_format: SHOW_FORMATS = format_option(SHOW_FORMATS),
    card: Path | None = typer.Option(
        Path("reports/model-card.md"), "--card", help="Where to write the model card."
    ),
    no_card: bool = typer.Option(False, "--no-card", help="Do not write a model card."),
    force: bool = typer.Option(False, "--force", help="Replace an existing model card."),
) -> None:
    """Evaluate the classifier, real-text figures first: the held-out real-text split, then
    grouped cross-validation, per register, the hand-written part, a keyword baseline, and OOD.
    Each with macro-F1 and a 95 % interval, coverage and precision at the threshold, ECE; and
    the precision and recall of the suggested secondary category. With --on DIR, only score
    the model (and --against OTHER, side by side) on your labelled reports.

    Example: agentpm model eval --on our-postmortems/ --model models/ours --against agentpm/models/default
    """
    from agentpm.classifier.modelcard import evaluation_tables, refuse_card_overwrite, write_model_card
    from agentpm.classifier.training import evaluate
    from agentpm.records.corpus import load_corpus

    if on is not None:
        return eval_on(on, model, against, taxonomy, output_format)
    written_card = None if no_card else card
    refuse_card_overwrite(written_card, force)
    corpus, loaded_taxonomy, chosen = load([corpus_path] if corpus_path else None, taxonomy, model=model)
    ood_corpus = load_corpus([ood], taxonomy=loaded_taxonomy) if ood is not None else None
    report_problems(corpus.problems + (ood_corpus.problems if ood_corpus else []))
    with StepProgress("evaluating") as progress:
        result = evaluate(
            corpus, loaded_taxonomy, chosen.model, ood=ood_corpus, repeats=repeats, progress=progress
        )
    if written_card:
        write_model_card(result, written_card, force)
        note(f"wrote {written_card}")
    if output_format == "json":
        emit(result, "json")
        return
    for title, columns, rows in evaluation_tables(result):
        emit_table(rows, columns, title)

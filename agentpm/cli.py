"""The agentpm command line: parse options, make one core call, print.

This is the only module that imports typer and rich, and the only place where errors
become messages and exit codes (0 ok, 1 findings, 2 usage error or unreadable input).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence

import typer

from agentpm import __version__
from agentpm.errors import AgentPMError, UsageError
from agentpm.parallel import GC_YOUNG_THRESHOLD

app = typer.Typer(
    name="agentpm",
    help="Post-mortems for AI-agent failures: classify, trend, report, scaffold and lint incident reports, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich-rendered help costs ~70 ms of imports on every --help.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
taxonomy_app = typer.Typer(help="Show the failure taxonomy.", no_args_is_help=True, rich_markup_mode=None,
                           context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(taxonomy_app, name="taxonomy")
model_app = typer.Typer(help="Train, evaluate and inspect the classifier.", no_args_is_help=True, rich_markup_mode=None,
                        context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(model_app, name="model")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class ShowFormat(str, Enum):
    table = "table"
    json = "json"


class TaxonomyFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


MODEL_OPT = typer.Option(None, "--model", help="Model folder (default: configured, else the shipped one).",
                         show_default=False)
PATHS_ARG = typer.Argument(None, help="Incident files or folders (searched recursively). Default: the configured corpus.",
                           show_default=False)
TAXONOMY_OPT = typer.Option(None, "--taxonomy", help="Taxonomy file (default: configured, else the shipped one).",
                            show_default=False)


# -- output helpers -----------------------------------------------------------------------

def _stdout_console():
    from rich.console import Console

    # A pipe gets a wide, colourless table instead of one wrapped at 80 columns.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False, soft_wrap=False)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _emit_json(data: Any) -> None:
    if isinstance(data, list) and data:
        # One record per line: still valid JSON and easy to grep, and the C encoder (no indent)
        # is ten times faster on the thousands of rows a batch produces.
        lines = ",\n".join("  " + json.dumps(item, ensure_ascii=False, default=str) for item in data)
        sys.stdout.write("[\n" + lines + "\n]\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _emit_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: ";".join(map(str, value)) if isinstance(value, list) else value
                         for key, value in row.items()})
    sys.stdout.write(buffer.getvalue())


def _emit_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: Optional[str] = None) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key)
            cells.append(", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value)))
        table.add_row(*cells)
    _stdout_console().print(table)


class _Progress:
    """A progress bar on stderr for long runs on a terminal; silent otherwise.

    The bar starts on the first update, once the total is known, so nobody walks the folders
    twice to count files, and no bar thread exists yet when worker processes are forked.
    """

    def __init__(self, label: str, minimum: int = 50):
        self.label = label
        self.minimum = minimum
        self.bar: Any = None
        self.checked = False

    def __enter__(self) -> "_Progress":
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.checked:
            self.checked = True
            if total >= self.minimum and sys.stderr.isatty():
                from rich.console import Console
                from rich.progress import Progress

                self.bar = Progress(console=Console(stderr=True), transient=True)
                self.task = self.bar.add_task(self.label, total=total)
                self.bar.start()
        if self.bar:
            self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.stop()


def _report_problems(problems: Iterable[Any]) -> None:
    for problem in problems:
        _stderr(str(problem))


def _settings(**overrides: Any):
    from agentpm.config import load_settings

    return load_settings(overrides)


def _paths_or_corpus(paths: Optional[List[Path]], settings: Any) -> List[Path]:
    if paths:
        return list(paths)
    if not Path(settings.corpus).exists():
        raise UsageError(f"no paths given and the configured corpus {settings.corpus} does not exist "
                         f"(set by {settings.origin.get('corpus', 'default')}); pass files or folders")
    return [Path(settings.corpus)]


def _load(paths: Optional[List[Path]], taxonomy: Optional[Path], **overrides: Any):
    from agentpm.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    settings = _settings(taxonomy=taxonomy, **overrides)
    loaded_taxonomy = load_taxonomy(settings.taxonomy)
    with _Progress("reading") as progress:
        corpus = load_corpus(_paths_or_corpus(paths, settings), taxonomy=loaded_taxonomy, progress=progress)
    return corpus, loaded_taxonomy, settings


# -- commands -----------------------------------------------------------------------------

def _version(value: bool) -> None:
    if value:
        print(f"agentpm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Post-mortems for AI-agent failures: classify, trend, report, scaffold and lint incident reports, offline."""


@app.command()
def validate(
    paths: Optional[List[Path]] = PATHS_ARG,
    output_format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Parse incident files and report every problem as file:line: message.

    Exit code 0 when every file is a valid incident, 1 when some are invalid, 2 when some
    cannot be read at all.

    Example: agentpm validate corpus/ --format json
    """
    corpus, _, _ = _load(paths, taxonomy)
    problems = sorted(corpus.problems, key=lambda p: (p.path, p.line or 0))
    if output_format is Format.json:
        by_path: dict[str, list[dict[str, Any]]] = {}
        for problem in problems:
            by_path.setdefault(problem.path, []).append(problem.to_dict())
        results = [{"path": str(incident.path), "valid": True, "problems": []} for incident in corpus.incidents]
        results += [{"path": path, "valid": False, "problems": found} for path, found in by_path.items()]
        _emit_json(sorted(results, key=lambda item: item["path"]))
    elif output_format is Format.csv:
        _emit_csv([problem.to_dict() for problem in problems], ["path", "line", "kind", "field", "message"])
    else:
        for problem in problems:
            print(str(problem))
    bad_files = len({problem.path for problem in problems})
    unreadable = len({problem.path for problem in problems if problem.kind == "unreadable"})
    if problems:
        _stderr(f"{corpus.files_read} files checked: {len(corpus.incidents)} valid, "
                f"{bad_files - unreadable} invalid, {unreadable} unreadable")
    else:
        _stderr(f"{corpus.files_read} files checked: all valid")
    raise typer.Exit(corpus.exit_code)


LIST_COLUMNS = [("id", "ID"), ("date", "Date"), ("severity", "Sev"), ("category", "Category"),
                ("title", "Title"), ("path", "Path")]


@app.command("list")
def list_incidents(
    paths: Optional[List[Path]] = PATHS_ARG,
    output_format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """List incidents, one row each: id, date, severity, category, title, path.

    Files with problems are skipped and reported on stderr (exit code 1 or 2).

    Example: agentpm list corpus/ --format csv > incidents.csv
    """
    corpus, _, _ = _load(paths, taxonomy)
    rows = sorted((incident.summary_row() for incident in corpus.incidents),
                  key=lambda row: (row["date"] or "", row["path"] or ""))
    if output_format is Format.json:
        _emit_json(rows)
    elif output_format is Format.csv:
        _emit_csv(rows, ["path", "id", "title", "date", "severity", "status", "category", "secondary", "predicted",
                         "format"])
    else:
        _emit_table(rows, LIST_COLUMNS, title=f"{len(rows)} incidents")
    _report_problems(corpus.problems)
    raise typer.Exit(corpus.exit_code)


@app.command()
def schema(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
    force: bool = typer.Option(False, "--force", help="Replace OUTPUT if it exists."),
) -> None:
    """Print the JSON Schema of an incident record, for editors that validate front matter.

    Example: agentpm schema -o incident.schema.json
    """
    from agentpm.incident import incident_json_schema
    from agentpm.writing import write_new_file

    text = json.dumps(incident_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_new_file(output, text, overwrite=force)
        _stderr(f"wrote {output}")


@taxonomy_app.command("show")
def taxonomy_show(
    category_id: Optional[str] = typer.Argument(None, metavar="[ID]", help="Show only this category."),
    output_format: TaxonomyFormat = typer.Option(TaxonomyFormat.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Show the failure taxonomy, or one category with its guidance and crosswalk.

    Example: agentpm taxonomy show tool-api-drift --format yaml
    """
    from agentpm.taxonomy import load_taxonomy

    loaded = load_taxonomy(_settings(taxonomy=taxonomy).taxonomy)
    categories = [loaded.get(category_id)] if category_id else loaded.categories
    if output_format is not TaxonomyFormat.table:
        payload: Any = {"version": loaded.version, "name": loaded.name,
                        "categories": [category.model_dump() for category in categories]}
        if category_id:
            payload = categories[0].model_dump()
        if output_format is TaxonomyFormat.json:
            _emit_json(payload)
        else:
            import yaml

            sys.stdout.write(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=100))
        return
    if not category_id:
        rows = [{"id": c.id, "name": c.name, "typical_impact": c.typical_impact,
                 "crosswalk": sorted({m.scheme + ":" + m.code for m in c.crosswalk})} for c in categories]
        _emit_table(rows, [("id", "ID"), ("name", "Name"), ("typical_impact", "Typical impact"),
                           ("crosswalk", "Crosswalk")], title=f"{loaded.name} v{loaded.version}")
        return
    from rich.markdown import Markdown

    category = categories[0]
    parts = [f"# {category.name} (`{category.id}`)", category.description, f"**Typical impact:** {category.typical_impact}",
             "## Common scenarios", *[f"- {s}" for s in category.scenarios],
             "## Prevention", *[f"- {s}" for s in category.prevention],
             "## Labelling notes", *[f"- {s}" for s in category.labelling_notes]]
    if category.record:
        parts += ["## A post-mortem of this kind records", *[f"- {hint.hint}" for hint in category.record]]
    if category.crosswalk:
        parts += ["## Crosswalk", "| scheme | code | name | relation | note |", "|---|---|---|---|---|",
                  *[f"| {m.scheme} | {m.code} | {m.name or ''} | {m.relation} | {m.note} |" for m in category.crosswalk]]
    _stdout_console().print(Markdown("\n\n".join(parts[:3]) + "\n\n" + "\n".join(parts[3:])))


CLASSIFY_COLUMNS = [("path", "Path"), ("human_category", "Human label"), ("shown", "Prediction"),
                    ("confidence", "Confidence"), ("runner_up", "Runner-up")]


@app.command("classify")
def classify_command(
    paths: Optional[List[Path]] = PATHS_ARG,
    explain: bool = typer.Option(False, "--explain", help="Add the terms that drove the decision (and the runner-up's)."),
    write: bool = typer.Option(False, "--write", help="Store each result in the file's `prediction` field (nothing else changes)."),
    output_format: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
    model: Optional[Path] = MODEL_OPT,
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Classify incidents into the taxonomy's categories, with calibrated confidence.

    Says "needs review" (category null, with a reason: insufficient_text, low_confidence or
    ambiguous) instead of guessing. Human `category` labels are shown beside the prediction
    and never changed.

    Example: agentpm classify corpus/ --format json --explain
    """
    from agentpm.classify import load_and_classify, model_for, write_predictions
    from agentpm.parsing import exit_code_for
    from agentpm.taxonomy import load_taxonomy

    settings = _settings(taxonomy=taxonomy, model=model)
    loaded_taxonomy = load_taxonomy(settings.taxonomy)
    predictor = model_for(settings.model, loaded_taxonomy)
    with _Progress("classifying") as progress:
        corpus, predictions = load_and_classify(_paths_or_corpus(paths, settings), loaded_taxonomy, predictor,
                                                explain=explain, progress=progress)
    rows = []
    for incident, prediction in zip(corpus.incidents, predictions):
        row = prediction.to_dict()
        row["human_category"] = incident.category
        rows.append(row)
    if output_format is Format.json:
        _emit_json(rows)
    elif output_format is Format.csv:
        flat = [{**{key: value for key, value in row.items() if key not in ("probabilities", "explanation")},
                 **{f"p_{name}": p for name, p in row["probabilities"].items()}} for row in rows]
        _emit_csv(flat, ["path", "id", "category", "confidence", "abstained", "reason", "runner_up", "human_category",
                         *[f"p_{name}" for name in predictor.classes]])
    else:
        for row in rows:
            row["shown"] = row["category"] or f"needs review ({row['reason']})"
            row["confidence"] = f"{row['confidence']:.2f}"
            if explain and row.get("explanation"):
                first = next(iter(row["explanation"].values()))
                row["why"] = ", ".join(term["term"].strip() for term in first[:5])
        columns = CLASSIFY_COLUMNS + ([("why", "Top terms")] if explain else [])
        abstained = sum(1 for row in rows if row["abstained"])
        _emit_table(rows, columns, title=f"{len(rows)} incidents, {abstained} need review (model {predictor.hash})")
    problems = list(corpus.problems)
    if write:
        written, refused = write_predictions(corpus.incidents, predictions, predictor)
        problems += refused
        _stderr(f"stored {written} predictions" + (f", {len(refused)} files refused" if refused else ""))
    _report_problems(problems)
    raise typer.Exit(exit_code_for(problems))


@model_app.command("train")
def model_train(
    corpus_path: Optional[Path] = typer.Option(None, "--corpus", help="Labelled corpus (default: configured)."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
    output: Path = typer.Option(Path("agentpm-model"), "--output", "-o", help="Folder to write the model to."),
    force: bool = typer.Option(False, "--force", help="Replace an existing model folder at OUTPUT."),
) -> None:
    """Train the classifier on a labelled corpus and write a weights-only model folder.

    Settings are chosen by stratified 5-fold cross-validation; the temperature and the
    abstention threshold (labelled reports at least 95 % correct, by the lower end of a 95 %
    Wilson interval) come from the out-of-fold
    scores. Set SOURCE_DATE_EPOCH for a reproducible training date.

    Example: agentpm model train --corpus corpus/ -o models/ours
    """
    from agentpm.errors import WriteError

    if output.exists() and not force:
        raise WriteError(f"{output}: already exists; pass --force to replace the model there, or choose another -o")
    corpus, loaded_taxonomy, _ = _load([corpus_path] if corpus_path else None, taxonomy)
    _report_problems(corpus.problems)
    if corpus.problems:
        _stderr(f"agentpm: training on the {len(corpus.incidents)} valid files; {len(corpus.problems)} problems above were skipped")
    from agentpm.training import train

    manifest = train(corpus, loaded_taxonomy, output, root=Path.cwd(), progress=lambda message: _stderr(f"agentpm: {message}"))
    chosen = manifest["selection"]["chosen"]
    thresholds = manifest["thresholds"]
    print(f"wrote {output} (model {_model_hash(output)})")
    print(f"  trained on {manifest['corpus']['incidents']} labelled incidents; chosen by {manifest['selection']['method']}: "
          f"C={chosen['C']}, context weight={chosen['context_weight']}, char n-grams={tuple(chosen['char_ngram_range'])}")
    print(f"  cross-validated macro-F1 {manifest['cv']['macro_f1']:.3f}, ECE {manifest['cv']['ece']:.3f}, "
          f"temperature {manifest['classifier']['temperature']:.3f}")
    print(f"  threshold {thresholds['confidence']:.2f}: labels {thresholds['cv_coverage']:.1%} of reports at "
          f"{thresholds['cv_precision']:.1%} precision (cross-validated)")


def _model_hash(path: Path) -> str:
    from agentpm.model import load_model

    return load_model(path).hash


@model_app.command("info")
def model_info(
    model: Optional[Path] = MODEL_OPT,
    output_format: ShowFormat = typer.Option(ShowFormat.table, "--format", "-f", help="Output format."),
) -> None:
    """Show where a model came from: versions, taxonomy, corpus, settings, thresholds, CV figures.

    Example: agentpm model info --format json
    """
    from agentpm.model import load_model

    settings = _settings(model=model)
    loaded = load_model(settings.model)
    manifest = loaded.manifest
    info = {
        "path": str(settings.model), "hash": loaded.hash, "trained_at": manifest.get("trained_at"),
        "agentpm_version": manifest.get("agentpm_version"), "versions": manifest.get("versions"),
        "taxonomy": manifest.get("taxonomy"), "corpus": manifest.get("corpus"),
        "classifier": manifest.get("classifier"), "settings": manifest["selection"]["chosen"],
        "selection": manifest["selection"]["method"], "features": [
            {key: block[key] for key in ("name", "analyzer", "ngram_range", "weight", "n_features")}
            for block in manifest["features"]["blocks"]],
        "thresholds": manifest.get("thresholds"), "cv": manifest.get("cv"),
    }
    if output_format is ShowFormat.json:
        _emit_json(info)
        return
    rows = [
        {"key": "path", "value": info["path"]}, {"key": "model hash", "value": loaded.hash},
        {"key": "trained", "value": info["trained_at"]},
        {"key": "versions", "value": f"agentpm {info['agentpm_version']}, " + ", ".join(
            f"{name} {version}" for name, version in (info["versions"] or {}).items())},
        {"key": "taxonomy", "value": f"{info['taxonomy']['name']} v{info['taxonomy']['version']} "
                                     f"(sha256 {info['taxonomy']['sha256'][:12]})"},
        {"key": "corpus", "value": f"{info['corpus']['incidents']} labelled incidents (sha256 {info['corpus']['sha256'][:12]})"},
        {"key": "per class", "value": ", ".join(f"{k} {v}" for k, v in info["corpus"]["per_class"].items())},
        {"key": "classifier", "value": f"{info['classifier']['type']}; C={info['classifier']['C']}, "
                                       f"T={info['classifier']['temperature']}"},
        {"key": "features", "value": "; ".join(f"{b['name']} {b['analyzer']} {tuple(b['ngram_range'])} x{b['weight']} "
                                               f"({b['n_features']:,})" for b in info["features"])},
        {"key": "selection", "value": info["selection"]},
        {"key": "abstains", "value": f"below {info['thresholds']['min_words']} words, top-two margin under "
                                     f"{info['thresholds']['margin']}, confidence under {info['thresholds']['confidence']}"},
        {"key": "cross-validated", "value": f"macro-F1 {info['cv']['macro_f1']}, ECE {info['cv']['ece']}, coverage "
                                            f"{info['thresholds']['cv_coverage']:.1%} at precision "
                                            f"{info['thresholds']['cv_precision']:.1%}"},
    ]
    _emit_table(rows, [("key", ""), ("value", "")], title="model provenance")


@model_app.command("eval")
def model_eval(
    corpus_path: Optional[Path] = typer.Option(None, "--corpus", help="Labelled corpus (default: configured)."),
    model: Optional[Path] = MODEL_OPT,
    taxonomy: Optional[Path] = TAXONOMY_OPT,
    ood: Optional[Path] = typer.Option(None, "--ood", help="Held-out reports in another register, never trained on."),
    repeats: int = typer.Option(3, "--repeats", min=1, max=20, help="Repeats of the stratified 5-fold split."),
    output_format: ShowFormat = typer.Option(ShowFormat.table, "--format", "-f", help="Output format."),
    card: Optional[Path] = typer.Option(Path("reports/model-card.md"), "--card", help="Where to write the model card."),
    no_card: bool = typer.Option(False, "--no-card", help="Do not write a model card."),
    force: bool = typer.Option(False, "--force", help="Replace an existing model card."),
) -> None:
    """Evaluate the classifier: repeated stratified k-fold macro-F1 with a 95 % interval,
    per-class precision/recall/F1, confusion matrix, calibration (ECE), coverage and precision
    at the threshold, Cohen's kappa, the same for a keyword baseline, and OOD figures.

    Example: agentpm model eval --ood tests/data/ood --card reports/model-card.md --force
    """
    from agentpm.errors import WriteError

    if card and not no_card and card.exists() and not force:
        raise WriteError(f"{card}: already exists; pass --force to replace the model card, --card PATH or --no-card")
    corpus, loaded_taxonomy, settings = _load([corpus_path] if corpus_path else None, taxonomy, model=model)
    ood_corpus = None
    if ood is not None:
        from agentpm.corpus import load_corpus

        ood_corpus = load_corpus([ood], taxonomy=loaded_taxonomy)
        corpus.problems.extend(ood_corpus.problems)
    _report_problems(corpus.problems)
    from agentpm.training import evaluate

    result = evaluate(corpus, loaded_taxonomy, settings.model, ood=ood_corpus, repeats=repeats,
                      progress=lambda message: _stderr(f"agentpm: {message}"))
    if card and not no_card:
        from agentpm.modelcard import render_model_card
        from agentpm.writing import write_new_file

        write_new_file(card, render_model_card(result), overwrite=force)
        _stderr(f"wrote {card}")
    if output_format is ShowFormat.json:
        _emit_json(result)
        return
    rows = []
    for key in ("cross_validated", "keyword_baseline", "out_of_distribution", "out_of_distribution_keyword_baseline"):
        if key in result:
            scores = result[key]
            rows.append({"what": scores["name"], "n": scores["n"], "macro_f1": f"{scores['macro_f1']:.3f}",
                         "ci": f"{scores['macro_f1_95ci'][0]:.3f}-{scores['macro_f1_95ci'][1]:.3f}",
                         "kappa": f"{scores['cohen_kappa']:.3f}",
                         "ece": "" if scores["ece"] is None else f"{scores['ece']:.3f}",
                         "coverage": f"{scores['coverage_at_threshold']:.1%}",
                         "precision": "" if scores["precision_at_threshold"] is None else f"{scores['precision_at_threshold']:.1%}"})
    _emit_table(rows, [("what", ""), ("n", "n"), ("macro_f1", "macro-F1"), ("ci", "95% CI"), ("kappa", "kappa"),
                       ("ece", "ECE"), ("coverage", "coverage"), ("precision", "precision@threshold")],
                title=f"model {result['model']['hash']}: {result['method']}")
    per_class = result["cross_validated"]["per_class"]
    _emit_table([{"category": name, **{k: f"{v:.3f}" if isinstance(v, float) else v for k, v in values.items()}}
                 for name, values in per_class.items()],
                [("category", "category"), ("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                 ("support", "n")], title="per class (cross-validated)")
    classes = result["classes"]
    matrix = result["cross_validated"]["confusion_matrix"]
    _emit_table([{"human": name, **{str(j): matrix[i][j] for j in range(len(classes))}} for i, name in enumerate(classes)],
                [("human", "human \\ predicted")] + [(str(j), classes[j][:12]) for j in range(len(classes))],
                title="confusion matrix (cross-validated)")


# -- entry point --------------------------------------------------------------------------

def main() -> None:
    """Console-script entry: run the app and turn agentpm errors into one-line messages."""
    # A run is short and builds thousands of small objects that live to the end (records,
    # predictions, rows); young-generation collections every 700 allocations kept walking
    # them, a tenth of a large classify's time. Cycles are still collected, just less often.
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    try:
        app()
    except AgentPMError as exc:
        _stderr(f"agentpm: error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _stderr("agentpm: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # `agentpm list | head`: the reader went away; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
        if os.environ.get("AGENTPM_DEBUG"):
            raise
        _stderr(f"agentpm: internal error: {type(exc).__name__}: {exc} (set AGENTPM_DEBUG=1 for the traceback, "
                "and please report it)")
        sys.exit(2)


# Command groups that live in their own modules register themselves on `app` at import;
# they keep heavy imports inside their functions, so this costs no start-up time.
from agentpm import cli_postmortem, cli_report  # noqa: E402,F401

"""Classify incidents with the numpy predictor, and store the results on request."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from agentpm.classifier.predictor import Model, Prediction, load_model
from agentpm.errors import AgentPMError
from agentpm.parallel import map_batched
from agentpm.records.cache import Record, Records, load_records
from agentpm.records.corpus import Corpus, discover, load_files
from agentpm.records.incident import Incident
from agentpm.records.parsing import ParseResult, Problem, parse_file
from agentpm.records.quick import TextView
from agentpm.records.store import store_prediction
from agentpm.taxonomy import Taxonomy

#: Files a worker parses and then scores together: one of the model's batches.
BATCH = Model.BATCH


def model_for(path: Path | str, taxonomy: Taxonomy) -> Model:
    """Load a model and check that it was trained for this taxonomy."""
    model = load_model(path)
    model.check_taxonomy(taxonomy)
    return model


#: Below this many files a second process costs more than it saves.
PARALLEL_MINIMUM = 200
_worker_state: dict = {}


def _parse_and_predict(paths: list[Path]) -> list[tuple[ParseResult, Prediction | None]]:
    results = [parse_file(path) for path in paths]
    model, explain = _worker_state["model"], _worker_state["explain"]
    return list(
        zip(
            results,
            model.predict_parsed([result.incident for result in results], explain=explain),
            strict=False,
        )
    )


def load_and_classify(
    paths: list[Path],
    taxonomy: Taxonomy,
    model: Model,
    explain: bool = False,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Corpus, list[Prediction]]:
    """Parse and classify many files, on every core when there are enough of them.

    Workers are forked with the model already loaded; corpus-wide checks (taxonomy, duplicate
    ids) still run once, in order, in this process, so the result equals the sequential one.
    """
    files, problems = discover(paths)
    _worker_state.update(model=model, explain=explain)
    outcomes = map_batched(_parse_and_predict, files, BATCH, PARALLEL_MINIMUM, progress, jobs)
    by_path = dict(zip(files, outcomes, strict=False))
    corpus = load_files(files, problems, taxonomy=taxonomy, parse=lambda path: by_path[path][0])
    predicted = {
        id(by_path[path][0].incident): by_path[path][1] for path in files if by_path[path][0].incident
    }
    return corpus, [predicted[id(incident)] for incident in corpus.incidents]


class _EveryFile:
    """Labeller for :func:`classify_files`: the model's whole prediction for every file."""

    def __init__(self, model: Model, explain: bool):
        self.model, self.explain = model, explain

    def wants(self, category: str | None, stored: bool) -> bool:
        return True

    def __call__(self, incidents: list[Incident | TextView | None]) -> list[tuple[str, Prediction] | None]:
        return [
            (self.model.hash, prediction) if prediction is not None else None
            for prediction in self.model.predict_parsed(incidents, explain=self.explain)
        ]


def classify_files(
    paths: list[Path],
    taxonomy: Taxonomy,
    model: Model,
    explain: bool = False,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Records, list[Prediction]]:
    """:func:`load_and_classify` for callers that need no prose back: the workers send each
    file's light record and prediction, not the parsed incident (whose pickling was the main
    cost left in this process). Same records, problems and predictions, in the same order."""
    records = load_records(
        paths,
        taxonomy,
        progress=progress,
        workers=jobs,
        labeller=_EveryFile(model, explain),
        parallel_minimum=PARALLEL_MINIMUM,
        batch=BATCH,
    )
    predictions = []
    for record in records.records:
        made = records.labelled.get(record.key)
        if made is None:  # the worker could not label it (it changed since): label it here
            made = (model.hash, model.predict_parsed([parse_file(record.path).incident], explain=explain)[0])
        predictions.append(made[1])
    return records, predictions


def stored_record(prediction: Prediction, model: Model, at: datetime | None = None) -> dict:
    """What `--write` puts in a file's ``prediction`` field."""
    moment = (at or datetime.now(timezone.utc)).replace(microsecond=0)
    return {
        "category": prediction.category,
        "confidence": round(prediction.confidence, 4),
        "model": model.hash,
        "at": moment.isoformat().replace("+00:00", "Z"),
    }


def write_predictions(
    incidents: Iterable[Incident | Record], predictions: Iterable[Prediction], model: Model
) -> tuple[int, list[Problem]]:
    """Store each prediction in its file; returns how many were written and the files refused."""
    written, refused = 0, []
    at = datetime.now(timezone.utc)
    for incident, prediction in zip(incidents, predictions, strict=False):
        if incident.path is None:
            continue
        try:
            store_prediction(
                Path(incident.path), stored_record(prediction, model, at), expected_title=incident.title
            )
            written += 1
        except AgentPMError as exc:
            refused.append(Problem(str(incident.path), str(exc).split(": ", 1)[-1], None, "invalid"))
    return written, refused


# -- rows for output ------------------------------------------------------------------------

TABLE_COLUMNS = [
    ("path", "Path"),
    ("human_category", "Human label"),
    ("shown", "Prediction"),
    ("confidence", "Confidence"),
    ("runner_up", "Runner-up"),
]
EXPLAIN_COLUMN = ("why", "Top terms")


def result_rows(incidents: Iterable[Incident | Record], predictions: Iterable[Prediction]) -> list[dict]:
    """One JSON-ready row per classified incident, the human label beside the prediction."""
    return [
        {**prediction.to_dict(), "human_category": incident.category}
        for incident, prediction in zip(incidents, predictions, strict=False)
    ]


def csv_rows(rows: Iterable[dict]) -> list[dict]:
    """Rows flattened for CSV: one ``p_<category>`` column per class, no nested values."""
    return [
        {
            **{key: value for key, value in row.items() if key not in ("probabilities", "explanation")},
            **{f"p_{name}": p for name, p in row["probabilities"].items()},
        }
        for row in rows
    ]


def csv_columns(classes: Iterable[str]) -> list[str]:
    return [
        "path",
        "id",
        "category",
        "confidence",
        "abstained",
        "reason",
        "runner_up",
        "secondary",
        "human_category",
        *[f"p_{name}" for name in classes],
    ]


def table_rows(rows: Iterable[dict], explain: bool) -> list[dict]:
    """Rows for the terminal table: "needs review (reason)" for abstentions, top terms when explaining."""
    shown = []
    for row in rows:
        display = {
            **row,
            "shown": row["category"] or f"needs review ({row['reason']})",
            "confidence": f"{row['confidence']:.2f}",
        }
        if explain and row.get("explanation"):
            first = next(iter(row["explanation"].values()))
            display["why"] = ", ".join(term["term"].strip() for term in first[:5])
        shown.append(display)
    return shown


def table_title(rows: list[dict], model: Model) -> str:
    abstained = sum(1 for row in rows if row["abstained"])
    return f"{len(rows)} incidents, {abstained} need review (model {model.hash})"

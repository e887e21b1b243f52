"""Classify incidents with the numpy predictor, and store the results on request."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional

from agentpm.errors import AgentPMError
from agentpm.incident import Incident
from agentpm.model import Model, Prediction, load_model
from agentpm.parsing import Problem
from agentpm.store import store_prediction
from agentpm.taxonomy import Taxonomy


def model_for(path: Path | str, taxonomy: Taxonomy) -> Model:
    """Load a model and check that it was trained for this taxonomy."""
    model = load_model(path)
    model.check_taxonomy(taxonomy)
    return model


def classify(incidents: Iterable[Incident], model: Model, explain: bool = False,
             progress: Optional[Callable[[int], None]] = None) -> list[Prediction]:
    predictions = []
    for number, incident in enumerate(incidents, 1):
        predictions.append(model.predict(incident, explain=explain))
        if progress:
            progress(number)
    return predictions


def stored_record(prediction: Prediction, model: Model, at: Optional[datetime] = None) -> dict:
    """What `--write` puts in a file's ``prediction`` field."""
    moment = (at or datetime.now(timezone.utc)).replace(microsecond=0)
    return {"category": prediction.category, "confidence": round(prediction.confidence, 4),
            "model": model.hash, "at": moment.isoformat().replace("+00:00", "Z")}


def write_predictions(incidents: Iterable[Incident], predictions: Iterable[Prediction], model: Model) -> tuple[int, list[Problem]]:
    """Store each prediction in its file; returns how many were written and the files refused."""
    written, refused = 0, []
    at = datetime.now(timezone.utc)
    for incident, prediction in zip(incidents, predictions):
        if incident.path is None:
            continue
        try:
            store_prediction(incident.path, stored_record(prediction, model, at), expected_title=incident.title)
            written += 1
        except AgentPMError as exc:
            refused.append(Problem(str(incident.path), str(exc).split(": ", 1)[-1], None, "invalid"))
    return written, refused

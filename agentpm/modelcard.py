"""The Markdown model card that `agentpm model eval` writes."""

from __future__ import annotations

from typing import Any

from agentpm.model import load_model
from agentpm.templating import render


def render_model_card(result: dict[str, Any]) -> str:
    """Render the evaluation result, with the model's provenance, as Markdown."""
    model = load_model(result["model"]["path"])
    return render("model-card.md.j2", {"result": result, "manifest": model.manifest, "hash": model.hash})

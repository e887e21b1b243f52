"""agentpm: post-mortems for AI-agent failures, offline.

The public API is small and loaded lazily, so ``agentpm --help`` stays instant::

    from agentpm import load_corpus, load_taxonomy
    corpus = load_corpus(["corpus/"], taxonomy=load_taxonomy("taxonomy/taxonomy.yaml"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AgentPMError": "agentpm.errors",
    "Incident": "agentpm.records.incident",
    "ActionItem": "agentpm.records.incident",
    "Problem": "agentpm.records.parsing",
    "parse_file": "agentpm.records.parsing",
    "Corpus": "agentpm.records.corpus",
    "load_corpus": "agentpm.records.corpus",
    "Taxonomy": "agentpm.taxonomy",
    "load_taxonomy": "agentpm.taxonomy",
    "Prediction": "agentpm.classifier.predictor",
    "load_model": "agentpm.classifier.predictor",
    "Settings": "agentpm.config",
    "load_settings": "agentpm.config",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from agentpm.classifier.predictor import Prediction, load_model
    from agentpm.config import Settings, load_settings
    from agentpm.errors import AgentPMError
    from agentpm.records.corpus import Corpus, load_corpus
    from agentpm.records.incident import ActionItem, Incident
    from agentpm.records.parsing import Problem, parse_file
    from agentpm.taxonomy import Taxonomy, load_taxonomy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentpm' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

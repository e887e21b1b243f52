"""What names a model folder's files and the model itself, without loading it: read by commands
that report which model labelled what (trends, report) and must not pay for numpy to say so."""

from __future__ import annotations

import hashlib
import json
from typing import Any

MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"


def model_hash(manifest_bytes: bytes, weights_bytes: bytes, weights_digest: Any = None) -> str:
    """A short hash of what determines predictions: the weights and the manifest, minus timings.

    ``weights_digest``: ``hashlib.sha256(weights_bytes)`` when the caller already has it.
    """
    manifest = json.loads(manifest_bytes)
    # When and how long training ran does not change a single prediction.
    manifest.pop("trained_at", None)
    manifest.pop("training_seconds", None)
    digest = weights_digest.copy() if weights_digest is not None else hashlib.sha256(weights_bytes)
    digest.update(json.dumps(manifest, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]

"""Where a labelled report's text came from, for training and judging the model honestly.

Reports modelled on a public text carry ``source`` (``owner/repo#number`` or a URL) and
``source_kind``; their *source group* is the repository or web site. Reports of one group
are never split between training and test (grouped folds, and the real-text test split),
because reports from one repository share vocabulary a model could memorise. Hand-written
reports have no source; each is a group of its own. The real-text test split is marked in
each file (``split: test``) and is never used for training, settings, temperature or
threshold.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:  # pragma: no cover
    from agentpm.records.incident import Incident

REGISTERS = {
    "issue": "informal",
    "pr": "informal",
    "chat": "informal",
    "writeup": "writeup",
    "record": "record",
}
HANDWRITTEN = "hand-written"
_GITHUB = re.compile(r"^https?://github\.com/([^/]+/[^/#?]+)", re.IGNORECASE)


def extra(incident: Incident, key: str) -> Any:
    return (incident.model_extra or {}).get(key)


def source_group(source: str) -> str:
    """The repository (``owner/repo``) or web site (host without ``www.``) of a source."""
    source = source.strip()
    found = _GITHUB.match(source)
    if found:
        return found.group(1).lower()
    if "://" in source:
        host = urlparse(source).netloc.lower()
        return host[4:] if host.startswith("www.") else host
    return source.split("#")[0].strip().lower()


def group_of(incident: Incident) -> str:
    """The source group of a modelled report; the file itself for a hand-written one."""
    source = extra(incident, "source")
    if isinstance(source, str) and source.strip():
        return source_group(source)
    return f"file:{incident.path}"


def is_modelled(incident: Incident) -> bool:
    """Modelled on a real public text (it names its source)."""
    source = extra(incident, "source")
    return isinstance(source, str) and bool(source.strip())


def register_of(incident: Incident) -> str:
    """informal (issue, PR, chat), writeup, record, or hand-written."""
    if not is_modelled(incident):
        return HANDWRITTEN
    return REGISTERS.get(str(extra(incident, "source_kind") or "").strip().lower(), "informal")


def in_test_split(incident: Incident) -> bool:
    return str(extra(incident, "split") or "").strip().lower() == "test"

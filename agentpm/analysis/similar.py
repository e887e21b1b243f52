"""The core of `agentpm similar`: past incidents most like this one, and their unfinished fixes.

Similarity is TF-IDF cosine over each incident's title and prose, fitted on the corpus
being searched, so rare shared words (a vendor, an API field, a tool name) weigh more
than the vocabulary every post-mortem shares.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from agentpm.errors import InputError
from agentpm.records.incident import Incident
from agentpm.records.parsing import parse_file


@dataclass
class Match:
    incident: Incident
    score: float
    open_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def row(self) -> dict[str, Any]:
        return self.incident.summary_row()

    def to_dict(self) -> dict[str, Any]:
        row = self.row
        return {
            "path": row["path"],
            "id": row["id"],
            "title": row["title"],
            "date": row["date"],
            "category": row["category"],
            "similarity": round(self.score, 4),
            "open_action_items": self.open_items,
        }


def load_query(path: Path) -> Incident:
    """The incident to compare; an unreadable or invalid file is a one-line error naming it."""
    result = parse_file(path)
    if result.incident is None:
        first = result.problems[0]
        more = (
            f" (and {len(result.problems) - 1} more problems; run `agentpm validate {path}`)"
            if len(result.problems) > 1
            else ""
        )
        raise InputError(f"{first}{more}")
    return result.incident


def incident_text(incident: Incident) -> str:
    """What two incidents are compared on: title, impact, systems, tools and every prose section."""
    parts = [incident.title, incident.impact or "", " ".join(incident.systems), " ".join(incident.tools)]
    parts += [text for key, text in incident.sections.items()]
    return "\n".join(parts)


def open_action_items(incident: Incident, today: date) -> list[dict[str, Any]]:
    items = []
    for item in incident.action_items:
        if item.status != "open":
            continue
        items.append(
            {
                "title": item.title,
                "owner": item.owner,
                "due": item.due.isoformat() if item.due else None,
                "kind": item.kind,
                "overdue": item.is_overdue(today),
            }
        )
    # Overdue first: those are the fixes that were promised and not delivered.
    return sorted(items, key=lambda item: (not item["overdue"], item["due"] or "9999"))


def _same_file(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)


def find_similar(
    query: Incident, incidents: Sequence[Incident], top: int = 5, today: date | None = None
) -> list[Match]:
    """The ``top`` incidents most similar to ``query`` (itself excluded), best first; none scoring 0."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import linear_kernel

    today = today or datetime.now(timezone.utc).date()
    others = [
        incident
        for incident in incidents
        if not _same_file(incident.path, query.path) and not (query.id and incident.id == query.id)
    ]
    if not others:
        return []
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        stop_words="english",
        ngram_range=(1, 2),
        min_df=1,
        token_pattern=r"(?u)\b[a-zA-Z][\w.-]*\w\b",
    )
    matrix = vectorizer.fit_transform([incident_text(incident) for incident in others])
    scores = linear_kernel(vectorizer.transform([incident_text(query)]), matrix).ravel()
    ranked = sorted(range(len(others)), key=lambda index: (-scores[index], str(others[index].path)))
    return [
        Match(others[index], float(scores[index]), open_action_items(others[index], today))
        for index in ranked[:top]
        if scores[index] > 0
    ]


__all__ = ["Match", "find_similar", "load_query", "incident_text", "open_action_items"]

MATCH_COLUMNS = [
    ("score", "Similarity"),
    ("id", "ID"),
    ("date", "Date"),
    ("category", "Category"),
    ("title", "Title"),
    ("unfinished", "Action items"),
    ("path", "Path"),
]
OPEN_ITEM_COLUMNS = [
    ("id", "Incident"),
    ("title", "Open action item"),
    ("owner", "Owner"),
    ("due", "Due"),
    ("overdue", "Overdue"),
]


def match_rows(matches: Sequence[Match]) -> list[dict[str, Any]]:
    """One row per similar incident, for reading."""
    return [
        {
            "score": f"{match.score:.2f}",
            "id": match.incident.id,
            "date": (match.row["date"] or "")[:10],
            "category": match.incident.category,
            "title": match.incident.title,
            "unfinished": f"{len(match.open_items)} open, {sum(item['overdue'] for item in match.open_items)} overdue",
            "path": match.row["path"],
        }
        for match in matches
    ]


def open_item_rows(matches: Sequence[Match]) -> list[dict[str, Any]]:
    """The unfinished action items of the matches, one row each."""
    return [
        {"id": match.incident.id, **item, "overdue": "overdue" if item["overdue"] else ""}
        for match in matches
        for item in match.open_items
    ]

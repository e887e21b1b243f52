"""Human review of predictions: the queue, the interactive session, CSV export and apply,
bulk acceptance, and where each label came from.

Rules:

- The queue teaches the model most first: abstentions and disagreements with a human label,
  then the smallest margin (top minus runner-up probability). Files already reviewed (they
  carry a ``label_source``) and human labels the model agrees with are left out unless
  ``include_all``.
- Every decision is written at once, into the file itself, through
  :func:`agentpm.records.labels.set_fields` (byte-preserving, verified, atomic):
  ``category``, ``secondary``, ``labelled_by``, ``labelled_at``, ``label_source``.
  Accepting a prediction writes ``label_source: accepted-prediction``; a category a person
  picks writes ``human``. Quitting loses nothing, and a second run resumes.
- A human ``category`` is only replaced by an explicit decision on that file; bulk
  acceptance (``accept_confident``) never touches a labelled file.
- The interactive session reads keys from an injected function and shows plain data through
  an injected :class:`Screen`, so it runs the same under a test as on a terminal.
"""

from __future__ import annotations

import csv
import getpass
import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agentpm.display import csv_cell
from agentpm.errors import AgentPMError, UsageError
from agentpm.records.incident import Incident
from agentpm.records.labels import LabelEdit, add_front_matter, set_fields, undo_edit
from agentpm.records.parsing import Problem
from agentpm.taxonomy import Taxonomy

if TYPE_CHECKING:  # numpy only when a model is used: `list` can count provenance without it
    from agentpm.classifier.predictor import Model, Prediction

HUMAN = "human"
ACCEPTED = "accepted-prediction"
IMPORTED = "imported"
MODEL_ONLY = "model-only"
NO_LABEL = "none"
#: Every provenance a label can have, in the order reports show them.
LABEL_SOURCES = (HUMAN, ACCEPTED, IMPORTED, MODEL_ONLY, NO_LABEL)
#: The fields a review decision writes; nothing else in a file is touched.
LABEL_FIELDS = ("category", "secondary", "labelled_by", "labelled_at", "label_source")
UNCLASSIFIED = "unclassified"

EXPORT_COLUMNS = ("path", "id", "title", "prediction", "confidence", "runner_up", "category")


# -- the queue --------------------------------------------------------------------------------


def margin(prediction: Prediction) -> float:
    """Top probability minus the runner-up's: how close the model was to saying otherwise."""
    ranked = sorted(prediction.probabilities.values(), reverse=True)
    return ranked[0] - ranked[1] if len(ranked) > 1 else ranked[0] if ranked else 0.0


def stored_label_source(incident: Incident) -> str | None:
    """The file's ``label_source`` (a kept unknown field today; a declared one works too)."""
    return getattr(incident, "label_source", None) or (incident.model_extra or {}).get("label_source")


def is_reviewed(incident: Incident) -> bool:
    """A file a review (or an import) already labelled: it has a category and a label_source."""
    return incident.category is not None and bool(stored_label_source(incident))


@dataclass
class ReviewItem:
    """One incident waiting for a decision, with what the model says about it."""

    incident: Incident
    prediction: Prediction
    why: str  # abstained | disagrees | unlabelled | agrees | reviewed

    @property
    def margin(self) -> float:
        return margin(self.prediction)

    @property
    def needs_front_matter(self) -> bool:
        return self.incident.source_format == "markdown-plain"


@dataclass
class ReviewQueue:
    items: list[ReviewItem]
    #: Plain Markdown files left out because they have no front matter to hold labels.
    skipped: list[Problem] = field(default_factory=list)


def _why(incident: Incident, prediction: Prediction) -> str:
    if is_reviewed(incident):
        return "reviewed"
    if prediction.abstained:
        return "abstained"
    if incident.category is None:
        return "unlabelled"
    return "agrees" if incident.category == prediction.category else "disagrees"


def review_queue(
    incidents: Sequence[Incident],
    predictions: Sequence[Prediction],
    include_all: bool = False,
    add_front_matter: bool = False,
) -> ReviewQueue:
    """Incidents in the order that teaches the model most (see the module docstring)."""
    items, skipped = [], []
    for incident, prediction in zip(incidents, predictions, strict=True):
        item = ReviewItem(incident, prediction, _why(incident, prediction))
        if item.why in ("reviewed", "agrees") and not include_all:
            continue
        if item.needs_front_matter and not add_front_matter:
            skipped.append(
                Problem(
                    str(incident.path),
                    "plain Markdown without front matter: skipped (pass --add-front-matter to give it one)",
                )
            )
            continue
        items.append(item)
    first = ("abstained", "disagrees")
    items.sort(key=lambda item: (item.why not in first, item.margin, str(item.incident.path)))
    return ReviewQueue(items, skipped)


# -- writing decisions -----------------------------------------------------------------------


def default_labeller() -> str:
    """The OS user name, which ``--by`` overrides."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        return os.environ.get("USER") or "unknown"


def now_utc() -> str:
    """UTC ISO time to the second, as ``labelled_at`` stores it."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class Labeller:
    """Writes decisions for one person; ``clock`` is injectable for reproducible tests."""

    by: str
    add_front_matter: bool = False
    clock: Callable[[], str] = now_utc

    def fields(self, category: str, secondary: Iterable[str], source: str) -> dict[str, Any]:
        others = [other for other in dict.fromkeys(secondary) if other != category]
        return {
            "category": category,
            "secondary": others,
            "labelled_by": self.by,
            "labelled_at": self.clock(),
            "label_source": source,
        }

    def write(self, incident: Incident, category: str, secondary: Iterable[str], source: str) -> LabelEdit:
        fields = self.fields(category, secondary, source)
        if incident.source_format == "markdown-plain" and self.add_front_matter:
            return add_front_matter(incident.path, fields)
        return set_fields(incident.path, fields)


def accept_confident(
    items: Iterable[ReviewItem], threshold: float, labeller: Labeller
) -> tuple[int, list[Problem]]:
    """Accept every prediction at or above ``threshold`` on files without a human label.

    Returns how many were written and the files that refused the write."""
    if not 0 <= threshold <= 1:
        raise UsageError(f"--accept-above: {threshold} is not a probability; give a value from 0 to 1")
    written, refused = 0, []
    for item in items:
        prediction, incident = item.prediction, item.incident
        if prediction.abstained or prediction.confidence < threshold or incident.category is not None:
            continue
        try:
            labeller.write(incident, prediction.category, incident.secondary, ACCEPTED)
            written += 1
        except AgentPMError as exc:
            refused.append(Problem(str(incident.path), str(exc).split(": ", 1)[-1]))
    return written, refused


# -- CSV export and apply --------------------------------------------------------------------


def queue_csv(items: Iterable[ReviewItem]) -> str:
    """The queue as CSV for labelling elsewhere: an empty ``category`` column to fill in."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in items:
        prediction = item.prediction
        row = {
            "path": str(item.incident.path),
            "id": item.incident.id or "",
            "title": item.incident.title,
            "prediction": prediction.category or "needs-review",
            "confidence": f"{prediction.confidence:.4f}",
            "runner_up": prediction.runner_up or "",
            "category": "",
        }
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    return buffer.getvalue()


@dataclass(frozen=True)
class PlannedLabel:
    incident: Incident
    category: str
    secondary: tuple[str, ...]
    line: int


def _split_ids(cell: str) -> tuple[str, ...]:
    # Lists arrive as "a;b" (what agentpm writes), "a, b" or "a b".
    return tuple(part for part in cell.replace(";", " ").replace(",", " ").split() if part)


def _normalised(path: str, base: Path) -> str:
    return os.path.normcase(os.path.realpath(base / path))


def plan_label_csv(
    text: str, source: str, incidents: Sequence[Incident], taxonomy: Taxonomy, base: Path | None = None
) -> tuple[list[PlannedLabel], list[Problem]]:
    """Check every row of a labels CSV before anything is written.

    Rows name a file by ``path`` (relative to ``base``, the working folder) or by ``id``; an
    empty ``category`` cell means "not labelled" and is passed over. Unknown files, unknown
    categories and rows that disagree about one file are all reported; the plan is only
    usable when there are no problems.
    """
    base = base or Path.cwd()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    reader.fieldnames = columns
    if "category" not in columns or not ({"path", "id"} & set(columns)):
        return [], [Problem(source, "needs a header with `category` and `path` or `id` columns", 1)]
    by_path = {_normalised(str(incident.path), base): incident for incident in incidents}
    by_id = {incident.id: incident for incident in incidents if incident.id}
    known = taxonomy.ids
    plans: dict[str, PlannedLabel] = {}
    problems: list[Problem] = []
    for row in reader:
        line = reader.line_num
        category = (row.get("category") or "").strip()
        if not category:
            continue
        path_cell, id_cell = (row.get("path") or "").strip(), (row.get("id") or "").strip()
        incident = by_path.get(_normalised(path_cell, base)) if path_cell else None
        incident = incident or (by_id.get(id_cell) if id_cell else None)
        secondary = _split_ids(row.get("secondary") or "")
        wrong = [name for name in (category, *secondary) if name not in known]
        if incident is None:
            problems.append(
                Problem(
                    source,
                    f"path/id: no incident with path {path_cell!r} or id {id_cell!r} among the files "
                    "read; check the path (relative to the working folder) or the id, and the PATHS given",
                    line,
                )
            )
        if wrong:
            problems.append(
                Problem(
                    source,
                    f"{'category' if category in wrong else 'secondary'}: unknown category "
                    f"{', '.join(map(repr, wrong))}; known ids: {', '.join(known)}",
                    line,
                )
            )
        if incident is None or wrong:
            continue
        plan = PlannedLabel(incident, category, secondary, line)
        key = str(incident.path)
        earlier = plans.get(key)
        if earlier and (earlier.category, earlier.secondary) != (category, secondary):
            problems.append(
                Problem(
                    source,
                    f"{key}: conflicts with line {earlier.line} ({earlier.category} vs {category}); "
                    "keep one row per file",
                    line,
                )
            )
        plans.setdefault(key, plan)
    return list(plans.values()), problems


def apply_plan(plans: Iterable[PlannedLabel], labeller: Labeller) -> tuple[int, list[Problem]]:
    """Write a checked plan: each row is a person's label (``label_source: human``)."""
    written, refused = 0, []
    for plan in plans:
        try:
            labeller.write(plan.incident, plan.category, plan.secondary, HUMAN)
            written += 1
        except AgentPMError as exc:
            refused.append(Problem(str(plan.incident.path), str(exc).split(": ", 1)[-1]))
    return written, refused


# -- provenance ------------------------------------------------------------------------------


def label_source_of(incident: Incident) -> tuple[str, str]:
    """(category the incident counts under, how it got it).

    A ``category`` without ``label_source`` was written by a person (DESIGN §3), so it counts
    as human; a stored ``prediction`` alone is ``model-only``; nothing at all is ``none``
    under ``unclassified``."""
    if incident.category:
        source = stored_label_source(incident)
        return incident.category, source if source in (HUMAN, ACCEPTED, IMPORTED) else HUMAN
    if incident.prediction and incident.prediction.category:
        return incident.prediction.category, MODEL_ONLY
    return UNCLASSIFIED, NO_LABEL


def label_provenance(
    incidents: Iterable[Incident], categories: Sequence[str] = ()
) -> dict[str, dict[str, int]]:
    """Per category, how many incidents got their label from each source (zeros included).

    ``categories`` (taxonomy ids) fixes the rows and their order; other categories met,
    and ``unclassified``, follow."""
    table: dict[str, dict[str, int]] = {
        category: dict.fromkeys(LABEL_SOURCES, 0) for category in (*categories, UNCLASSIFIED)
    }
    for incident in incidents:
        category, source = label_source_of(incident)
        table.setdefault(category, dict.fromkeys(LABEL_SOURCES, 0))[source] += 1
    return table


def provenance_rows(table: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """The provenance table as flat rows (category, one column per source, total)."""
    return [
        {"category": category, **counts, "total": sum(counts.values())} for category, counts in table.items()
    ]


# -- the interactive session -----------------------------------------------------------------


class Screen(Protocol):
    """Where the session shows things: the CLI draws with rich, tests record."""

    def show(self, card: dict[str, Any]) -> None: ...

    def say(self, message: str) -> None: ...


KEYS_HELP = "a accept · 1-{n} pick · s secondary · k skip · u undo · q quit"
QUIT_KEYS = ("q", "\x03", "\x04", "")  # q, Ctrl-C, Ctrl-D, end of input


def _first_lines(text: str | None, lines: int = 3, width: int = 300) -> str:
    kept = [line.strip() for line in (text or "").splitlines() if line.strip()][:lines]
    joined = "\n".join(kept)
    return joined if len(joined) <= width else joined[: width - 1] + "…"


@dataclass
class Decision:
    index: int
    edit: LabelEdit
    source: str


class ReviewSession:
    """One pass over a review queue, a key at a time.

    ``read_key`` returns one key per call (``""`` at end of input); ``screen`` shows a card
    per incident and one-line messages. ``explain`` gives the terms behind the top classes
    of one incident (the CLI passes the model's; tests may pass a stub).
    """

    def __init__(
        self,
        items: Sequence[ReviewItem],
        classes: Sequence[str],
        labeller: Labeller,
        read_key: Callable[[], str],
        screen: Screen,
        explain: Callable[[Incident], dict[str, list[dict[str, Any]]]] | None = None,
    ):
        self.items, self.classes = list(items), list(classes)
        self.labeller, self.read_key, self.screen = labeller, read_key, screen
        self.explain = explain
        self.position = 0
        self.redraw = True  # show the current card before the next key
        self.decisions: list[Decision] = []
        self.pending_secondary: list[str] = []
        self.skipped = 0
        self.problems: list[Problem] = []

    # -- what is shown --
    def card(self, item: ReviewItem) -> dict[str, Any]:
        incident, prediction = item.incident, item.prediction
        top = sorted(prediction.probabilities.items(), key=lambda pair: -pair[1])[:3]
        sections = incident.sections
        return {
            "position": self.position + 1,
            "total": len(self.items),
            "why": item.why,
            "title": incident.title,
            "path": str(incident.path),
            "id": incident.id,
            "human_category": incident.category,
            "secondary": list(dict.fromkeys([*incident.secondary, *self.pending_secondary])),
            "prediction": prediction.category,
            "reason": prediction.reason,
            "margin": round(item.margin, 4),
            "top": [{"category": name, "probability": round(p, 4)} for name, p in top],
            "terms": self.explain(incident) if self.explain else {},
            "summary": _first_lines(sections.get("summary") or incident.impact),
            "root_cause": _first_lines(sections.get("root_cause")),
            "choices": [f"{number} {name}" for number, name in enumerate(self.classes, 1)],
            "keys": KEYS_HELP.format(n=len(self.classes)),
        }

    # -- decisions --
    def _decide(self, category: str, source: str) -> None:
        item = self.items[self.position]
        secondary = [*item.incident.secondary, *self.pending_secondary]
        try:
            edit = self.labeller.write(item.incident, category, secondary, source)
        except AgentPMError as exc:
            self.screen.say(f"not written: {exc}")
            self.problems.append(Problem(str(item.incident.path), str(exc).split(": ", 1)[-1]))
            self._advance()
            return
        self.decisions.append(Decision(self.position, edit, source))
        self.screen.say(f"{item.incident.path}: {category} ({source})")
        self._advance()

    def _advance(self) -> None:
        self.pending_secondary = []
        self.position += 1
        self.redraw = True

    def _undo(self) -> None:
        if not self.decisions:
            self.screen.say("nothing to undo")
            return
        last = self.decisions.pop()
        try:
            undo_edit(last.edit)
        except AgentPMError as exc:
            self.screen.say(f"cannot undo: {exc}")
            return
        self.position, self.pending_secondary, self.redraw = last.index, [], True
        self.screen.say(f"undone: {last.edit.path} is as it was")

    def _number(self, key: str) -> str | None:
        if key.isdigit() and 1 <= int(key) <= len(self.classes):
            return self.classes[int(key) - 1]
        return None

    def _secondary(self) -> None:
        self.screen.say(f"secondary category: press 1-{len(self.classes)}")
        chosen = self._number(self.read_key())
        if chosen is None:
            self.screen.say("no secondary category added")
        elif chosen not in self.pending_secondary:
            self.pending_secondary.append(chosen)

    def handle(self, key: str) -> bool:
        """Act on one key; False when the session should end."""
        item = self.items[self.position]
        if key in QUIT_KEYS:
            return False
        if key == "a":
            if item.prediction.category is None:
                self.screen.say(f"the model abstained ({item.prediction.reason}); pick 1-{len(self.classes)}")
            else:
                self._decide(item.prediction.category, ACCEPTED)
        elif self._number(key):
            self._decide(self._number(key), HUMAN)
        elif key == "s":
            self._secondary()
        elif key == "k":
            self.skipped += 1
            self._advance()
        elif key == "u":
            self._undo()
        else:
            self.screen.say(f"unknown key {key!r}: {KEYS_HELP.format(n=len(self.classes))}")
        return True

    def run(self) -> dict[str, int]:
        """Show each item and act on keys until the queue ends or the user quits."""
        while True:
            if self.position >= len(self.items):
                # The last decision can still be undone before the session ends.
                self.screen.say("end of the queue: u to undo the last decision, any other key to finish")
                if self.read_key() != "u":
                    break
                self._undo()
                continue
            if self.redraw:
                self.screen.show(self.card(self.items[self.position]))
                self.redraw = False
            if not self.handle(self.read_key()):
                break
        return self.summary()

    def summary(self) -> dict[str, int]:
        counts = {source: 0 for source in (HUMAN, ACCEPTED)}
        for decision in self.decisions:
            counts[decision.source] += 1
        return {
            "labelled": counts[HUMAN],
            "accepted": counts[ACCEPTED],
            "skipped": self.skipped,
            "refused": len(self.problems),
            "left": max(len(self.items) - self.position, 0),
        }


def explainer(model: Model, top_terms: int = 5) -> Callable[[Incident], dict[str, list[dict[str, Any]]]]:
    """Terms behind the top class and the runner-up of one incident, computed when shown."""

    def explain(incident: Incident) -> dict[str, list[dict[str, Any]]]:
        return model.predict_many([incident], explain=True, top_terms=top_terms)[0].explanation or {}

    return explain


def session_summary(summary: dict[str, int]) -> str:
    return (
        f"review: {summary['labelled']} labelled, {summary['accepted']} accepted, "
        f"{summary['skipped']} skipped, {summary['refused']} refused, {summary['left']} left in the queue"
    )


def check_one_mode(**modes: Any) -> None:
    """Refuse two of --export, --apply, --accept-above at once: each is a whole run."""
    given = [name for name, chosen in modes.items() if chosen is not None]
    if len(given) > 1:
        raise UsageError(f"choose one of --{', --'.join(given)}; each is a separate run")


__all__ = [
    "ACCEPTED",
    "HUMAN",
    "IMPORTED",
    "LABEL_FIELDS",
    "LABEL_SOURCES",
    "MODEL_ONLY",
    "NO_LABEL",
    "Labeller",
    "ReviewItem",
    "ReviewQueue",
    "ReviewSession",
    "Screen",
    "accept_confident",
    "apply_plan",
    "label_provenance",
    "plan_label_csv",
    "queue_csv",
    "review_queue",
]

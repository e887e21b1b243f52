"""Light incident records for trends and reports, with a parse cache keyed by path, size and mtime.

`trends` and `report` need a dozen fields per incident, not the prose. Parsing is the
slow part of a large run, so each file's fields (or its problems) are kept in a SQLite
file as JSON rows, keyed by absolute path, size and ``st_mtime_ns``: an edited file
changes at least one of those and is parsed again. Model predictions made on the fly are
kept beside them, keyed also by the model hash. Nothing is pickled, and a cache that
cannot be opened or written only costs speed: the run goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from agentpm import __version__
from agentpm.parallel import iter_batched
from agentpm.records.corpus import CorpusChecks, discover_keyed
from agentpm.records.incident import Incident
from agentpm.records.parsing import ParseResult, Problem, exit_code_for, failed_on_file, parse_file
from agentpm.records.quick import (
    LINE_FIELDS,
    NOT_STORED,
    TextView,
    cached_record,
    quick_data,
    quick_read,
    read_file,
)
from agentpm.taxonomy import Taxonomy

#: Bump when the record layout or the parser's behaviour changes: old rows are then ignored.
# 6: action-item counts and first open due date as columns; 5: typed columns, JSON only for
# lists; 4: label_source; 3: impact, systems, tags; 2: records kept with their field problems,
# no durations from date-only starts.
SCHEMA = 6
CACHE_DIR_ENV = "AGENTPM_CACHE_DIR"

#: Below this many files to parse, starting worker processes costs more than it saves.
PARALLEL_MINIMUM = 2000
#: Files per task sent to a worker: large enough that the model labels many at once.
PARSE_BATCH = 600
#: Parsed files written to the cache at a time, while the rest are still being parsed.
CACHE_WRITE_BATCH = 5000


class StoredLabel(NamedTuple):
    category: str | None


@dataclass
class ActionRow:
    title: str
    owner: str | None
    due: str | None  # YYYY-MM-DD, the date as written (ActionItem.is_overdue ignores the time)
    status: str

    def is_overdue(self, today: date) -> bool:
        return self.status == "open" and self.due is not None and date.fromisoformat(self.due) < today


#: A file's row in the cache, after its key: size, mtime_ns, then what :func:`row_of` builds.
COLUMNS = (
    "title", "id", "date", "start", "ttd", "ttr", "severity", "category", "stored", "stored_category",
    "label_source", "impact", "secondary", "extra", "actions_done", "actions_open", "actions_wontfix",
    "first_open_due", "problems",
)  # fmt: skip


class Record:
    """What trends and reports need from one incident file.

    Built from a cache row without decoding JSON for the common fields; the lists only
    reports read (actions, systems, tags, source lines) are decoded when first asked for.
    """

    __slots__ = (
        "path", "key", "size", "mtime_ns", "title", "id", "date", "start", "ttd", "ttr", "severity",
        "category", "prediction", "label_source", "impact", "secondary", "actions_done", "actions_open",
        "actions_wontfix", "first_open_due", "_extra", "_decoded",
    )  # fmt: skip

    def __init__(self, path: str, key: str, size: int, mtime_ns: int, row: Sequence[Any]):
        self.path, self.key, self.size, self.mtime_ns = path, key, size, mtime_ns
        (title, self.id, self.date, start, self.ttd, self.ttr, self.severity, self.category, stored,
         stored_category, label_source, self.impact, secondary, self._extra, self.actions_done,
         self.actions_open, self.actions_wontfix, self.first_open_due, _) = row  # fmt: skip
        if not isinstance(title, str):
            raise ValueError("a cache row without a title holds no record")
        self.title = title
        self.start: datetime | None = datetime.fromisoformat(start) if start else None
        self.prediction = StoredLabel(stored_category) if stored else None
        # human | accepted-prediction | imported (written with a label); other values count as human
        self.label_source = label_source
        self.secondary: list[str] = json.loads(secondary) if secondary else []
        self._decoded: dict[str, Any] | None = None

    def _part(self, name: str) -> Any:
        if self._decoded is None:
            self._decoded = json.loads(self._extra) if self._extra else {}
        return self._decoded.get(name)

    @property
    def actions(self) -> list[ActionRow]:
        built = self._part("actions") or []
        if built and not isinstance(built[0], ActionRow):  # decoded once, kept as rows
            built = self._decoded["actions"] = [ActionRow(*row) for row in built]  # type: ignore[index]
        return built

    def overdue_actions(self, today: date) -> list[ActionRow]:
        """The open action items due before ``today``; the file's list is decoded only when the
        first open due date says there are some (in a large history, half the files or fewer)."""
        if self.first_open_due is None or date.fromisoformat(self.first_open_due) >= today:
            return []
        return [action for action in self.actions if action.is_overdue(today)]

    @property
    def lines(self) -> dict[str, int]:
        return dict(self._part("lines") or {})

    @property
    def systems(self) -> list[str]:
        return list(self._part("systems") or [])

    @property
    def tags(self) -> list[str]:
        return list(self._part("tags") or [])

    # check_against_taxonomy() reads incidents through this name.
    def line_of(self, name: str) -> int | None:
        return self.lines.get(name)


def record_data(incident: Incident) -> dict[str, Any]:
    """The JSON-ready fields of an incident that trends and reports use."""
    prediction = incident.prediction
    return cached_record(
        identifier=incident.id,
        title=incident.title,
        when=incident.date,
        detected=incident.detected,
        resolved=incident.resolved,
        severity=incident.severity,
        category=incident.category,
        secondary=incident.secondary,
        stored_category=prediction.category if prediction is not None else NOT_STORED,
        actions=[(item.title, item.owner, item.due, item.status) for item in incident.action_items],
        lines={name: line for name in LINE_FIELDS if (line := incident.line_of(name))},
        impact=incident.impact,
        systems=incident.systems,
        tags=incident.tags,
        label_source=(incident.model_extra or {}).get("label_source"),
    )


def parse_to_data(path: str, quick: bool = True) -> dict[str, Any]:
    """Parse one file into cacheable data: ``{"record": ...}`` or ``{"problems": [...]}``.

    ``quick`` tries :func:`agentpm.records.quick.quick_data` first (same data, for well-formed
    files); without it every file goes through the full parser.
    """
    found = quick_data(path) if quick else None
    if found is not None:
        return found
    return _full_data(parse_file(path), path)


def _full_data(result: ParseResult, path: str) -> dict[str, Any]:
    problems = [[p.message, p.line, p.kind, p.field] for p in result.problems]
    if result.incident is None:
        return {"problems": problems}
    try:
        return {"record": record_data(result.incident), "problems": problems}
    except Exception as exc:  # noqa: BLE001 - one file must never stop a run
        problem = failed_on_file(path, exc)
        return {"problems": [[problem.message, None, problem.kind, None]]}


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def row_of(data: dict[str, Any]) -> tuple[Any, ...]:
    """The cache row (``COLUMNS``) of :func:`parse_to_data`'s result: plain columns for what every
    run reads, JSON only for lists, and NULL for empty ones (most files), so a warm run decodes
    almost nothing."""
    problems = _compact(data["problems"]) if data.get("problems") else None
    record = data.get("record")
    if record is None:
        return (None,) * (len(COLUMNS) - 1) + (problems,)
    stored = record["stored"]
    extra = {name: record[name] for name in ("actions", "lines", "systems", "tags") if record[name]}
    label_source = record["label_source"]
    statuses = [status for _, _, _, status in record["actions"]]
    open_due = [due for _, _, due, status in record["actions"] if status == "open" and due is not None]
    return (
        record["title"],
        record["id"],
        record["date"],
        record["start"],
        record["ttd"],
        record["ttr"],
        record["severity"],
        record["category"],
        1 if stored is not None else 0,
        stored["category"] if stored is not None else None,
        label_source if isinstance(label_source, str) else None,
        record["impact"],
        _compact(record["secondary"]) if record["secondary"] else None,
        _compact(extra) if extra else None,
        statuses.count("done"),
        statuses.count("open"),
        statuses.count("wontfix"),
        min(open_due, key=date.fromisoformat) if open_due else None,
        problems,
    )


def problems_of(row: Sequence[Any], shown: str) -> list[Problem]:
    stored = row[-1]
    if not stored:
        return []
    return [Problem(shown, message, line, kind, name) for message, line, kind, name in json.loads(stored)]


# -- the cache file ------------------------------------------------------------------------


def cache_folder(explicit: Path | None = None, corpus: Sequence[Path | str] = ()) -> Path:
    """$AGENTPM_CACHE_DIR, else a folder in the platform's user cache folder keyed by the
    corpus paths (one cache per corpus, and nothing written into the post-mortem repository)."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CACHE_DIR_ENV)
    if from_env:
        return Path(from_env)
    from platformdirs import user_cache_dir

    key = "\0".join(sorted(os.path.abspath(str(path)) for path in corpus)) or os.getcwd()
    return (
        Path(user_cache_dir("agentpm"))
        / hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    )


class ParseCache:
    """A SQLite file of parsed records and predictions; ``ParseCache(None)`` caches nothing."""

    def __init__(self, folder: Path | None, warn: Callable[[str], None] = lambda message: None):
        self.warn = warn
        self.db: sqlite3.Connection | None = None
        self.rows: dict[str, tuple[Any, ...]] = {}
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(folder / "records.sqlite3"), timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            version = f"{SCHEMA}/{__version__}"
            found = self.db.execute("SELECT value FROM meta WHERE name='version'").fetchone()
            if found is None or found[0] != version:
                # Another agentpm version parsed these: its records may differ from ours.
                self.db.execute("DROP TABLE IF EXISTS files")
                self.db.execute("DROP TABLE IF EXISTS predictions")
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (version,))
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                + ", ".join(COLUMNS)
                + ")"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS predictions (key TEXT, size INTEGER, mtime_ns INTEGER, "
                "model TEXT, data TEXT, PRIMARY KEY (key, model))"
            )
            self.db.commit()
            # One query, rows as tuples: no JSON is decoded for a file until it is used.
            self.rows = {
                row[0]: row
                for row in self.db.execute(f"SELECT key, size, mtime_ns, {', '.join(COLUMNS)} FROM files")
            }
        except (sqlite3.Error, OSError) as exc:
            self._give_up(folder, exc)

    def _give_up(self, where: Any, exc: Exception) -> None:
        self.warn(f"agentpm: warning: parse cache {where} not usable ({exc}); continuing without it")
        if self.db is not None:
            try:
                self.db.close()
            except sqlite3.Error:
                pass
        self.db = None
        self.rows = {}

    @property
    def enabled(self) -> bool:
        return self.db is not None

    def get(self, key: str, size: int, mtime_ns: int) -> tuple[Any, ...] | None:
        """The cached row (``COLUMNS``) of a file unchanged since it was parsed, else None."""
        # Each file is looked up once per run: dropping the row keeps peak memory down.
        row = self.rows.pop(key, None)
        if row is None or row[1] != size or row[2] != mtime_ns:
            return None
        return row[3:]

    def put_many(self, rows: Sequence[tuple[str, int, int, tuple[Any, ...]]]) -> None:
        if self.db is None or not rows:
            return
        marks = ", ".join("?" * (len(COLUMNS) + 3))
        try:
            with self.db:
                self.db.executemany(
                    f"INSERT OR REPLACE INTO files VALUES ({marks})",
                    [(key, size, mtime, *row) for key, size, mtime, row in rows if size >= 0],
                )
        except sqlite3.Error as exc:
            self._give_up("write", exc)

    def predictions(self, model: str) -> dict[str, tuple[int, int, dict[str, Any]]]:
        if self.db is None:
            return {}
        try:
            return {
                key: (size, mtime, json.loads(data))
                for key, size, mtime, data in self.db.execute(
                    "SELECT key, size, mtime_ns, data FROM predictions WHERE model=?", (model,)
                )
            }
        except (sqlite3.Error, ValueError) as exc:
            self._give_up("read", exc)
            return {}

    def put_predictions(self, model: str, rows: Sequence[tuple[str, int, int, dict[str, Any]]]) -> None:
        if self.db is None or not rows:
            return
        try:
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)",
                    [(key, size, mtime, model, json.dumps(data)) for key, size, mtime, data in rows],
                )
        except sqlite3.Error as exc:
            self._give_up("write", exc)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


# -- loading -------------------------------------------------------------------------------


class Labeller(Protocol):
    """Labels, inside the reading pass, the files a run will need a model's label for, so they
    are not read and parsed a second time (see ``agentpm.analysis.trends.PassLabeller``)."""

    def wants(self, category: str | None, stored: bool) -> bool:
        """Whether a file with this human label (or None) and a stored prediction (or not) needs one."""
        ...

    def __call__(self, incidents: list[Incident | TextView | None]) -> list[tuple[str, Any] | None]:
        """(model hash, label) per incident (or the quick reader's view of its text), or None
        where none was made here."""
        ...


@dataclass
class Records:
    """Valid incident records, the problems met, and where the data came from."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0
    parsed: int = 0
    from_cache: int = 0
    #: labels made during the reading pass: key -> (model hash, what the labeller gave)
    labelled: dict[str, tuple[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.problems)


_LABELLER: Labeller | None = None  # set before the workers fork; they inherit it


def _read_batch(paths: list[str]) -> list[tuple[int, int, tuple[Any, ...], Any]]:
    """For each file: size, mtime_ns, cache row, and the pass label if the labeller wanted one."""
    out: list[list[Any]] = []
    wanted: list[tuple[int, Incident | TextView | None]] = []
    for path in paths:
        try:
            info = os.stat(path)
            size, mtime_ns = info.st_size, info.st_mtime_ns
        except OSError:
            size, mtime_ns = -1, -1
        raw = read_file(path)  # read once, whichever reader then parses it
        data, view = quick_read(path, raw) if raw is not None else (None, None)
        incident: Incident | TextView | None = view  # the quick reader's view is what a model reads
        if data is None:
            result = parse_file(path, raw)
            data, incident = _full_data(result, path), result.incident
        row = row_of(data)
        if _LABELLER is not None and row[0] is not None and _LABELLER.wants(row[7], bool(row[8])):
            wanted.append((len(out), incident))
        out.append([size, mtime_ns, row, None])
    if wanted:
        try:
            labels = _LABELLER([incident for _, incident in wanted]) if _LABELLER else []
        except Exception:  # noqa: BLE001 - the labels are made (and any error reported) after the pass
            labels = []
        for (index, _), label in zip(wanted, labels, strict=False):
            out[index][3] = label
    return [(size, mtime_ns, row, label) for size, mtime_ns, row, label in out]


def _add(
    out: Records, checks: CorpusChecks, shown: str, key: str, size: int, mtime_ns: int, row: tuple[Any, ...]
) -> None:
    """One file's record (if it has one) and problems into ``out``."""
    try:
        problems_of_file = problems_of(row, shown)
        record = Record(shown, key, size, mtime_ns, row) if row[0] is not None else None
    except Exception:  # noqa: BLE001 - a damaged cache row: read the file itself instead
        row = row_of(parse_to_data(shown))
        problems_of_file = problems_of(row, shown)
        record = Record(shown, key, size, mtime_ns, row) if row[0] is not None else None
    out.problems.extend(problems_of_file)
    if record is None:
        return
    # Same checks and messages as load_corpus, so `validate` and `report` agree on what is skipped.
    found = checks.problems(record, shown)
    if found:
        out.problems.extend(found)
    else:
        out.records.append(record)


def load_records(
    paths: Sequence[Path | str],
    taxonomy: Taxonomy | None = None,
    cache: ParseCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    labeller: Labeller | None = None,
    parallel_minimum: int = PARALLEL_MINIMUM,
    batch: int = PARSE_BATCH,
) -> Records:
    """Like :func:`agentpm.records.corpus.load_corpus`, with the same problems, but light records and a cache.

    ``progress(done, total)`` is called for the files that have to be parsed (cache hits
    are quick); ``workers`` caps the parsing processes (default: one per CPU). A
    ``labeller`` labels the parsed files it wants in the same pass (``Records.labelled``);
    work that heavy is worth the workers from a lower ``parallel_minimum`` of files, and
    smaller ``batch``es keep both workers busy to the end.
    """
    global _LABELLER
    cache = cache or ParseCache(None)
    names, keys, problems = discover_keyed(paths)
    out = Records(problems=list(problems), files_read=len(names))
    cached: list[tuple[int, int, tuple[Any, ...]] | None] = [None] * len(names)
    misses: list[str] = []
    if cache.rows:  # a cold cache has nothing to check a file's size and time against
        for index, key in enumerate(keys):
            try:
                info = os.stat(key)
            except OSError:
                misses.append(names[index])
                continue
            row = cache.get(key, info.st_size, info.st_mtime_ns)
            if row is None:
                misses.append(names[index])
            else:
                cached[index] = (info.st_size, info.st_mtime_ns, row)
    else:
        misses = list(names)
    out.from_cache = len(names) - len(misses)
    out.parsed = len(misses)
    checks = CorpusChecks(taxonomy)
    fresh: list[tuple[str, int, int, tuple[Any, ...]]] = []
    _LABELLER = labeller
    # Files come back in order as the workers finish them; the records are built and the
    # cache written meanwhile, not after the pool is done.
    parsed = iter_batched(_read_batch, misses, batch, parallel_minimum, progress, workers)
    try:
        for shown, key, found in zip(names, keys, cached, strict=True):
            if found is None:
                size, mtime_ns, row, label = next(parsed)
                fresh.append((key, size, mtime_ns, row))
                if label is not None:
                    out.labelled[key] = label
                if len(fresh) >= CACHE_WRITE_BATCH:
                    cache.put_many(fresh)
                    fresh = []
            else:
                size, mtime_ns, row = found
            _add(out, checks, shown, key, size, mtime_ns, row)
    finally:
        _LABELLER = None
        parsed.close()  # ends the pool now, not whenever the generator is collected
    cache.put_many(fresh)
    return out

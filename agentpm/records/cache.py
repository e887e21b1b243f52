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
from typing import Any, NamedTuple

from agentpm import __version__
from agentpm.parallel import map_in_order
from agentpm.records.corpus import CorpusChecks, discover
from agentpm.records.incident import Incident, as_utc
from agentpm.records.parsing import Problem, exit_code_for, failed_on_file, parse_file
from agentpm.taxonomy import Taxonomy

#: Bump when the record layout or the parser's behaviour changes: old rows are then ignored.
# 4: label_source; 3: impact, systems, tags; 2: records kept with their field problems, no durations
# from date-only starts.
SCHEMA = 4
CACHE_DIR_ENV = "AGENTPM_CACHE_DIR"

#: Below this many files to parse, starting worker processes costs more than it saves.
PARALLEL_MINIMUM = 2000


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


@dataclass
class Record:
    """What trends and reports need from one incident file."""

    path: str
    key: str
    size: int
    mtime_ns: int
    title: str
    id: str | None = None
    date: str | None = None
    start: datetime | None = None  # the incident start as a UTC instant
    ttd: float | None = None  # seconds from start to detection
    ttr: float | None = None  # seconds from start to resolution
    severity: str | None = None
    category: str | None = None
    secondary: list[str] = field(default_factory=list)
    prediction: StoredLabel | None = None
    actions: list[ActionRow] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    impact: str | None = None
    systems: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    label_source: str | None = None  # human | accepted-prediction | imported (written with a label)

    # check_against_taxonomy() reads incidents through these two names.
    def line_of(self, name: str) -> int | None:
        return self.lines.get(name)

    @classmethod
    def from_data(cls, data: dict[str, Any], path: str, key: str, size: int, mtime_ns: int) -> Record:
        stored = data.get("stored")
        return cls(
            path=path,
            key=key,
            size=size,
            mtime_ns=mtime_ns,
            title=data["title"],
            id=data.get("id"),
            date=data.get("date"),
            start=datetime.fromisoformat(data["start"]) if data.get("start") else None,
            ttd=data.get("ttd"),
            ttr=data.get("ttr"),
            severity=data.get("severity"),
            category=data.get("category"),
            secondary=list(data.get("secondary") or []),
            prediction=StoredLabel(stored["category"]) if stored is not None else None,
            actions=[ActionRow(*row) for row in data.get("actions") or []],
            lines=dict(data.get("lines") or {}),
            impact=data.get("impact"),
            systems=list(data.get("systems") or []),
            tags=list(data.get("tags") or []),
            label_source=data.get("label_source"),
        )


def record_data(incident: Incident) -> dict[str, Any]:
    """The JSON-ready fields of an incident that trends and reports use."""
    start = as_utc(incident.date)
    ttd, ttr = incident.time_to_detect, incident.time_to_resolve
    actions = []
    for item in incident.action_items:
        due = item.due.date() if isinstance(item.due, datetime) else item.due
        actions.append([item.title, item.owner, due.isoformat() if due else None, item.status])
    lines = {name: incident.line_of(name) for name in ("id", "category", "secondary", "prediction")}
    return {
        "id": incident.id,
        "title": incident.title,
        "date": incident.date.isoformat() if incident.date else None,
        "start": start.isoformat() if start else None,
        "ttd": ttd.total_seconds() if ttd is not None else None,
        "ttr": ttr.total_seconds() if ttr is not None else None,
        "severity": incident.severity,
        "category": incident.category,
        "secondary": list(incident.secondary),
        "stored": {"category": incident.prediction.category} if incident.prediction is not None else None,
        "actions": actions,
        "lines": {name: line for name, line in lines.items() if line},
        # the report quotes an incident's own impact and breaks categories down by systems and tags
        "impact": " ".join(incident.impact.split())[:400] if incident.impact else None,
        "systems": list(incident.systems),
        "tags": list(incident.tags),
        "label_source": (incident.model_extra or {}).get("label_source") if incident.category else None,
    }


def parse_to_data(path: str) -> dict[str, Any]:
    """Parse one file into cacheable data: ``{"record": ...}`` or ``{"problems": [...]}``."""
    result = parse_file(path)
    problems = [[p.message, p.line, p.kind, p.field] for p in result.problems]
    if result.incident is None:
        return {"problems": problems}
    try:
        return {"record": record_data(result.incident), "problems": problems}
    except Exception as exc:  # noqa: BLE001 - one file must never stop a run
        problem = failed_on_file(path, exc)
        return {"problems": [[problem.message, None, problem.kind, None]]}


def _stat_and_parse(path: str) -> tuple[int, int, dict[str, Any]]:
    try:
        info = os.stat(path)
        size, mtime_ns = info.st_size, info.st_mtime_ns
    except OSError:
        size, mtime_ns = -1, -1
    return size, mtime_ns, parse_to_data(path)


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
        self.rows: dict[str, tuple[int, int, str]] = {}
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
                "CREATE TABLE IF NOT EXISTS files (key TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, data TEXT)"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS predictions (key TEXT, size INTEGER, mtime_ns INTEGER, "
                "model TEXT, data TEXT, PRIMARY KEY (key, model))"
            )
            self.db.commit()
            self.rows = {
                key: (size, mtime, data)
                for key, size, mtime, data in self.db.execute("SELECT key, size, mtime_ns, data FROM files")
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

    def get(self, key: str, size: int, mtime_ns: int) -> dict[str, Any] | None:
        # Each file is looked up once per run: dropping the text keeps peak memory down.
        row = self.rows.pop(key, None)
        if row is None or row[0] != size or row[1] != mtime_ns:
            return None
        try:
            return json.loads(row[2])
        except ValueError:
            return None

    def put_many(self, rows: Sequence[tuple[str, int, int, dict[str, Any]]]) -> None:
        if self.db is None or not rows:
            return
        try:
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                    [
                        (key, size, mtime, json.dumps(data, ensure_ascii=False, separators=(",", ":")))
                        for key, size, mtime, data in rows
                        if size >= 0
                    ],
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


@dataclass
class Records:
    """Valid incident records, the problems met, and where the data came from."""

    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0
    parsed: int = 0
    from_cache: int = 0

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.problems)


def _parse_all(
    paths: list[str], progress: Callable[[int, int], None] | None, workers: int | None
) -> list[tuple[int, int, dict[str, Any]]]:
    return map_in_order(_stat_and_parse, paths, PARALLEL_MINIMUM, progress, workers, chunksize=200, every=500)


def _outcome(
    data: dict[str, Any], shown: str, key: str, size: int, mtime_ns: int
) -> tuple[Record | None, list[Problem]]:
    """The record a parsed (or cached) file gives, if any, and its problems."""
    problems = [
        Problem(shown, message, line, kind, name) for message, line, kind, name in data.get("problems", [])
    ]
    if "record" not in data:
        return None, problems
    return Record.from_data(data["record"], shown, key, size, mtime_ns), problems


def load_records(
    paths: Sequence[Path | str],
    taxonomy: Taxonomy | None = None,
    cache: ParseCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> Records:
    """Like :func:`agentpm.records.corpus.load_corpus`, with the same problems, but light records and a cache.

    ``progress(done, total)`` is called for the files that have to be parsed (cache hits
    are quick); ``workers`` caps the parsing processes (default: one per CPU).
    """
    cache = cache or ParseCache(None)
    files, problems = discover(paths)
    out = Records(problems=list(problems))
    entries: list[tuple[str, str, int, int, dict[str, Any]] | None] = []
    misses: list[int] = []
    keys: list[str] = []
    cwd = os.getcwd()  # os.path.abspath would ask for it once per file
    for path in files:
        shown = str(path)
        key = os.path.normpath(os.path.join(cwd, shown))
        keys.append(key)
        try:
            info = os.stat(key)
            size, mtime_ns = info.st_size, info.st_mtime_ns
        except OSError:
            size, mtime_ns = -1, -1
        data = cache.get(key, size, mtime_ns) if size >= 0 else None
        if data is None:
            misses.append(len(entries))
            entries.append(None)
        else:
            entries.append((shown, key, size, mtime_ns, data))
    out.from_cache = len(files) - len(misses)
    parsed = _parse_all([str(files[index]) for index in misses], progress, workers)
    fresh = []
    for index, (size, mtime_ns, data) in zip(misses, parsed, strict=False):
        shown, key = str(files[index]), keys[index]
        entries[index] = (shown, key, size, mtime_ns, data)
        fresh.append((key, size, mtime_ns, data))
    cache.put_many(fresh)
    out.parsed = len(misses)
    out.files_read = len(files)
    checks = CorpusChecks(taxonomy)
    for entry in entries:
        assert entry is not None
        shown, key, size, mtime_ns, data = entry
        try:
            outcome = _outcome(data, shown, key, size, mtime_ns)
        except Exception:  # noqa: BLE001 - a damaged cache row: read the file itself instead
            outcome = _outcome(parse_to_data(shown), shown, key, size, mtime_ns)
        record, problems_of_file = outcome
        out.problems.extend(problems_of_file)
        if record is None:
            continue
        # Same checks and messages as load_corpus, so `validate` and `report` agree on what is skipped.
        found = checks.problems(record, shown)
        if found:
            out.problems.extend(found)
        else:
            out.records.append(record)
    return out

"""Load many incident files at once: records plus problems, one bad file never stops the rest."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentpm.records.incident import Incident
from agentpm.records.parsing import SUFFIXES, ParseResult, Problem, exit_code_for, parse_file
from agentpm.taxonomy import Taxonomy

#: Files that describe a folder rather than an incident; skipped when walking folders
#: (a path named explicitly is always read).
_NOT_INCIDENTS = ("readme", "changelog", "license", "licence", "contributing", "code_of_conduct")


def _is_incident_name(name: str) -> bool:
    if name.startswith((".", "_")):
        return False
    stem, _, suffix = name.rpartition(".")
    return ("." + suffix.lower()) in SUFFIXES and stem.lower() not in _NOT_INCIDENTS


def _walk(root: str, problems: list[Problem]) -> list[str]:
    """Incident file names under ``root``: an explicit stack (no recursion limit on deep trees),
    symlinked folders not followed, and a folder that cannot be listed reported, not skipped."""
    found: list[str] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not name.startswith((".", "_")):
                                stack.append(entry.path)
                        elif _is_incident_name(name):
                            found.append(entry.path)
                    except OSError as exc:
                        problems.append(
                            Problem(entry.path, f"cannot inspect: {exc.strerror or exc}", None, "unreadable")
                        )
        except OSError as exc:
            problems.append(
                Problem(
                    folder,
                    f"cannot list this folder ({exc.strerror or exc}); its files were not read",
                    None,
                    "unreadable",
                )
            )
    return found


def discover(paths: Iterable[Path | str] | Path | str) -> tuple[list[Path], list[Problem]]:
    """Incident files under the given files and folders (recursive, sorted, de-duplicated).

    Hidden files and folders and those starting with '_' are skipped, as are README,
    CHANGELOG and LICENSE files. A folder that cannot be listed is a problem (exit code 2).
    """
    names, problems = discover_names(paths)
    return [Path(name) for name in names], problems


def discover_names(paths: Iterable[Path | str] | Path | str) -> tuple[list[str], list[Problem]]:
    """:func:`discover` as strings: a Path per file costs more than the walk on a large folder."""
    names, _, problems = discover_keyed(paths)
    return names, problems


def discover_keyed(paths: Iterable[Path | str] | Path | str) -> tuple[list[str], list[str], list[Problem]]:
    """:func:`discover_names` plus each file's absolute path (``os.path.abspath``, no symlink
    resolved), which identifies it across the given paths and in the parse cache."""
    files: list[str] = []
    keys: list[str] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for raw in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(raw)
        if path.is_dir():
            root = str(path)
            # Strings until kept: Path objects cost more than the walk itself on a large folder.
            candidates: list[str] = sorted(_walk(root, problems))
            # A walked file is root + "/" + names scandir gave (never "." or ".."), so its
            # absolute path is the root's plus the rest: one abspath per folder, not per file.
            base = os.path.abspath(root) if root != "/" else ""
            cut = len(root) if root != "/" else 0
            found = [(candidate, base + candidate[cut:]) for candidate in candidates]
        elif path.exists() or path.is_symlink():
            found = [(str(path), os.path.abspath(path))]
        else:
            problems.append(Problem(str(path), "no such file or folder", None, "unreadable"))
            continue
        for candidate, key in found:
            if key not in seen:
                seen.add(key)
                files.append(candidate)
                keys.append(key)
    return files, keys, problems


@dataclass
class Corpus:
    """The valid incidents found, the problems met, and how many files were read."""

    incidents: list[Incident] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0

    @property
    def exit_code(self) -> int:
        """0 clean, 1 invalid records, 2 unreadable input (the CLI contract)."""
        return exit_code_for(self.problems)

    def __iter__(self) -> Iterator[Incident]:
        return iter(self.incidents)

    def __len__(self) -> int:
        return len(self.incidents)

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: (p.path, p.line or 0))

    def validation_results(self) -> list[dict]:
        """One entry per file read: its path, whether it is a valid incident, its problems."""
        by_path: dict[str, list[dict]] = {}
        for problem in self.sorted_problems():
            by_path.setdefault(problem.path, []).append(problem.to_dict())
        kept = {str(incident.path) for incident in self.incidents}
        results = [{"path": path, "valid": True, "problems": by_path.get(path, [])} for path in kept]
        results += [
            {"path": path, "valid": False, "problems": found}
            for path, found in by_path.items()
            if path not in kept
        ]
        return sorted(results, key=lambda item: item["path"])

    def validation_summary(self) -> str:
        """The one-line tally `validate` prints on stderr."""
        if not self.problems:
            return f"{self.files_read} files checked: all valid"
        kept = {str(incident.path) for incident in self.incidents}
        with_problems = {problem.path for problem in self.problems}
        unreadable = {problem.path for problem in self.problems if problem.kind == "unreadable"}
        left_out = with_problems - kept - unreadable
        flagged = len(with_problems & kept)
        return (
            f"{self.files_read} files checked: {len(self.incidents)} read as incidents"
            + (f" ({flagged} with warnings or fields left out)" if flagged else "")
            + f", {len(left_out)} invalid, {len(unreadable)} unreadable"
        )

    def summary_rows(self) -> list[dict]:
        """`list`'s rows: one per valid incident, by date then path."""
        return sorted(
            (incident.summary_row() for incident in self.incidents),
            key=lambda row: (row["date"] or "", row["path"] or ""),
        )


def check_against_taxonomy(
    incident: Incident, taxonomy: Taxonomy, known: frozenset[str] | None = None
) -> list[Problem]:
    """Problems with category ids that the taxonomy does not know (``known``: its ids, when the
    caller checks many incidents and has them already)."""
    known = known if known is not None else frozenset(taxonomy.ids)
    prediction = incident.prediction.category if incident.prediction else None
    if (
        (incident.category is None or incident.category in known)
        and known.issuperset(incident.secondary)
        and (prediction is None or prediction in known)
    ):
        return []  # the common case, without building any message
    shown = str(incident.path)
    problems = []
    hint = f"known ids: {', '.join(taxonomy.ids)} (see `agentpm taxonomy show`)"
    if incident.category is not None and incident.category not in known:
        problems.append(
            Problem(
                shown,
                f"category: unknown category {incident.category!r}; {hint}",
                incident.line_of("category"),
                "invalid",
                "category",
            )
        )
    for other in incident.secondary:
        if other not in known:
            problems.append(
                Problem(
                    shown,
                    f"secondary: unknown category {other!r}; {hint}",
                    incident.line_of("secondary"),
                    "invalid",
                    "secondary",
                )
            )
    if incident.prediction and incident.prediction.category and incident.prediction.category not in known:
        problems.append(
            Problem(
                shown,
                f"prediction.category: unknown category {incident.prediction.category!r}; "
                "re-run `agentpm classify --write` with this taxonomy's model",
                incident.line_of("prediction"),
                "invalid",
                "prediction",
            )
        )
    return problems


class IdLedger:
    """Remembers the first file to use each id; a later file with the same id is a problem."""

    def __init__(self) -> None:
        self._first: dict[str, object] = {}

    def check(self, record, shown: str) -> Problem | None:
        """None for a new (or absent) id; else the duplicate-id problem of ``record``."""
        if record.id is None:
            return None
        earlier = self._first.get(record.id)
        if earlier is None:
            self._first[record.id] = record
            return None
        where = f"{earlier.path}:{earlier.line_of('id')}" if earlier.line_of("id") else str(earlier.path)
        return Problem(
            shown,
            f"id: duplicate id {record.id!r}, already used by {where}; ids must be unique across the corpus",
            record.line_of("id"),
            "invalid",
            "id",
        )


class CorpusChecks:
    """The checks that need more than one file: taxonomy ids and unique ids, in file order."""

    def __init__(self, taxonomy: Taxonomy | None) -> None:
        self.taxonomy = taxonomy
        self.known = frozenset(taxonomy.ids) if taxonomy else frozenset()
        self.ids = IdLedger()

    def problems(self, record, shown: str) -> list[Problem]:
        found = check_against_taxonomy(record, self.taxonomy, self.known) if self.taxonomy else []
        duplicate = self.ids.check(record, shown)
        if duplicate:
            found.append(duplicate)
        return found


def load_corpus(
    paths: Sequence[Path | str] | Path | str,
    taxonomy: Taxonomy | None = None,
    parse: Callable[[Path], ParseResult] = parse_file,
    progress: Callable[[int, int], None] | None = None,
) -> Corpus:
    """Parse every incident file under ``paths``.

    A file with any problem is left out of ``incidents`` and its problems are reported;
    a repeated id is a problem of the later file.
    """
    files, problems = discover(paths)
    return load_files(files, problems, taxonomy, parse, progress)


def load_files(
    files: Sequence[Path],
    problems: Sequence[Problem] = (),
    taxonomy: Taxonomy | None = None,
    parse: Callable[[Path], ParseResult] = parse_file,
    progress: Callable[[int, int], None] | None = None,
) -> Corpus:
    """:func:`load_corpus` for files already found by :func:`discover` (and its problems)."""
    corpus = Corpus(problems=list(problems))
    checks = CorpusChecks(taxonomy)
    for number, path in enumerate(files, 1):
        result = parse(path)
        corpus.files_read += 1
        if progress:
            progress(number, len(files))
        corpus.problems.extend(result.problems)
        if result.incident is None:
            continue
        # A file with field problems or warnings still counts: what could be read is kept.
        incident = result.incident
        found = checks.problems(incident, str(path))
        if found:
            corpus.problems.extend(found)
        else:
            corpus.incidents.append(incident)
    return corpus

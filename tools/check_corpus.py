#!/usr/bin/env python3
"""Check the shipped corpus: the reports modelled on public texts and the hand-written ones.

    python tools/check_corpus.py [CORPUS]      # prints one line per problem, exit 1 if any

What it holds (issue "Classifier that holds on real incident text"):
- every report parses, with a taxonomy category;
- modelled reports (those with ``source``) carry ``source_kind`` (issue|pr|writeup|record|chat),
  a one-line ``rationale`` and ``split`` (train|test); one report per source, at most 10 per
  repository or site; no source group on both sides of the split;
- at least 150 modelled reports per category; at least 40 % informal (issue, PR, chat) and
  30 % write-ups; at least a quarter in the test split;
- no e-mail addresses or key-like strings in any report; lengths within bounds.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agentpm.classifier.provenance import extra, register_of, source_group  # noqa: E402
from agentpm.records.corpus import load_corpus  # noqa: E402
from agentpm.taxonomy import load_taxonomy  # noqa: E402

KINDS = {"issue", "pr", "writeup", "record", "chat"}
MIN_PER_CATEGORY = 150
MAX_PER_GROUP = 10
MIN_INFORMAL, MIN_WRITEUP, MIN_TEST = 0.40, 0.30, 0.25
WORDS = {"informal": (15, 600), "writeup": (40, 800), "record": (30, 600)}
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[a-z]{2,}\b", re.IGNORECASE)
KEY_LIKE = re.compile(
    r"(sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abpr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY)"
)
_WORD = re.compile(r"\w+")


def canonical_source(source: str) -> str:
    found = re.match(r"^https?://github\.com/([^/]+/[^/]+)/(?:issues|pull|discussions)/(\d+)", source.strip())
    return f"{found.group(1)}#{found.group(2)}".lower() if found else source.strip().rstrip("/").lower()


def check(corpus_path: Path) -> tuple[list[str], dict]:
    taxonomy = load_taxonomy(REPO / "taxonomy" / "taxonomy.yaml")
    corpus = load_corpus([corpus_path], taxonomy=taxonomy)
    problems = [f"{problem}" for problem in corpus.problems]
    sources: dict[str, str] = {}
    groups: dict[str, set[str]] = defaultdict(set)
    per_group: Counter = Counter()
    per_category: Counter = Counter()
    registers: Counter = Counter()
    test = 0
    modelled = 0
    for incident in corpus.incidents:
        where = str(incident.path)
        raw = Path(incident.path).read_text(encoding="utf-8")
        if EMAIL.search(raw):
            problems.append(f"{where}: e-mail address {EMAIL.search(raw).group(0)!r}")
        if KEY_LIKE.search(raw):
            problems.append(f"{where}: key-like string {KEY_LIKE.search(raw).group(0)[:10]}…")
        if not incident.category:
            problems.append(f"{where}: no category")
            continue
        source = extra(incident, "source")
        if not source:
            continue
        modelled += 1
        kind = str(extra(incident, "source_kind") or "")
        if kind not in KINDS:
            problems.append(f"{where}: source_kind {kind!r} is not one of {sorted(KINDS)}")
        rationale = extra(incident, "rationale")
        if not isinstance(rationale, str) or not rationale.strip() or "\n" in rationale.strip():
            problems.append(f"{where}: rationale must be one line")
        split = extra(incident, "split")
        if split not in ("train", "test"):
            problems.append(f"{where}: split must be train or test, not {split!r}")
        key = canonical_source(str(source))
        if key in sources:
            problems.append(f"{where}: source {source} is also the source of {sources[key]}")
        sources[key] = where
        group = source_group(str(source))
        per_group[group] += 1
        groups[group].add(str(split))
        per_category[incident.category] += 1
        register = register_of(incident)
        registers[register] += 1
        test += split == "test"
        low, high = WORDS[register]
        words = len(_WORD.findall(incident.title + " " + " ".join(incident.sections.values())))
        if not low <= words <= high:
            problems.append(f"{where}: {words} words, outside {low}-{high} for the {register} register")
    for group, count in per_group.items():
        if count > MAX_PER_GROUP:
            problems.append(f"{group}: {count} reports from one repository or site (at most {MAX_PER_GROUP})")
        if len(groups[group]) > 1:
            problems.append(f"{group}: reports of this source group are in both the train and the test split")
    for category in taxonomy.ids:
        if per_category[category] < MIN_PER_CATEGORY:
            problems.append(
                f"{category}: {per_category[category]} modelled reports (at least {MIN_PER_CATEGORY})"
            )
    if modelled:
        shares = {"informal": MIN_INFORMAL, "writeup": MIN_WRITEUP}
        for register, minimum in shares.items():
            if registers[register] / modelled < minimum:
                problems.append(
                    f"{register}: {registers[register] / modelled:.0%} of modelled reports (≥ {minimum:.0%})"
                )
        if test / modelled < MIN_TEST:
            problems.append(
                f"test split: {test / modelled:.0%} of modelled reports (at least {MIN_TEST:.0%})"
            )
    summary = {
        "reports": len(corpus.incidents),
        "modelled": modelled,
        "per_category": dict(per_category),
        "registers": dict(registers),
        "test": test,
        "groups": len(per_group),
    }
    return problems, summary


def main(argv: list[str]) -> int:
    problems, summary = check(Path(argv[0]) if argv else REPO / "corpus")
    for problem in problems:
        print(problem)
    print(summary, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Synthetic incident files for benchmarks only (never for training: the corpus is hand-written)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

_WORDS = (
    "agent tool call timeout schema field renamed retry backoff quota context window summary memory "
    "planner executor handoff webhook vendor region certificate latency prompt document instruction "
    "customer refund booking invoice ticket pipeline deploy cache token budget escalation"
).split()


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def write_incidents(
    folder: Path,
    count: int,
    seed: int = 0,
    categories: tuple[str, ...] = (
        "context-pollution",
        "tool-api-drift",
        "cascading-multi-agent",
        "inadequate-fallback",
        "prompt-injection",
        "other",
    ),
    labelled_share: float = 1.0,
) -> list[Path]:
    """Write ``count`` incident files (70 % Markdown, 20 % YAML, 10 % JSON) with valid dates."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    paths = []
    for number in range(count):
        when = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 690))
        detected = when + timedelta(minutes=rng.randrange(1, 600))
        resolved = detected + timedelta(minutes=rng.randrange(1, 3000))
        record = {
            "id": f"BENCH-{number:06d}",
            "title": _prose(rng, 8),
            "date": when.isoformat(),
            "detected": detected.isoformat(),
            "resolved": resolved.isoformat(),
            "severity": f"SEV{rng.randint(1, 4)}",
            "status": "final",
            "systems": ["agent", rng.choice(_WORDS)],
            "tools": [rng.choice(_WORDS)],
            "impact": _prose(rng, 12),
            "action_items": [
                {
                    "title": _prose(rng, 5),
                    "owner": "team-a",
                    "due": (resolved + timedelta(days=14)).date().isoformat(),
                    "status": rng.choice(["open", "done"]),
                    "kind": "prevent",
                }
            ],
        }
        if rng.random() < labelled_share:
            record["category"] = rng.choice(categories)
        kind = rng.random()
        stem = f"{when.date().isoformat()}-bench-{number:06d}"
        if kind < 0.7:
            import yaml

            front = yaml.safe_dump(record, sort_keys=False)
            body = "\n".join(
                f"## {name}\n{_prose(rng, rng.randint(30, 90))}\n"
                for name in ("Summary", "Impact", "Timeline", "Root cause", "Fix implemented")
            )
            path = folder / f"{stem}.md"
            path.write_text(f"---\n{front}---\n{body}", encoding="utf-8")
        elif kind < 0.9:
            import yaml

            record.update(summary=_prose(rng, 60), root_cause=_prose(rng, 40), fix=_prose(rng, 30))
            path = folder / f"{stem}.yaml"
            path.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
        else:
            record.update(summary=_prose(rng, 60), root_cause=_prose(rng, 40))
            path = folder / f"{stem}.json"
            path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        paths.append(path)
    return paths


def copy_corpus(corpus: Path, folder: Path, copies: int) -> int:
    """``copies`` copies of the hand-written corpus (real report text, every format) with unique ids.

    Returns the bytes written. Each corpus file holds its id exactly once, so suffixing that
    one occurrence keeps ids unique without touching anything else.
    """
    from agentpm.records.parsing import parse_file

    written = 0
    sources = [path for path in sorted(corpus.iterdir()) if path.is_file() and path.name != "README.md"]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        incident = parse_file(path).incident
        for copy in range(copies):
            target = folder / f"copy-{copy:02d}" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            copied = (
                text.replace(incident.id, f"{incident.id}-C{copy}", 1) if incident and incident.id else text
            )
            target.write_text(copied, encoding="utf-8")
            written += len(copied.encode("utf-8"))
    return written


def write_realistic(
    folder: Path, corpus: Path, count: int, seed: int = 0, labelled_share: float = 0.9
) -> int:
    """``count`` incident files whose text is the shipped corpus's real reports (every format,
    the modelled public ones included), cycled, each with a unique id, and with the human label
    taken out of ``1 - labelled_share`` of them so the model has files to label. Returns bytes."""
    import re

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(
        path
        for path in corpus.rglob("*")
        if path.suffix in (".md", ".yaml", ".yml", ".json") and path.name != "README.md"
    )
    texts = [(path.suffix, path.read_text(encoding="utf-8")) for path in sources]
    label = re.compile(r'^(\s*"?category"?\s*:\s*)"?([a-z-]+)"?,?\s*$', re.MULTILINE | re.IGNORECASE)
    identifier = re.compile(r'^(\W*"?id"?\W*:\W*"?)([^"\n]+?)("?,?\s*)$', re.MULTILINE | re.IGNORECASE)
    written = 0
    for number in range(count):
        suffix, text = texts[number % len(texts)]
        text = identifier.sub(rf"\g<1>\g<2>-R{number}\g<3>", text, count=1)
        if rng.random() >= labelled_share:
            # the line goes; a JSON file keeps valid syntax with an empty category instead
            text = label.sub("" if suffix != ".json" else r"\g<1>null,", text, count=1)
        target = folder / f"{number // 1000:03d}" / f"real-{number:06d}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written += len(text.encode("utf-8"))
    return written

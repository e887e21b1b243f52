#!/usr/bin/env python3
"""agentpm benchmarks: the figures the issues set targets for, each beside its floor.

Usage: python bench/run.py [startup] [parse] [classify] [train] [tests]   (no names: all)

Each figure is a median of several runs on this machine; its target and a floor measured in
the same run are printed beside it. The floor is what the row is compared against: the cost
that is not agentpm's own (starting Python and importing the libraries a command needs,
reading and parsing the files, one fit of the final model, collecting the tests), so the
gap between the two is what agentpm adds. Nothing here is a pass/fail test: targets live in
benchmarks, not in unit tests. The 100,000-file rows are in bench/scale_bench.py.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import copy_corpus, write_incidents  # noqa: E402


def agentpm_command() -> list[str]:
    script = Path(sys.executable).with_name("agentpm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentpm"]


def wall(argv: list[str], runs: int = 15, cwd: Path = REPO, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            argv,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            env={**os.environ, **(env or {})},
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def python_importing(*modules: str) -> list[str]:
    return [sys.executable, "-c", "import " + ", ".join(modules)]


def report(
    name: str, value: float, unit: str, target: str, floor: float | None = None, what: str = ""
) -> None:
    shown = f"floor {floor:>8.3f} {unit:<6} ({what})" if floor is not None else ""
    print(f"{name:<52} {value:>9.3f} {unit:<6} target {target:<14} {shown}", flush=True)


def bench_startup(work: Path) -> None:
    one = sorted((REPO / "corpus").glob("*.md"))[0]
    report(
        "agentpm --help (median of 15)",
        wall([*agentpm_command(), "--help"]),
        "s",
        "<= 0.15 s",
        wall(python_importing("typer")),
        "python importing typer",
    )
    parser_floor = wall(python_importing("typer", "agentpm.records.parsing"))
    for command in ("validate", "list"):
        report(
            f"agentpm {command} one.md (median of 15)",
            wall([*agentpm_command(), command, str(one)]),
            "s",
            "<= 0.25 s",
            parser_floor,
            "python importing typer and the parser",
        )
    ood = REPO / "tests" / "data" / "ood" / sorted(os.listdir(REPO / "tests" / "data" / "ood"))[0]
    report(
        "agentpm classify one.md, cold (median of 15)",
        wall([*agentpm_command(), "classify", str(ood), "--format", "json"]),
        "s",
        "<= 0.35 s",
        wall(python_importing("typer", "numpy", "agentpm.records.parsing")),
        "python importing typer, numpy, the parser",
    )


def bench_parse(work: Path) -> None:
    from agentpm.records.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    folder = work / "parse"
    write_incidents(folder, 10_000, seed=7)
    taxonomy = load_taxonomy(REPO / "taxonomy" / "taxonomy.yaml")
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        corpus = load_corpus([folder], taxonomy=taxonomy)
        rates.append(corpus.files_read / (time.perf_counter() - started))
    assert not corpus.problems, corpus.problems[:3]
    report(
        "parse + validate 10,000 files, one core (median of 3)",
        statistics.median(rates),
        "files/s",
        ">= 3,000/s",
    )


def _read_parse_tokenise(paths: list[str]) -> int:
    from agentpm.classifier.features import channels
    from agentpm.records.parsing import parse_file

    words = 0
    for path in paths:
        incident = parse_file(path).incident
        if incident is not None:
            cause, context = channels(incident)
            words += len(cause.split()) + len(context.split())
    return words


def tokenise_floor(folder: Path) -> float:
    """Seconds to read, parse and tokenise every file on every core: the batch floor."""
    import multiprocessing

    from agentpm.records.corpus import discover_names

    started = time.perf_counter()
    names, _ = discover_names([folder])
    batches = [names[start : start + 64] for start in range(0, len(names), 64)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        pool.map(_read_parse_tokenise, batches, chunksize=1)
    return time.perf_counter() - started


def bench_classify(work: Path) -> None:
    from agentpm.classifier.classify import classify_files, model_for
    from agentpm.classifier.features import channels
    from agentpm.config import default_model_path
    from agentpm.records.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    # A batch large enough that start-up is a small share: the real corpus text, ten times.
    batch = work / "batch"
    megabytes = copy_corpus(REPO / "corpus", batch, copies=10) / 1e6
    whole = wall([*agentpm_command(), "classify", str(batch), "--format", "json"], runs=5)
    floor = statistics.median(tokenise_floor(batch) for _ in range(3))
    report(
        f"classify {megabytes:.1f} MB batch, whole command (median of 5)",
        megabytes / whole,
        "MB/s",
        ">= 6 MB/s",
        megabytes / floor,
        "read + parse + tokenise, all cores",
    )
    taxonomy = load_taxonomy(REPO / "taxonomy" / "taxonomy.yaml")
    model = model_for(default_model_path(), taxonomy)
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        records, _ = classify_files([batch], taxonomy, model)
        rates.append(megabytes / (time.perf_counter() - started))
    assert not records.problems, records.problems[:3]
    report("  the same, in-process (median of 3)", statistics.median(rates), "MB/s", "comparison")
    corpus = load_corpus([REPO / "corpus"], taxonomy=taxonomy)
    texts = [channels(incident) for incident in corpus.incidents]
    text_mb = sum(len(a.encode()) + len(b.encode()) for a, b in texts) / 1e6
    model.predict_texts(texts)  # warm the per-word cache, as a long batch would be
    started = time.perf_counter()
    model.predict_texts(texts)
    report(
        "  numpy predictor on extracted text, one core",
        text_mb / (time.perf_counter() - started),
        "MB/s",
        "comparison",
    )


def final_fit_seconds() -> float:
    """One fit of the shipped model's settings on all labelled reports: the least training can do."""
    from agentpm.classifier import training
    from agentpm.classifier.predictor import load_model
    from agentpm.config import default_model_path
    from agentpm.records.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(REPO / "taxonomy" / "taxonomy.yaml")
    model = load_model(default_model_path())
    data = training.training_set(load_corpus([REPO / "corpus"], taxonomy=taxonomy), taxonomy)
    started = time.perf_counter()
    training.fit_pipeline(model.manifest["selection"]["chosen"], data, model.temperature)
    return time.perf_counter() - started


def bench_train(work: Path) -> None:
    """`model train` and `model eval` on the shipped corpus, whole commands (a minute or two each)."""
    floor = final_fit_seconds()
    for name, argv, target in (
        (
            "agentpm model train on the corpus (median of 3)",
            ["model", "train", "--corpus", "corpus", "-o", str(work / "m"), "--force"],
            "<= 60 s",
        ),
        (
            "agentpm model eval on the corpus (median of 3)",
            ["model", "eval", "--corpus", "corpus", "--model", str(work / "m"), "--no-card"],
            "<= 120 s",
        ),
    ):
        report(
            name, wall([*agentpm_command(), *argv], runs=3), "s", target, floor, "one fit of the final model"
        )


def bench_tests(work: Path) -> None:
    """The whole test suite as CI runs it (slow and browser tests included), and its collection."""
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    report(
        "test suite, everything (1 run)",
        wall(pytest, runs=1),
        "s",
        "<= 100 s",
        wall([*pytest, "--collect-only"], runs=1),
        "collecting the tests",
    )


BENCHES = {
    "startup": bench_startup,
    "parse": bench_parse,
    "classify": bench_classify,
    "train": bench_train,
    "tests": bench_tests,
}


def main(names: list[str]) -> None:
    chosen = names or list(BENCHES)
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    print(
        f"agentpm benchmarks on {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    work = Path(tempfile.mkdtemp(prefix="agentpm-bench-"))
    try:
        for name in chosen:
            BENCHES[name](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main(sys.argv[1:])

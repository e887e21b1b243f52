#!/usr/bin/env python3
"""agentpm benchmarks: print the figures the issues set targets for (medians on this machine).

Usage: python bench/run.py [startup] [parse] ...   (no names: run all)

Each figure is the median of several runs; the targets are printed beside it. Nothing here is
a pass/fail test: targets live in benchmarks, not in unit tests.
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


def wall(argv: list[str], runs: int = 15, cwd: Path = REPO) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(name: str, value: float, unit: str, target: str) -> None:
    print(f"{name:<44} {value:>10.3f} {unit:<8} (target {target})")


def bench_startup(work: Path) -> None:
    one = sorted((REPO / "corpus").glob("*.md"))[0]
    report("agentpm --help (median of 15)", wall([*agentpm_command(), "--help"]), "s", "<= 0.15 s")
    report(
        "agentpm validate one.md (median of 15)",
        wall([*agentpm_command(), "validate", str(one)]),
        "s",
        "<= 0.3 s",
    )
    report(
        "agentpm list one.md (median of 15)", wall([*agentpm_command(), "list", str(one)]), "s", "<= 0.3 s"
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
        "parse + validate 10,000 files (median of 3)", statistics.median(rates), "files/s", ">= 3,000 files/s"
    )


def bench_classify(work: Path) -> None:
    from agentpm.classifier.classify import load_and_classify
    from agentpm.classifier.features import channels
    from agentpm.classifier.predictor import load_model
    from agentpm.config import default_model_path
    from agentpm.records.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    one = REPO / "tests" / "data" / "ood" / sorted(os.listdir(REPO / "tests" / "data" / "ood"))[0]
    report(
        "agentpm classify one.md, cold (median of 15)",
        wall([*agentpm_command(), "classify", str(one), "--format", "json"]),
        "s",
        "<= 0.5 s",
    )
    corpus_dir = REPO / "corpus"
    megabytes = sum(path.stat().st_size for path in corpus_dir.rglob("*") if path.is_file()) / 1e6
    whole = wall([*agentpm_command(), "classify", str(corpus_dir), "--format", "json"], runs=5)
    report(
        f"classify corpus/ ({megabytes:.1f} MB), whole command",
        megabytes / whole,
        "MB/s",
        "start-up included",
    )
    # A batch large enough that start-up is a small share: the real corpus text, ten times.
    batch = work / "batch"
    batch_megabytes = copy_corpus(corpus_dir, batch, copies=10) / 1e6
    whole = wall([*agentpm_command(), "classify", str(batch), "--format", "json"], runs=5)
    report(
        f"classify {batch_megabytes:.1f} MB batch, whole command (median of 5)",
        batch_megabytes / whole,
        "MB/s",
        ">= 4 MB/s",
    )
    taxonomy = load_taxonomy(REPO / "taxonomy" / "taxonomy.yaml")
    model = load_model(default_model_path())
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        corpus, _ = load_and_classify([batch], taxonomy, model)
        rates.append(batch_megabytes / (time.perf_counter() - started))
    assert not corpus.problems, corpus.problems[:3]
    report("  the same, in-process (median of 3)", statistics.median(rates), "MB/s", ">= 4 MB/s")
    # The copies repeat words, which the predictor analyses once per worker; real reports bring
    # new words all the time. The worst case: every batch of 64 files starts with no words known.
    from agentpm.classifier import predictor as model_module

    limit, model_module._Words.LIMIT = model_module._Words.LIMIT, -1
    rates = []
    try:
        for _ in range(3):
            started = time.perf_counter()
            load_and_classify([batch], taxonomy, model)
            rates.append(batch_megabytes / (time.perf_counter() - started))
    finally:
        model_module._Words.LIMIT = limit
    report("  in-process, no word reused between batches", statistics.median(rates), "MB/s", "worst case")
    corpus = load_corpus([corpus_dir], taxonomy=taxonomy)
    texts = [channels(incident) for incident in corpus.incidents]
    text_mb = sum(len(a.encode()) + len(b.encode()) for a, b in texts) / 1e6
    model.predict_texts(texts)  # warm the per-word cache, as a long batch would be
    started = time.perf_counter()
    model.predict_texts(texts)
    report(
        "numpy predictor on extracted text, one core",
        text_mb / (time.perf_counter() - started),
        "MB/s",
        "comparison",
    )
    import numpy as np

    from agentpm.classifier import training

    data = training.training_set(corpus, taxonomy)
    pipeline = training.fit_pipeline(model.manifest["selection"]["chosen"], data, model.temperature)
    started = time.perf_counter()
    pipeline.predict_proba(np.array(texts, dtype=object))
    report(
        "scikit-learn predict_proba on the same text",
        text_mb / (time.perf_counter() - started),
        "MB/s",
        "comparison",
    )


def bench_train(work: Path) -> None:
    """`model train` and `model eval` on the shipped corpus, whole commands (one run each: minutes)."""
    for name, argv, target in (
        (
            "agentpm model train on the corpus",
            ["model", "train", "--corpus", "corpus", "-o", str(work / "m")],
            "<= 120 s",
        ),
        (
            "agentpm model eval on the corpus",
            [
                "model",
                "eval",
                "--corpus",
                "corpus",
                "--model",
                str(work / "m"),
                "--no-card",
                "--repeats",
                "2",
            ],
            "<= 120 s",
        ),
    ):
        report(f"{name} (1 run)", wall([*agentpm_command(), *argv], runs=1), "s", target)


BENCHES = {"startup": bench_startup, "parse": bench_parse, "classify": bench_classify, "train": bench_train}


def main(names: list[str]) -> None:
    chosen = names or list(BENCHES)
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        sys.exit(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    print(f"agentpm benchmarks on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    work = Path(tempfile.mkdtemp(prefix="agentpm-bench-"))
    try:
        for name in chosen:
            BENCHES[name](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Time `agentpm trends` and `agentpm report` on 100,000 generated incident files, cold and warm.

Usage: python bench/scale_bench.py [--count N] [--runs R] [--set synthetic|realistic]
                                   [--labelled-share S] [--fresh]

Cold: an empty parse cache (every file parsed, unlabelled ones classified). Warm: the same
command again, served by the cache. Each figure is the median wall time of R runs (cold
runs get a new cache folder each time); peak memory is the largest resident set of the
agentpm process tree's biggest process (getrusage of the waited-for children, measured in a
fresh wrapper process per run so runs do not mask each other). Below --count 100,000 the
figures are also given per 100,000 files (linear). The generated files are kept in
bench/_work/ (git-ignored) and reused unless --fresh is given.

--set synthetic (default): generated front matter and bodies of random domain words.
--set realistic: the shipped corpus's real report text, cycled with unique ids.

Each row is printed beside its floor, measured in the same run on the same files: cold
against reading every file and loading its front matter with libyaml on every core (what
any tool must do), warm against listing the folder, a stat of every file and one query of
the command's own cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import write_incidents, write_realistic  # noqa: E402

#: The issue's targets, per 100,000 files on 2 cores.
TARGETS = {
    ("trends", "cold"): 10.0,
    ("trends", "warm"): 3.0,
    ("report", "cold"): 10.0,
    ("report", "warm"): 3.5,
}
TARGET_BYTES = 1024**3
# Runs one command as a child and prints its wall time and the children's peak RSS (KiB on Linux).
_WRAPPER = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def agentpm_command() -> list[str]:
    script = Path(sys.executable).with_name("agentpm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentpm"]


def measure(argv: list[str], cache: Path, cwd: Path) -> tuple[float, int]:
    env = {**os.environ, "AGENTPM_CACHE_DIR": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], capture_output=True, text=True, env=env, cwd=cwd, check=True
    ).stdout.split()
    seconds, kib, code = float(out[0]), int(out[1]), int(out[2])
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited with {code}")
    return seconds, kib * 1024


def corpus(count: int, share: float, fresh: bool, kind: str) -> Path:
    folder = (
        REPO
        / "bench"
        / "_work"
        / (f"scale-{count}-{share}" if kind == "synthetic" else f"real-{count}-{share}")
    )
    marker = folder / ".complete"
    if fresh and folder.exists():
        shutil.rmtree(folder)
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        print(f"writing {count:,} {kind} incident files to {folder} ...", flush=True)
        if kind == "synthetic":
            write_incidents(folder, count, seed=11, labelled_share=share)
        else:
            write_realistic(folder, REPO / "corpus", count, seed=11, labelled_share=share)
        marker.write_text("ok\n")
        print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def _front_matter(path: str) -> int:
    import json

    import yaml

    from agentpm.records.parsing import split_front_matter

    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    if path.endswith(".json"):
        return len(json.loads(text))
    front = split_front_matter(text)[0] if path.endswith(".md") else text
    return len(yaml.load(front or "", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {})


def cold_floor(folder: Path) -> float:
    """Seconds to read every file and load its front matter with libyaml, on every core."""
    import multiprocessing

    from agentpm.records.corpus import discover_names

    started = time.perf_counter()
    names, _ = discover_names([folder])
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        pool.map(_front_matter, names, chunksize=500)
    return time.perf_counter() - started


def warm_floor(folder: Path, cache: Path) -> float:
    """Seconds to list the files, stat each one and read the cache's rows in one query."""
    import sqlite3

    from agentpm.records.corpus import discover_names

    started = time.perf_counter()
    names, _ = discover_names([folder])
    for name in names:
        os.stat(name)
    database = next(cache.rglob("*.sqlite3"))
    with sqlite3.connect(database) as connection:
        connection.execute("SELECT * FROM files").fetchall()
    return time.perf_counter() - started


def report_line(
    name: str, seconds: list[float], peak: list[int], target: float, floor: float, scale: float
) -> None:
    wall = statistics.median(seconds)
    memory = max(peak)
    per = f"  = {wall * scale:6.2f} s per 100k" if scale != 1 else ""
    verdict = "ok" if wall * scale <= target and memory <= TARGET_BYTES else "over target"
    print(
        f"{name:<26} {wall:>7.2f} s{per}  (runs: {', '.join(f'{s:.2f}' for s in seconds)})  floor {floor:6.2f} s  "
        f"peak {memory / 1024**2:>5.0f} MiB   target <= {target:.1f} s per 100k, <= 1 GiB: {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--labelled-share",
        type=float,
        default=0.9,
        help="share of files with a human category; the rest go through the classifier",
    )
    parser.add_argument("--set", dest="kind", choices=("synthetic", "realistic"), default="synthetic")
    parser.add_argument("--fresh", action="store_true", help="regenerate the files")
    args = parser.parse_args()
    print(
        f"agentpm scale benchmark: {args.count:,} {args.kind} files, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f} at start"
    )
    folder = corpus(args.count, args.labelled_share, args.fresh, args.kind)
    scale = 100_000 / args.count
    work = Path(tempfile.mkdtemp(prefix="agentpm-scale-"))
    commands = {
        "trends": [*agentpm_command(), "trends", str(folder), "--format", "json"],
        "report": [
            *agentpm_command(),
            "report",
            str(folder),
            "--format",
            "html",
            "--as-of",
            "2026-12-01",
            "-o",
            str(work / "report.html"),
            "--force",
        ],
    }
    try:
        for name, argv in commands.items():
            cold, cold_peak = [], []
            for run in range(args.runs):
                seconds, peak = measure(argv, work / f"cache-{name}-cold-{run}", work)
                cold.append(seconds)
                cold_peak.append(peak)
            floor = statistics.median(cold_floor(folder) for _ in range(args.runs))
            report_line(f"{name} cold (empty cache)", cold, cold_peak, TARGETS[name, "cold"], floor, scale)
            warm_cache = work / f"cache-{name}-cold-0"
            warm, warm_peak = [], []
            for _ in range(args.runs):
                seconds, peak = measure(argv, warm_cache, work)
                warm.append(seconds)
                warm_peak.append(peak)
            floor = statistics.median(warm_floor(folder, warm_cache) for _ in range(args.runs))
            report_line(f"{name} warm (cache)", warm, warm_peak, TARGETS[name, "warm"], floor, scale)
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

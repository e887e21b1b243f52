#!/usr/bin/env python3
"""Time `agentpm trends` and `agentpm report` on 100,000 generated incident files, cold and warm.

Usage: python bench/scale_bench.py [--count N] [--runs R] [--labelled-share S] [--fresh]

Cold: an empty parse cache (every file parsed, unlabelled ones classified). Warm: the same
command again, served by the cache. Each figure is the median wall time of R runs (cold
runs get a new cache folder each time); peak memory is the largest resident set of the
agentpm process tree's biggest process (getrusage of the waited-for children, measured in a
fresh wrapper process per run so runs do not mask each other). The generated files are kept
in bench/_work/ (git-ignored) and reused unless --fresh is given.
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

from generate import write_incidents  # noqa: E402

TARGET_SECONDS = 10.0
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


def corpus(count: int, share: float, fresh: bool) -> Path:
    folder = REPO / "bench" / "_work" / f"scale-{count}-{share}"
    marker = folder / ".complete"
    if fresh and folder.exists():
        shutil.rmtree(folder)
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        print(f"writing {count:,} incident files to {folder} ...", flush=True)
        write_incidents(folder, count, seed=11, labelled_share=share)
        marker.write_text("ok\n")
        print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)
    return folder


def report_line(name: str, seconds: list[float], peak: list[int]) -> None:
    wall = statistics.median(seconds)
    memory = max(peak)
    verdict = "ok" if wall <= TARGET_SECONDS and memory <= TARGET_BYTES else "over target"
    print(
        f"{name:<34} {wall:>7.2f} s  (runs: {', '.join(f'{s:.2f}' for s in seconds)})  "
        f"peak {memory / 1024**2:>6.0f} MiB   target <= {TARGET_SECONDS:.0f} s, <= 1 GiB: {verdict}",
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
    parser.add_argument("--fresh", action="store_true", help="regenerate the files")
    args = parser.parse_args()
    print(
        f"agentpm scale benchmark: {args.count:,} files, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    folder = corpus(args.count, args.labelled_share, args.fresh)
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
            report_line(f"{name} cold (empty cache)", cold, cold_peak)
            warm_cache = work / f"cache-{name}-cold-0"
            warm, warm_peak = [], []
            for _ in range(args.runs):
                seconds, peak = measure(argv, warm_cache, work)
                warm.append(seconds)
                warm_peak.append(peak)
            report_line(f"{name} warm (cache)", warm, warm_peak)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

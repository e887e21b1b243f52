#!/usr/bin/env python3
"""Median wall time of `agentpm lint one.md` (the pre-commit case): target ≤ 0.3 s.

Usage: python bench/lint_bench.py [FILE]   (default: a full post-mortem from the corpus)

Seven runs of the real command in a fresh process each, as a pre-commit hook runs it; the
first run is a warm-up for the file cache and is not counted. A figure, not a test.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO / "corpus" / "2025-01-08-ap-intake-blank-lines-ocr-timeouts.md"
RUNS = 7
TARGET_SECONDS = 0.3


def agentpm_command() -> list[str]:
    script = Path(sys.executable).with_name("agentpm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "agentpm"]


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE
    if not target.is_file():
        print(f"lint_bench: {target}: no such file", file=sys.stderr)
        return 2
    argv = agentpm_command() + ["lint", str(target)]
    subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    verdict = "ok" if median <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"agentpm lint {target.name}: median {median:.3f} s over {RUNS} runs "
        f"(min {min(times):.3f}, max {max(times):.3f}); target <= {TARGET_SECONDS} s: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: run the real CLI in a subprocess, write incident files into temp folders."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
TAXONOMY = REPO / "taxonomy" / "taxonomy.yaml"


def pytest_sessionstart(session):
    """Remove folder trees deeper than shutil.rmtree can recurse (the hostile-file test makes
    one, and removes it itself; a run interrupted before that would otherwise break pytest's own
    clean-up of old temporary folders in every later run)."""
    import getpass
    import tempfile
    import time

    if hasattr(session.config, "workerinput"):
        return  # the controller does it once, before any worker makes a tree of its own
    root = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    if not root.is_dir():
        return
    # Only earlier runs' folders (untouched for ten minutes), never one a run is using now.
    stale = [
        str(path)
        for path in root.iterdir()
        if path.is_dir()
        and not path.is_symlink()
        and (path.name.startswith("garbage-") or time.time() - path.stat().st_mtime > 600)
    ]
    stack, order = stale, []
    while stack:
        current = stack.pop()
        order.append(current)
        try:
            with os.scandir(current) as entries:
                stack.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
        except OSError:
            continue
    for folder in reversed(order):
        if folder.count(os.sep + "d" + os.sep) > 100:  # only the generated 1,500-level chain
            for name in os.listdir(folder):
                path = os.path.join(folder, name)
                if not os.path.isdir(path) or os.path.islink(path):
                    os.unlink(path)
            os.rmdir(folder)


def pytest_configure(config):
    # Each worker loads matplotlib once: reports made in this process then draw their charts
    # here instead of starting a helper process that imports it again for every report (the
    # helper's own path is tested in test_report and test_parallel).
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def pytest_collection_modifyitems(config, items):
    """Each slow test first in one worker's share of the run, the rest in their order.

    ``--dist worksteal`` (pyproject) hands each worker a contiguous share and lets an idle
    worker take the tail of a busy one's: the retrain starts at once on a worker of its own,
    and the quick tests queued behind it move to the other worker instead of waiting for it.
    """
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    quick = iter([item for item in items if item.get_closest_marker("slow") is None])
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    starts, left = [], len(items)
    for remaining in range(workers, 0, -1):  # how the scheduler splits: what is left, evenly
        starts.append(len(items) - left)
        left -= left // remaining
    ordered: list = []
    for number, start in enumerate(starts):
        ordered.extend(islice(quick, max(0, start - len(ordered))))
        ordered.extend(slow[number : number + 1])
        if number == 0:
            ordered.extend(slow[len(starts) :])  # more slow tests than workers: the first share
    ordered.extend(quick)
    items[:] = ordered


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files (rendered reports, model card) instead of comparing.",
    )


@pytest.fixture
def update_golden(request) -> bool:
    return bool(request.config.getoption("--update-golden"))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _clean_env(env: dict | None) -> dict:
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    for key in list(full_env):
        if key.startswith("AGENTPM_"):
            full_env.pop(key)
    full_env.update(env or {})
    return full_env


def run_subprocess(
    *args: str, cwd: Path | None = None, env: dict | None = None, stdin: str | None = None
) -> Result:
    """The real console entry in its own process: for start-up, import weight and signal tests."""
    full_env = {**_clean_env(env), "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "agentpm", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, stdin: str | None = None) -> Result:
    """The CLI in this process (typer's runner): the same commands, errors and exit codes, no start-up cost."""
    from typer.testing import CliRunner

    from agentpm.cli import app

    full_env = _clean_env(env)
    # CliRunner sets the variables it is given; the ones we removed must be unset explicitly.
    removed = {key: None for key in os.environ if key.startswith("AGENTPM_") and key not in full_env}
    previous = os.getcwd()
    os.chdir(cwd or REPO)
    try:
        result = CliRunner().invoke(
            app, list(args), input=stdin, env={**full_env, **removed}, catch_exceptions=False
        )
    finally:
        os.chdir(previous)
    return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli():
    return run_cli


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


GOOD_MD = """---
id: INC-1
title: Refund agent read a renamed field as zero
date: 2026-03-02T09:00:00+01:00
detected: 2026-03-02T11:30:00+01:00
resolved: 2026-03-02T15:00:00Z
severity: sev2
status: final
category: tool-api-drift
owner_team: payments   # unknown field, must be kept
---
# Refund agent read a renamed field as zero

## Summary
The ledger API renamed `amount` to `transaction_amount`.

## Root Cause Analysis
No schema validation on tool output.

### Resolution
Pinned the API version.
"""

"""The HTML report as a person sees it: opened in headless Chromium, offline.

Checks: the page loads with no console errors, makes no network request, shows both
charts, and shows an incident title containing a script tag as text. A control page
with a console error and an external image proves the checks can fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_trends import incident

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

if CHROMIUM is None and not IN_CI:
    pytest.skip(
        "chromium is not installed (apt-get install chromium; .ci/run installs it, and in CI this test "
        "fails instead of skipping)",
        allow_module_level=True,
    )

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    # Network disabled: any request the page made would go to a dead proxy and be logged.
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]
SCRIPT_TITLE = "Planner ran <script>alert(1)</script> from a ticket"


def open_page(page: Path, work: Path) -> tuple[str, list[str], list[str]]:
    """(DOM after load, console messages, URLs the page itself requested)."""
    assert CHROMIUM is not None, "chromium is required in CI (.ci/run installs it)"
    profile = work / f"profile-{page.stem}"
    net_log = work / f"net-{page.stem}.json"
    proc = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--log-net-log={net_log}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    log = json.loads(net_log.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    requested = []
    for event in log["events"]:
        params = event.get("params") or {}
        # The browser's own background requests have no page origin; the page's requests do.
        if (
            names.get(event["type"]) == "URL_REQUEST_START_JOB"
            and "url" in params
            and params.get("initiator") != "not an origin"
        ):
            requested.append(params.get("url", ""))
    return proc.stdout, console, requested


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    from conftest import run_cli

    work = tmp_path_factory.mktemp("browser")
    folder = work / "incidents"
    for number in range(6):
        incident(
            folder,
            f"q1-{number}.md",
            f"Retry storm {number}",
            f"2026-02-{number + 1:02d}",
            "inadequate-fallback",
            severity="SEV2",
        )
    for number in range(6):
        incident(
            folder,
            f"q2-{number}.md",
            f"Poisoned page {number}",
            f"2026-05-{number + 1:02d}",
            "prompt-injection",
            severity="SEV1" if number == 0 else "SEV3",
        )
    incident(folder, "q2-script.md", SCRIPT_TITLE, "2026-05-20", "prompt-injection", severity="SEV1")
    page = work / "report.html"
    result = run_cli(
        "report",
        str(folder),
        "--as-of",
        "2026-07-01",
        "-o",
        str(page),
        env={"AGENTPM_CACHE_DIR": str(work / "cache")},
    )
    assert result.code == 0, result.stderr
    return page


def test_static_html_is_self_contained(report_page):
    html = report_page.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"""url\(\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html and "<link" not in html.lower()


def test_report_in_chromium(report_page, tmp_path):
    dom, console, requested = open_page(report_page, tmp_path)
    assert console == [], console
    assert [url for url in requested if not url.startswith(("file:", "data:"))] == []
    assert dom.count("<svg") >= 2 and dom.count('class="chart"') == 2
    assert "Share of incidents by category" in dom and "Severity by category" in dom
    # The title is text: escaped in the DOM, and no script element exists.
    assert "Planner ran &lt;script&gt;alert(1)&lt;/script&gt; from a ticket" in dom
    assert "<script" not in dom.lower()
    assert "1. Failure patterns this quarter" in dom and "Prompt injection" in dom


def test_checks_catch_a_bad_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="https://fonts.example.invalid/x.png"><script>console.error("boom")</script>'
        "</body></html>",
        encoding="utf-8",
    )
    _, console, requested = open_page(bad, tmp_path)
    assert any('"boom"' in line for line in console)
    assert "https://fonts.example.invalid/x.png" in requested

"""`agentpm report`: the numbers, the escaping, the refusal to overwrite, and the committed sample reports."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO
from test_trends import incident

GOLDEN = REPO / "reports"
GOLDEN_ARGS = ("report", "corpus", "--quarter", "2026Q3", "--as-of", "2026-10-01")
GOLDEN_FILES = ("2026Q3.md", "2026Q3-trend.svg", "2026Q3-severity.svg", "2026Q3.html", "2026Q3.json")


@pytest.fixture
def env(tmp_path) -> dict:
    return {"AGENTPM_CACHE_DIR": str(tmp_path / "cache")}


ACTIONS = """action_items:
  - {title: Old open item, owner: team-a, due: 2026-04-20, status: open}
  - {title: Done item, owner: team-a, due: 2026-04-21, status: done}
  - {title: Future item, owner: team-b, due: 2026-12-01, status: open}"""


@pytest.fixture
def small(tmp_path) -> Path:
    folder = tmp_path / "inc"
    for number in range(10):
        incident(folder, f"q1-{number}.md", f"Q1 outage {number}", "2026-02-01", "other")
    # detected after 1, 2, 3 and 4 hours; resolved after 10 h (two of them only)
    for number in range(10):
        times = ""
        if number < 4:
            times = f"detected: 2026-05-0{number + 1}T0{number + 1}:00:00Z\n"
            if number < 2:
                times += f"resolved: 2026-05-0{number + 1}T10:00:00Z\n"
        incident(
            folder,
            f"q2-{number}.md",
            f"Q2 injection {number}",
            f"2026-05-{number + 1:02d}T00:00:00Z",
            "prompt-injection",
            severity="SEV1" if number == 9 else "SEV3",
            extra=times + (ACTIONS if number == 0 else ""),
        )
    incident(
        folder,
        "q2-x.md",
        "<script>alert(1)</script> | *bold* [x](javascript:alert(2))",
        "2026-05-20",
        "prompt-injection",
        severity="SEV2",
    )
    return folder


def test_report_numbers_in_json(cli, small, env):
    result = cli("report", str(small), "--as-of", "2026-07-15", "--format", "json", env=env)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["quarter"] == "2026Q2"  # latest complete quarter as of the report date
    assert report["incidents"] == 11 and report["previous_incidents"] == 10
    assert report["labels"] == {
        "mode": "auto",
        "human_labelled": 11,
        "accepted_predictions": 0,
        "imported": 0,
        "model_labelled": 0,
        "unclassified": 0,
    }
    head = {row["category"]: row for row in report["headline"]}
    assert head["prompt-injection"]["count"] == 11 and head["prompt-injection"]["significant"] is True
    assert head["unclassified"]["count"] == 0  # always shown
    assert head["other"]["change"] == "down 100.0 pp"
    assert [row["category"] for row in report["rising"]] == ["prompt-injection"]
    assert report["rising"][0]["prevention"]  # from the taxonomy
    timing = {row["category"]: row for row in report["timing"]}["prompt-injection"]
    assert timing["detect"]["n"] == 4 and timing["detect"]["median_seconds"] == 2.5 * 3600
    assert timing["detect"]["p90_seconds"] == pytest.approx(3.7 * 3600)
    assert timing["resolve"]["n"] == 2 and timing["resolve"]["median"] == "10h"
    actions = {row["category"]: row for row in report["actions"]["by_category"]}["prompt-injection"]
    assert (actions["total"], actions["done"], actions["open"], actions["overdue"]) == (3, 1, 2, 1)
    assert [row["title"] for row in report["actions"]["overdue"]] == ["Old open item"]
    assert report["actions"]["overdue"][0]["days_overdue"] == 86
    notable = report["notable"]
    assert notable[0]["severity"] == "SEV1" and len(notable) == 5
    assert report["trend"]["quarters"] == ["2026Q1", "2026Q2"]
    assert report["provenance"]["files_read"] == 21 and report["provenance"]["problems_skipped"] == 0
    # The same figures as `trends` for that quarter.
    trends = json.loads(cli("trends", str(small), "--format", "json", env=env).stdout)
    for row in trends:
        if row["period"] == "2026Q2":
            assert (head[row["category"]]["count"], head[row["category"]]["share_low"]) == (
                row["count"],
                row["share_low"],
            )


def test_report_escapes_incident_text(cli, small, env, tmp_path):
    html = cli("report", str(small), "--as-of", "2026-07-15", "--format", "html", env=env)
    assert html.code == 0, html.stderr
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html.stdout
    assert "<script" not in html.stdout.lower()
    md = cli("report", str(small), "--as-of", "2026-07-15", "--format", "md", env=env).stdout
    line = next(line for line in md.splitlines() if "alert(1)" in line)
    assert "&lt;script&gt;" in line and "\\|" in line and "\\*bold\\*" in line and "\\[x\\]" in line
    assert "Charts are written next to the report" in md


def test_output_files_refuse_to_overwrite(cli, small, env, tmp_path):
    out = tmp_path / "out" / "q.md"
    out.parent.mkdir()
    first = cli("report", str(small), "--as-of", "2026-07-15", "-o", str(out), env=env)
    assert first.code == 0, first.stderr
    trend = out.with_name("q-trend.svg")
    assert trend.read_text().lstrip().startswith("<?xml") and "![" in out.read_text()
    assert "(q-trend.svg)" in out.read_text() and "(q-severity.svg)" in out.read_text()
    # links are relative to the report's folder
    assert "(<../inc/q2-9.md>)" in out.read_text()
    out.write_text("mine")
    again = cli("report", str(small), "--as-of", "2026-07-15", "-o", str(out), env=env)
    assert again.code == 2 and "already exists" in again.stderr and out.read_text() == "mine"
    out.unlink()
    blocked = cli("report", str(small), "--as-of", "2026-07-15", "-o", str(out), env=env)
    assert blocked.code == 2 and "q-trend.svg: already exists" in blocked.stderr and not out.exists()
    forced = cli("report", str(small), "--as-of", "2026-07-15", "-o", str(out), "--force", env=env)
    assert forced.code == 0 and out.read_text().startswith("# Agent incident report 2026Q2")
    html = tmp_path / "out" / "q.html"
    assert cli("report", str(small), "--as-of", "2026-07-15", "-o", str(html), env=env).code == 0
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_bad_quarter_and_dates_are_usage_errors(cli, small, env):
    for args, message in (
        (("--quarter", "Q3-2026"), "--quarter 'Q3-2026'"),
        (("--as-of", "2026-01-01"), "no complete quarter"),
        (("--as-of", "soon"), "--as-of: 'soon' is not a calendar date"),
    ):
        result = cli("report", str(small), *args, env=env)
        assert result.code == 2 and message in result.stderr and "Traceback" not in result.stderr, (
            result.stderr
        )


def test_committed_sample_reports_are_up_to_date(cli, tmp_path, update_golden, env):
    # Same layout as the repository (reports/ beside corpus/), so links and paths match.
    (tmp_path / "corpus").symlink_to(REPO / "corpus")
    (tmp_path / "reports").mkdir()
    for name in ("2026Q3.md", "2026Q3.html", "2026Q3.json"):
        result = cli(*GOLDEN_ARGS, "-o", f"reports/{name}", cwd=tmp_path, env=env)
        assert result.code == 0, result.stderr
    for name in GOLDEN_FILES:
        fresh = (tmp_path / "reports" / name).read_bytes()
        if update_golden:
            GOLDEN.mkdir(exist_ok=True)
            shutil.copyfile(tmp_path / "reports" / name, GOLDEN / name)
            continue
        assert (GOLDEN / name).exists(), f"reports/{name} is missing; run pytest --update-golden"
        assert fresh == (GOLDEN / name).read_bytes(), (
            f"reports/{name} is out of date; regenerate with pytest tests/test_report.py --update-golden"
        )


def test_a_quiet_quarter_is_a_report_not_an_error(cli, small, env):
    result = cli(
        "report", str(small), "--quarter", "2026Q3", "--as-of", "2026-12-01", "--format", "json", env=env
    )
    report = json.loads(result.stdout)
    assert result.code == 0 and report["incidents"] == 0
    assert report["trend"]["quarters"][-1] == "2026Q3" and report["trend"]["totals"][:2] == [10, 11]
    markdown = cli("report", str(small), "--quarter", "2026Q3", "--as-of", "2026-12-01", env=env).stdout
    assert "No incidents reported in 2026Q3" in markdown


def test_the_unfinished_quarter_is_marked_partial_and_not_compared(cli, small, env):
    report = json.loads(
        cli(
            "report", str(small), "--quarter", "2026Q2", "--as-of", "2026-05-25", "--format", "json", env=env
        ).stdout
    )
    assert report["partial"] is True
    assert all(row["change_pp"] is None for row in report["headline"])
    whole = json.loads(
        cli(
            "report", str(small), "--quarter", "2026Q2", "--as-of", "2026-07-01", "--format", "json", env=env
        ).stdout
    )
    assert whole["partial"] is False


def test_overdue_items_of_earlier_quarters_stay_in_the_report_and_impact_is_quoted(cli, tmp_path, env):
    folder = tmp_path / "inc"
    items = "\n".join(
        f"  - {{title: Item {n}, owner: o, due: 2025-0{1 + n % 9}-10, status: open}}" for n in range(14)
    )
    incident(folder, "old.md", "Old incident", "2025-01-05", "other", extra="action_items:\n" + items)
    incident(
        folder,
        "new.md",
        "New incident",
        "2026-02-05",
        "other",
        severity="SEV1",
        extra="impact: 312 refunds posted as zero\nsystems: [refund-agent, ledger]\ntags: [payments]",
    )
    args = ("report", str(folder), "--quarter", "2026Q1", "--as-of", "2026-04-01")
    report = json.loads(cli(*args, "--format", "json", env=env).stdout)
    assert report["actions"]["overdue_total"] == 14 and len(report["actions"]["overdue"]) == 14
    assert {row["incident_quarter"] for row in report["actions"]["overdue"]} == {"2025Q1"}
    assert report["notable"][0]["impact"] == "312 refunds posted as zero"
    [other] = [row for row in report["breakdown"] if row["category"] == "other"]
    assert {"value": "refund-agent", "count": 1} in other["systems"] and other["tags"] == [
        {"value": "payments", "count": 1}
    ]
    html = cli(*args, "--format", "html", env=env).stdout
    assert "<details>" in html and "The other 4 overdue action items" in html
    markdown = cli(*args, env=env).stdout
    assert all(f"Item {n}" in markdown for n in range(14)) and "312 refunds posted as zero" in markdown


def test_every_category_has_its_own_panel_with_an_interval_band(cli, small, env, tmp_path):
    out = tmp_path / "r.md"
    assert (
        cli(
            "report", str(small), "--quarter", "2026Q2", "--as-of", "2026-07-01", "-o", str(out), env=env
        ).code
        == 0
    )
    svg = (tmp_path / "r-trend.svg").read_text()
    # one titled panel per taxonomy category (matplotlib writes titles as text elements)
    for name in (
        "Context pollution",
        "Tool API drift",
        "Cascading multi-agent errors",
        "Inadequate fallback handling",
    ):
        assert name in svg
    assert "95 % interval" in svg and "hollow" not in svg  # 10 and 11 incidents: no small quarter


@pytest.mark.parametrize("helper", [True, False])
def test_charts_are_the_same_bytes_drawn_in_a_helper_process_or_here(helper):
    # The CLI draws the charts in a helper process, or here where matplotlib is loaded already
    # or there is no helper (not Linux, or it failed): the bytes must not differ.
    from agentpm.analysis.reporting import ChartDrawing

    report = json.loads((GOLDEN / "2026Q3.json").read_text(encoding="utf-8"))
    with ChartDrawing(None, "html", helper=helper) as drawing:
        assert drawing.in_helper == helper
        drawn = drawing.svgs(report)
    for name in ("trend", "severity"):
        assert drawn[name] == (GOLDEN / f"2026Q3-{name}.svg").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "corpus/a b.md",
        "./x.md",
        "x.md",
        "../up/ü #1.md",
        "corpus/sub/../y%.md",
        "/abs/folder/z.md",
        "a/./b/c.md",
    ],
)
def test_links_to_incident_files_are_relative_to_the_report_and_quoted(path, tmp_path, monkeypatch):
    from urllib.parse import quote, unquote

    from agentpm.analysis.reporting import relative_linker

    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    link = relative_linker(Path("reports"))
    expected = Path(os.path.relpath(os.path.abspath(path), tmp_path / "reports")).as_posix()
    assert link(path) == quote(expected)
    assert unquote(link(path)) == expected

"""`agentpm trends`: statistics against known numbers, periods, UTC bucketing, label modes, the parse cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import REPO, write

from agentpm.analysis.trends import period_of, periods_between, two_proportion_test, wilson


def incident(
    folder: Path,
    name: str,
    title: str,
    when: str,
    category: str | None = None,
    severity: str = "SEV3",
    extra: str = "",
    body: str = "",
) -> Path:
    lines = ["---", f"title: {json.dumps(title)}", f"date: {when}", f"severity: {severity}"]
    if category:
        lines.append(f"category: {category}")
    if extra:
        lines.append(extra.strip("\n"))
    lines.append("---")
    return write(folder, name, "\n".join(lines) + "\n" + (body or "## Summary\nShort.\n"))


def rows_of(result) -> list[dict]:
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def cell(rows: list[dict], period: str, category: str) -> dict:
    [row] = [r for r in rows if r["period"] == period and r["category"] == category]
    return row


@pytest.fixture
def env(tmp_path) -> dict:
    return {"AGENTPM_CACHE_DIR": str(tmp_path / "cache")}


# -- statistics ----------------------------------------------------------------------------


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), table I: 0/10 -> 0 to 0.2775; Wikipedia's worked 10/50 -> 0.1124 to 0.3304.
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = wilson(10, 50)
    assert (round(low, 4), round(high, 4)) == (0.1124, 0.3304)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_two_proportion_test_matches_hand_computation():
    # pooled p = 0.275, se = sqrt(0.275 * 0.725 * 0.02) = 0.063147, z = 0.15 / se
    z, p = two_proportion_test(20, 100, 35, 100)
    assert z == pytest.approx(2.3754, abs=1e-4)
    assert p == pytest.approx(0.01753, abs=1e-5)
    assert two_proportion_test(5, 50, 5, 50) == (0.0, 1.0)
    assert two_proportion_test(0, 0, 3, 10) == (0.0, 1.0)


def test_period_labels_and_ranges():
    from datetime import datetime, timezone

    instant = datetime(2026, 3, 31, 23, 0, tzinfo=timezone.utc)
    assert [period_of(instant, by) for by in ("quarter", "month", "year")] == ["2026Q1", "2026-03", "2026"]
    assert periods_between("2025Q3", "2026Q2", "quarter") == ["2025Q3", "2025Q4", "2026Q1", "2026Q2"]
    assert periods_between("2025-11", "2026-02", "month") == ["2025-11", "2025-12", "2026-01", "2026-02"]


# -- the command ---------------------------------------------------------------------------


def test_zero_periods_utc_bucketing_and_shares(cli, tmp_path, env):
    folder = tmp_path / "inc"
    incident(folder, "a.md", "A", "2026-01-10", "tool-api-drift")
    incident(folder, "b.md", "B", "2026-02-10", "tool-api-drift")
    incident(folder, "c.md", "C", "2026-03-10", "other")
    # 23:30 at UTC-2 on 31 March is 01:30 UTC on 1 April: second quarter, April.
    incident(folder, "d.md", "D", "2026-03-31T23:30:00-02:00", "other")
    incident(folder, "e.md", "E", "2026-07-01T00:30:00+02:00", "other")  # 30 June 22:30 UTC
    incident(folder, "f.md", "F", "2026-10-02", "prompt-injection")
    rows = rows_of(cli("trends", str(folder), "--format", "json", env=env))
    assert [r["period"] for r in rows if r["category"] == "other"] == ["2026Q1", "2026Q2", "2026Q3", "2026Q4"]
    q1 = cell(rows, "2026Q1", "tool-api-drift")
    assert (q1["count"], q1["period_total"], q1["share"]) == (2, 3, 0.6667)
    low, high = wilson(2, 3)
    assert (q1["share_low"], q1["share_high"]) == (round(low, 4), round(high, 4))
    assert cell(rows, "2026Q2", "other")["count"] == 2
    empty = cell(rows, "2026Q3", "other")
    assert (empty["count"], empty["period_total"], empty["share"], empty["change"]) == (
        0,
        0,
        0.0,
        "no incidents",
    )
    assert cell(rows, "2026Q4", "prompt-injection")["change"] == "no earlier data"
    # every period lists every taxonomy category and unclassified
    assert len(rows) == 4 * 7
    months = rows_of(cli("trends", str(folder), "--by", "month", "--format", "json", env=env))
    assert cell(months, "2026-04", "other")["count"] == 1
    assert cell(months, "2026-06", "other")["count"] == 1
    assert cell(months, "2026-05", "other")["period_total"] == 0
    years = rows_of(cli("trends", str(folder), "--by", "year", "--format", "json", env=env))
    assert {r["period"] for r in years} == {"2026"}
    assert cell(years, "2026", "other")["count"] == 3


def test_significant_change_and_since_until(cli, tmp_path, env):
    folder = tmp_path / "inc"
    for number in range(12):
        incident(
            folder,
            f"q1-{number}.md",
            f"Q1 {number}",
            "2026-02-01",
            "other" if number < 10 else "tool-api-drift",
        )
    for number in range(12):
        incident(
            folder,
            f"q2-{number}.md",
            f"Q2 {number}",
            "2026-05-01",
            "tool-api-drift" if number < 10 else "other",
        )
    rows = rows_of(cli("trends", str(folder), "--format", "json", env=env))
    drift = cell(rows, "2026Q2", "tool-api-drift")
    _, p = two_proportion_test(2, 12, 10, 12)
    assert drift["significant"] is True and drift["p_value"] == round(p, 4)
    assert drift["change_pp"] == pytest.approx(66.67, abs=0.01) and drift["change"] == "up 66.7 pp"
    steady = cell(rows, "2026Q2", "prompt-injection")
    assert steady["change"] == "no significant change" and steady["significant"] is False
    only = rows_of(
        cli("trends", str(folder), "--since", "2026-04-01", "--until", "2026Q2", "--format", "json", env=env)
    )
    assert {r["period"] for r in only} == {"2026Q2"}
    bad = cli("trends", str(folder), "--since", "last spring", env=env)
    assert bad.code == 2 and "Traceback" not in bad.stderr
    assert "--since 'last spring'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_label_modes_unclassified_and_stored_predictions(cli, tmp_path, env):
    folder = tmp_path / "inc"
    incident(folder, "human.md", "Human", "2026-02-01", "other")
    # Too short for the model: it abstains, and the incident must still be counted.
    incident(folder, "terse.md", "Terse", "2026-02-02")
    incident(
        folder,
        "stored.md",
        "Stored",
        "2026-02-03",
        extra="prediction:\n  category: prompt-injection\n  confidence: 0.9\n  model: abc\n",
    )
    real = sorted((REPO / "corpus").glob("2026-02-*.md"))[0]
    text = real.read_text(encoding="utf-8")
    unlabelled = "\n".join(line for line in text.splitlines() if not line.startswith("category:")) + "\n"
    write(folder, "unlabelled.md", unlabelled)

    auto = rows_of(cli("trends", str(folder), "--format", "json", env=env))
    counted = {r["category"]: r for r in auto if r["count"]}
    assert sum(r["count"] for r in auto) == 4
    assert counted["other"]["human_labelled"] >= 1
    assert counted["prompt-injection"]["model_labelled"] >= 1
    assert counted["unclassified"]["count"] >= 1
    # The on-the-fly label is exactly what `agentpm classify` says about that file.
    classified = json.loads(
        cli("classify", str(folder / "unlabelled.md"), "--format", "json", env=env).stdout
    )[0]
    expected = classified["category"] or "unclassified"
    assert any(r["category"] == expected and r["count"] >= 1 for r in auto)
    assert sum(r["model_labelled"] for r in auto) == 1 + (classified["category"] is not None)

    human = rows_of(cli("trends", str(folder), "--labels", "human", "--format", "json", env=env))
    assert cell(human, "2026Q1", "unclassified")["count"] == 3
    assert cell(human, "2026Q1", "other")["count"] == 1
    assert sum(r["model_labelled"] for r in human) == 0

    predicted = cli("trends", str(folder), "--labels", "predicted", "--format", "json", env=env)
    rows = rows_of(predicted)
    assert sum(r["human_labelled"] for r in rows) == 0
    assert "0 human-labelled" in predicted.stderr


def test_table_csv_markdown_and_problems(cli, tmp_path, env):
    folder = tmp_path / "inc"
    incident(folder, "a.md", "A", "2026-01-10", "tool-api-drift")
    write(folder, "broken.md", "---\nseverity: SEV1\n---\n")
    table = cli("trends", str(folder), env=env)
    assert table.code == 1 and "tool-api-drift" in table.stdout and "unclassified" in table.stdout
    assert "broken.md" in table.stderr and "Traceback" not in table.stderr
    assert "1 incidents in 2026Q1: 1 human-labelled, 0 model-labelled" in table.stderr
    csv_out = cli("trends", str(folder), "--format", "csv", env=env).stdout.splitlines()
    assert csv_out[0].startswith("period,category,count,period_total,share,share_low,share_high")
    assert len(csv_out) == 1 + 7
    markdown = cli("trends", str(folder), "--format", "markdown", env=env).stdout
    assert "| 2026Q1 | tool-api-drift | 1 | 100.0% |" in markdown
    assert "1 human-labelled, 0 model-labelled" in markdown


# -- the parse cache -----------------------------------------------------------------------


def test_cache_is_used_and_picks_up_edited_files(cli, tmp_path, env):
    from agentpm.records.cache import ParseCache, load_records

    folder = tmp_path / "inc"
    edited = incident(folder, "a.md", "A", "2026-01-15", "tool-api-drift")
    incident(folder, "b.md", "B", "2026-01-16", "other")
    cache_dir = tmp_path / "own-cache"
    first = load_records([folder], cache=ParseCache(cache_dir))
    second = load_records([folder], cache=ParseCache(cache_dir))
    assert (first.parsed, first.from_cache) == (2, 0)
    assert (second.parsed, second.from_cache) == (0, 2)
    assert [r.title for r in second.records] == ["A", "B"]

    before = rows_of(cli("trends", str(folder), "--format", "json", env=env))
    assert {r["period"] for r in before} == {"2026Q1"}
    # Same size, new content: only the mtime tells the cache that the file changed.
    text = edited.read_text(encoding="utf-8")
    stat = edited.stat()
    edited.write_text(text.replace("2026-01-15", "2026-04-15"), encoding="utf-8")
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert edited.stat().st_size == stat.st_size
    after = rows_of(cli("trends", str(folder), "--format", "json", env=env))
    assert cell(after, "2026Q2", "tool-api-drift")["count"] == 1
    assert cell(after, "2026Q1", "tool-api-drift")["count"] == 0
    third = load_records([folder], cache=ParseCache(cache_dir))
    assert (third.parsed, third.from_cache) == (1, 1)
    # An unusable cache location costs speed, never the run.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    degraded = cli("trends", str(folder), "--format", "json", env={"AGENTPM_CACHE_DIR": str(blocker / "sub")})
    assert degraded.code == 0 and "continuing without it" in degraded.stderr
    assert rows_of(degraded) == after

"""Post-mortems as people write them: each deviation a real SRE lead's files showed, as a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli, write

from agentpm import load_corpus

TIMELINE_YAML = """title: Refund agent read a renamed field as zero
date: 2026-03-02T09:00:00+01:00
detected: 2026-03-02T11:30:00+01:00
severity: SEV2
category: tool-api-drift
summary: The ledger API renamed amount to transaction_amount and refunds posted as zero.
timeline:
  - time: "09:00"
    event: ledger v3 deployed
  - time: "11:30"
    event: finance notices zero-value refunds
contributing_factors:
  - no schema check on tool output
  - the deprecation notice went to a former employee
action_items:
  - title: Validate ledger responses against a pinned schema
    owner: payments
    due: 2026-03-20
    kind: process
"""

TIMELINE_JSON = {
    "title": "Planner and executor handed one task back and forth for an hour",
    "date": "2026-04-10T14:00:00Z",
    "category": "cascading-multi-agent",
    "timeline": ["14:00 planner emits plan", "14:02 executor rejects step 3", "15:05 loop stopped by hand"],
    "root_cause": ["the executor's refusal text was fed back as a new goal"],
}

TYPOS = """---
title: Support bot quoted another customer's order
date: 2026-05-03T10:00:00Z
category: context-pollution
rootcause: memory keyed by session cookie, reused across users
sumary: a shared cache returned the previous user's conversation
lesson_learned: key memory by user id
---
## Impact
Two customers saw each other's order numbers.
"""

DATE_ORDER = """---
title: Triage agent pages were acknowledged late
date: 2026-06-01T12:00:00Z
detected: 2026-06-01T09:00:00Z
status: final
severity: SEV3
category: inadequate-fallback
---
## Summary
The pager API timed out and the agent gave up silently. The cause was human error: @dana forgot to add a
retry, which was sloppy.
## Root cause
No retry or escalation on pager timeouts.
"""

DATE_ONLY = """---
title: Gateway timeouts on the summariser
date: 2026-07-14
detected: 2026-07-14T15:02:00Z
resolved: 2026-07-14T16:00:00Z
category: other
---
## Summary
The serverless gateway cut requests at 10 seconds.
"""


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "postmortems"
    write(root, "2026-03-02-refund.yaml", TIMELINE_YAML)
    write(root, "2026-04-10-planner.json", json.dumps(TIMELINE_JSON, indent=2))
    write(root, "2026-05-03-support.md", TYPOS)
    write(root, "2026-06-01-triage.md", DATE_ORDER)
    write(root, "2026-07-14-gateway.md", DATE_ONLY)
    return root


def test_validate_warns_and_list_keeps_every_incident(folder):
    validate = run_cli("validate", str(folder), "--format", "json")
    assert validate.code == 1
    by_name = {Path(item["path"]).name: item for item in json.loads(validate.stdout)}
    assert all(item["valid"] for item in by_name.values()), by_name
    messages = [problem["message"] for item in by_name.values() for problem in item["problems"]]
    assert any("'rootcause': did you mean 'root_cause'" in message for message in messages)
    assert any("'sumary': did you mean 'summary'" in message for message in messages)
    assert any("'lesson_learned': did you mean 'lessons_learned'" in message for message in messages)
    assert any("kind 'process' is not one agentpm knows" in message for message in messages)
    listed = json.loads(run_cli("list", str(folder), "--format", "json").stdout)
    assert len(listed) == 5


def test_timelines_and_factors_written_as_lists_are_read_as_prose(folder):
    corpus = load_corpus(str(folder))  # a str (or Path) is one path, not a list of characters
    by_title = {incident.title: incident for incident in corpus.incidents}
    refund = by_title["Refund agent read a renamed field as zero"]
    assert "- 09:00: ledger v3 deployed" in refund.sections["timeline"]
    assert "- no schema check on tool output" in refund.sections["contributing_factors"]
    assert (
        refund.action_items[0].kind is None
        and refund.action_items[0].model_extra["kind_as_written"] == "process"
    )
    planner = by_title["Planner and executor handed one task back and forth for an hour"]
    assert "- 14:02 executor rejects step 3" in planner.sections["timeline"]
    classified = json.loads(run_cli("classify", str(folder), "--format", "json").stdout)
    assert len(classified) == 5


def test_lint_runs_every_rule_despite_a_date_order_problem(folder):
    path = folder / "2026-06-01-triage.md"
    rules = {finding["rule"] for finding in json.loads(run_cli("lint", str(path), "--format", "json").stdout)}
    assert {"PM007", "PM015", "PM016", "PM017"} <= rules, rules
    selected = run_cli("lint", str(path), "--select", "PM015,PM017", "--format", "json")
    assert selected.code == 1
    assert {finding["rule"] for finding in json.loads(selected.stdout)} == {"PM015", "PM017"}


def test_a_date_only_start_is_never_counted_from_midnight(folder):
    corpus = load_corpus([folder])
    [gateway] = [incident for incident in corpus.incidents if incident.title.startswith("Gateway")]
    assert gateway.time_to_detect is None and gateway.time_to_resolve is None
    lint = json.loads(run_cli("lint", str(folder / "2026-07-14-gateway.md"), "--format", "json").stdout)
    assert "PM022" in {finding["rule"] for finding in lint}
    report = json.loads(
        run_cli(
            "report", str(folder), "--quarter", "2026Q3", "--as-of", "2026-10-01", "--format", "json"
        ).stdout
    )
    other = {row["category"]: row for row in report["timing"]}["other"]
    assert other["detect"]["n"] == 0


def test_trends_header_counts_the_window_it_shows(folder):
    result = run_cli("trends", str(folder), "--since", "2026Q3")
    assert "1 incidents in 2026Q3" in result.stderr, result.stderr
    assert "5 incidents" not in result.stderr


def test_the_pre_commit_run_checks_ids_against_the_whole_corpus(tmp_path):
    write(tmp_path / "corpus", "old.md", "---\nid: INC-7\ntitle: Old one\n---\n## Summary\nx\n")
    staged = write(tmp_path, "new.md", "---\nid: INC-7\ntitle: New one\n---\n## Summary\nx\n")
    result = run_cli("lint", str(staged), "--select", "PM004", cwd=tmp_path)
    assert result.code == 1 and "already used by corpus/old.md" in result.stdout


def test_the_cache_lives_in_the_user_cache_folder_not_the_repository(folder, tmp_path):
    home = tmp_path / "home"
    env = {"XDG_CACHE_HOME": str(home / ".cache"), "HOME": str(home)}
    before = set(os.listdir(folder))
    assert run_cli("trends", str(folder), cwd=folder, env=env).code in (0, 1)
    assert set(os.listdir(folder)) == before and not (folder / ".agentpm-cache").exists()
    assert list((home / ".cache" / "agentpm").iterdir()), "one cache folder per corpus"


def test_count_any_counts_contributing_categories_and_says_so(tmp_path):
    write(
        tmp_path / "inc",
        "a.md",
        "---\ntitle: Planner loop after an API rename\ndate: 2026-08-03T10:00:00Z\n"
        "category: tool-api-drift\nsecondary: [cascading-multi-agent]\n---\n## Summary\nA renamed field.\n",
    )
    primary = json.loads(run_cli("trends", str(tmp_path / "inc"), "--format", "json").stdout)
    counted = json.loads(
        run_cli("trends", str(tmp_path / "inc"), "--count", "any", "--format", "json").stdout
    )
    cascading = [row for row in counted if row["category"] == "cascading-multi-agent"][0]
    assert [row for row in primary if row["category"] == "cascading-multi-agent"][0]["count"] == 0
    assert cascading["count"] == 1
    args = ("report", str(tmp_path / "inc"), "--quarter", "2026Q3", "--as-of", "2026-10-01", "--count", "any")
    assert "Contributing categories counted" in run_cli(*args).stdout

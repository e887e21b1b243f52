"""`agentpm lint`: every rule with a failing and a passing example, suppression, output,
exit codes, the no-heavy-imports promise, and the shipped corpus.

The rule cases are written into two folders and linted with one CLI run each (a module
fixture), so forty cases cost two subprocesses rather than forty.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, run_cli, write

GOOD = """---
id: INC-2026-014
title: Refund agent read a renamed ledger field as zero
date: 2026-03-02T09:00:00+01:00
detected: 2026-03-02T11:30:00+01:00
resolved: 2026-03-02T15:00:00Z
severity: SEV2
status: final
category: tool-api-drift
systems: [refund-agent, ledger-api]
tools: [ledger-api v3, claude-sonnet-4]
impact: 212 refund proposals computed as zero over six hours; all corrected the same day.
action_items:
  - title: Validate ledger responses against a pinned schema
    owner: payments-platform
    due: 2099-04-01
    status: open
    kind: prevent
  - title: Alert when more than 1% of refunds are zero
    owner: "@payments-oncall"
    due: 2026-03-20
    status: done
    kind: detect
---

# Refund agent read a renamed ledger field as zero

## Summary

On 2 March the ledger API (v3) renamed the `amount` field to `transaction_amount`. The
refund agent read the missing field as zero and proposed zero-value refunds until the
on-call engineer paused it.

## Impact

212 customers received a zero-value refund proposal over six hours. Every one was corrected
the same afternoon.

## Detection

A support lead noticed three zero refunds in a row at 11:30 and paged the on-call engineer.

## Timeline

- 09:00 CET ledger API v3 rolled out by the vendor.
- 11:30 support reports zero refunds; on-call engineer pauses the agent.
- 15:00 UTC field mapping deployed; agent resumed.

## Root cause

The agent's tool definition assumed the `amount` field and treated a missing value as zero.
Nothing validated tool responses against a schema, so the rename passed silently.

## Contributing factors

- The ledger changelog had no subscriber on the payments team.

## Fix implemented

Pinned the ledger API version and mapped the new field name.

## Lessons learned

A missing field must be an error, not a default.
"""


def variant(*replacements: tuple[str, str], text: str = GOOD) -> str:
    for old, new in replacements:
        assert old in text, f"test setup: {old!r} not in the good example"
        text = text.replace(old, new, 1)
    return text


def with_root_cause(sentence: str) -> str:
    return variant(("Nothing validated tool responses", f"{sentence}\nNothing validated tool responses"))


INFORMAL = (
    "# Search agent returned nothing\n\nThe search tool timed out and the agent said there were no results.\n"
)

# rule: (failing text, passing text); the failing one must raise the rule, the passing one not.
CASES = {
    "PM001": (b"\x00\x01binary", INFORMAL),
    "PM002": (variant(("severity: SEV2", "severity: SEV2\nprediction: 5")), GOOD),
    "PM021": (variant(("severity: SEV2", "severity: SEV2\nrootcause: the ledger renamed a field")), GOOD),
    "PM022": (variant(("date: 2026-03-02T09:00:00+01:00", "date: 2026-03-02")), GOOD),
    "PM023": (variant(("severity: SEV2", "severity: High")), GOOD),
    "PM003": (variant(("category: tool-api-drift", "category: api-weirdness")), GOOD),
    "PM005": (
        variant(("severity: SEV2\n", "")),
        variant(("severity: SEV2\n", ""), ("status: final", "status: draft")),
    ),
    "PM006": (variant(("detected: 2026-03-02T11:30:00+01:00\n", "")), GOOD),
    # 08:30Z is 09:30+01:00: after the start once compared in UTC, before it if compared naively.
    "PM007": (
        variant(("detected: 2026-03-02T11:30:00+01:00", "detected: 2026-03-02T08:30:00+01:00")),
        variant(("detected: 2026-03-02T11:30:00+01:00", "detected: 2026-03-02T08:30:00Z")),
    ),
    "PM008": (variant(("resolved: 2026-03-02T15:00:00Z", "resolved: 2026-03-02T15:00:00")), GOOD),
    "PM009": (
        variant(("## Root cause", "## Background notes")),
        variant(("## Root cause", "## Background notes"), ("status: final", "status: draft")),
    ),
    "PM010": (
        variant(
            (
                "impact: 212 refund proposals computed as zero over six hours; all corrected the same day.\n",
                "",
            ),
            (
                "## Impact\n\n212 customers received a zero-value refund proposal over six hours. Every one "
                "was corrected\nthe same afternoon.\n\n",
                "",
            ),
        ),
        INFORMAL,
    ),
    "PM011": (
        variant(
            ("A missing field must be an error, not a default.", "<!-- guidance: What the team learned. -->")
        ),
        variant(
            (
                "A missing field must be an error, not a default.",
                "<!-- guidance: What the team learned. -->\nA missing field must be an error.",
            )
        ),
    ),
    "PM012": (variant(("    owner: payments-platform\n", "")), GOOD),
    "PM013": (
        variant(("due: 2099-04-01", "due: 2020-04-01")),
        variant(("due: 2099-04-01\n    status: open", "due: 2020-04-01\n    status: done")),
    ),
    "PM014": (
        with_root_cause("In hindsight we should have added a timeout."),
        with_root_cause("The wrapper had no timeout; adding one was on the backlog."),
    ),
    "PM015": (
        with_root_cause("It was a careless change."),
        with_root_cause("The change was made under time pressure."),
    ),
    "PM016": (
        with_root_cause("The root cause was human error."),
        with_root_cause("This was not human error: the form allowed a blank amount."),
    ),
    "PM017": (
        with_root_cause("@dana forgot to rotate the key."),
        with_root_cause("Redis failed to start after the upgrade."),
    ),
    "PM018": (
        "---\ntitle: Refunds came out as zero\nstatus: draft\ncategory: tool-api-drift\n---\n\n"
        "## Summary\n\nRefunds came out as zero for a while.\n",
        GOOD,
    ),
    "PM019": (
        variant(
            ("severity: SEV2", "severity: SEV3"),
            (
                "impact: 212 refund proposals",
                "impact: personal data of 40 customers exposed; 212 refund proposals",
            ),
        ),
        variant(
            ("severity: SEV2", "severity: SEV3"),
            ("impact: 212 refund proposals", "impact: no personal data was exposed; 212 refund proposals"),
        ),
    ),
    "PM020": (
        GOOD.replace("## Summary", "<!-- agentpm: disable=PM999 -->\n\n## Summary"),
        GOOD.replace("## Summary", "<!-- agentpm: disable=PM014 -->\n\n## Summary"),
    ),
}


def _run(folder: Path, *extra: str) -> list[dict]:
    result = run_cli("lint", str(folder), "--format", "json", *extra)
    assert result.code in (0, 1, 2), result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def linted(tmp_path_factory):
    """{(rule, 'fail'|'pass'): [findings of that file]} from one lint run per folder."""
    found: dict[tuple[str, str], list[dict]] = {}
    for kind, index in (("fail", 0), ("pass", 1)):
        folder = tmp_path_factory.mktemp(kind)
        for rule, pair in CASES.items():
            content = pair[index]
            # Markdown for text, .md for the binary case too: it must be refused, not skipped.
            write(folder, f"{rule.lower()}.md", content)
        for finding in _run(folder):
            rule = Path(finding["file"]).stem.upper()
            found.setdefault((rule, kind), []).append(finding)
    return found


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fails_on_its_failing_example(linted, rule):
    rules = [finding["rule"] for finding in linted.get((rule, "fail"), [])]
    assert rule in rules, f"{rule} not raised; got {rules}"


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_passes_on_its_passing_example(linted, rule):
    findings = linted.get((rule, "pass"), [])
    assert not [f for f in findings if f["rule"] == rule], findings


def test_the_good_post_mortem_and_informal_tickets_lint_clean(cli, tmp_path):
    write(tmp_path, "good.md", GOOD)
    write(tmp_path, "ticket.md", INFORMAL)
    result = cli("lint", str(tmp_path))
    assert result.code == 0, result.stdout
    assert result.stdout == "" and "2 files checked: 0 errors, 0 warnings" in result.stderr


def test_duplicate_ids_pm004(cli, tmp_path):
    write(tmp_path, "a.md", GOOD)
    write(tmp_path, "b.md", GOOD)
    findings = _run(tmp_path)
    duplicate = [f for f in findings if f["rule"] == "PM004"]
    assert len(duplicate) == 1 and duplicate[0]["file"].endswith("b.md") and "a.md" in duplicate[0]["message"]
    write(tmp_path, "b.md", GOOD.replace("INC-2026-014", "INC-2026-015"))
    assert not [f for f in _run(tmp_path) if f["rule"] == "PM004"]


def test_findings_have_file_line_rule_severity_message_and_a_rewording(tmp_path):
    sentence = "In hindsight we should have added a timeout."
    text = with_root_cause(sentence)
    write(tmp_path, "a.md", text)
    [finding] = _run(tmp_path)
    assert set(finding) >= {"file", "line", "rule", "severity", "message", "suggestion"}
    line = text.split("\n").index(sentence) + 1
    assert (finding["rule"], finding["severity"], finding["line"]) == ("PM014", "warning", line)
    assert "should have added a timeout" in finding["message"]
    assert (
        "was not in place" in finding["suggestion"] and "should have added a timeout" in finding["suggestion"]
    )


@pytest.mark.parametrize(
    "sentence, rule",
    [
        ("The root cause was human error.", "PM016"),
        ("The outage was caused by operator error.", "PM016"),
        ("Alice forgot to renew the certificate.", "PM017"),
        ("Then Bob overlooked the warning.", "PM017"),
        ("@sam.k missed the page.", "PM017"),
        ("The engineer failed to run the migration.", "PM014"),
        ("A negligent review let it through.", "PM015"),
        ("Better tests could have prevented this.", "PM014"),
    ],
)
def test_blame_phrases_each_get_a_suggestion(tmp_path, sentence, rule):
    write(tmp_path, "a.md", with_root_cause(sentence))
    findings = [f for f in _run(tmp_path) if f["rule"] == rule]
    assert len(findings) == 1 and findings[0]["suggestion"], findings


@pytest.mark.parametrize(
    "sentence",
    [
        "The pod failed to start and the agent forgot the earlier turns.",
        "Redis failed to accept connections.",
        "@sam didn't run the restart, so nothing else broke.",
        'The customer wrote "your careless bot" in the ticket.',
        "The log line read `should have failed to parse`.",
        "> Alice forgot to check, the customer said.",
        "Then Claude forgot the refund policy.",  # a tool named in `tools`, not a person
        "Nobody was paged because the alert had no route.",
    ],
)
def test_system_subjects_code_and_quotes_are_not_blame(tmp_path, sentence):
    write(tmp_path, "a.md", with_root_cause(sentence))
    assert _run(tmp_path) == []


def test_blame_in_a_yaml_record_points_at_the_right_line(tmp_path):
    text = (
        "id: INC-9\ntitle: Loader ran early\ndate: 2026-01-21\nseverity: SEV4\n"
        "root_cause: |\n  The cron zone was misspelled.\n  Someone careless edited the crontab.\n"
    )
    write(tmp_path, "a.yaml", text)
    [finding] = [f for f in _run(tmp_path) if f["rule"] == "PM015"]
    assert finding["line"] == 7


def test_suppression_is_file_wide_and_takes_a_list(tmp_path):
    text = with_root_cause("@dana forgot to rotate the key. In hindsight we should have added a timeout.")
    write(tmp_path, "a.md", text)
    assert {f["rule"] for f in _run(tmp_path)} == {"PM014", "PM017"}
    write(tmp_path, "a.md", text + "\n<!-- agentpm: disable=PM014, person-blamed -->\n")
    assert _run(tmp_path) == []
    write(tmp_path, "b.yaml", "title: t\nroot_cause: We should have known.\n# agentpm: disable=PM014\n")
    assert _run(tmp_path) == []


def test_select_ignore_and_fail_on(cli, tmp_path):
    write(
        tmp_path,
        "a.md",
        with_root_cause("It was a careless change. In hindsight we should have added a timeout."),
    )
    assert {f["rule"] for f in _run(tmp_path, "--select", "PM014")} == {"PM014"}
    assert {f["rule"] for f in _run(tmp_path, "--ignore", "blame-adjective")} == {"PM014"}
    only_warnings = cli("lint", str(tmp_path), "--ignore", "PM015", "--fail-on", "error")
    assert only_warnings.code == 0 and "PM014 warning" in only_warnings.stdout
    assert cli("lint", str(tmp_path), "--ignore", "PM015").code == 1
    unknown = cli("lint", str(tmp_path), "--select", "PM999")
    assert (
        unknown.code == 2
        and "unknown lint rule 'PM999'" in unknown.stderr
        and "Traceback" not in unknown.stderr
    )


def test_unreadable_file_exits_2_and_the_others_are_still_linted(cli, tmp_path):
    write(tmp_path, "bad.md", b"\xff\xfe\x00b")
    write(tmp_path, "blame.md", with_root_cause("It was a careless change."))
    result = cli("lint", str(tmp_path))
    assert result.code == 2
    assert (
        "bad.md: PM001 error:" in result.stdout and "blame.md:" in result.stdout and "PM015" in result.stdout
    )
    missing = cli("lint", str(tmp_path / "nope.md"))
    assert missing.code == 2 and "no such file" in missing.stdout


def test_rules_listing_has_every_rule_with_severity_and_why(cli):
    from agentpm.postmortem.lint import RULES

    result = cli("lint", "--rules")
    assert result.code == 0
    for rule in RULES.values():
        assert rule.severity in ("error", "warning") and rule.why
        assert f"{rule.id}  {rule.severity}" in result.stdout


def test_lint_does_not_import_pandas_sklearn_or_numpy(tmp_path):
    path = write(tmp_path, "a.md", with_root_cause("We should have added a timeout."))
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['agentpm', 'lint', {str(path)!r}]\n"
        "try:\n    runpy.run_module('agentpm', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'numpy', 'scipy', 'matplotlib') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert "PM014" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_shipped_full_post_mortems_lint_without_errors():
    from agentpm.records.corpus import load_corpus

    full = {
        str(incident.path)
        for incident in load_corpus([CORPUS]).incidents
        if incident.status == "final" and incident.sections.get("root_cause")
    }
    assert len(full) >= 200
    result = run_cli("lint", "corpus", "--format", "json")
    errors = [
        f for f in json.loads(result.stdout) if f["severity"] == "error" and str(REPO / f["file"]) in full
    ]
    assert errors == []


def test_pre_commit_hook_runs_agentpm_lint_on_incident_files():
    import re

    import yaml

    hooks = {
        hook["id"]: hook
        for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    }
    assert set(hooks) == {"agentpm-lint", "agentpm-redact-check"}
    assert hooks["agentpm-redact-check"]["entry"] == "agentpm redact --check"
    hook = hooks["agentpm-lint"]
    assert hook["id"] == "agentpm-lint" and hook["entry"] == "agentpm lint" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert all(files.search(name) for name in ("corpus/a.md", "x/b.yaml", "c.yml", "d.json"))
    assert not files.search("src/app.py")

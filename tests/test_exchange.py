"""redact, import and export (issue 13): secrets out and the rest kept byte for byte, imports
that never overwrite and say what they skipped, and flat tables of the corpus."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, run_cli, write

import agentpm.cli.exchange  # noqa: F401  (registers redact, import, export until agentpm.cli imports it)
from agentpm.exchange.export import incident_rows
from agentpm.exchange.importing import normalise_severity, normalise_when, snake_case
from agentpm.exchange.redact import RedactRules, find_secrets, load_rules, redact_text
from agentpm.records.cache import load_records
from agentpm.records.corpus import load_corpus
from agentpm.records.parsing import parse_file

DATA = REPO / "tests" / "data" / "exchange"

# -- the check set: planted secrets of every kind, and text that must stay -----------------

SECRETS = {
    "AWS-KEY": "AKIAIOSFODNN7EXAMPLE",
    "AWS-SECRET": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GITHUB-TOKEN": "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "GITHUB-PAT": "github_pat_11ABCDEFG0123456789abc_" + "x" * 30 + "Y7z",
    "OPENAI-KEY": "sk-T3stOpenAIKeyT3stOpenAIKey12345678",
    "OPENAI-PROJ": "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34",
    "ANTHROPIC-KEY": "sk-ant-api03-Zy98Xw76Vu54Ts32Rq10Po98Nm76",
    "SLACK-TOKEN": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQr",
    "STRIPE-KEY": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "GOOGLE-API-KEY": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "BEARER-TOKEN": "Zm9vYmFyYmF6cXV4MTIzNDU2",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "PRIVATE-KEY": "MIIEowIBAAKCAQEA7bq98plantedkeymaterial",
    "URL-PASSWORD": "S3cretPassw0rd",
    "CONN-PASSWORD": "Tr0ub4dorX9",
    "FIELD-PASSWORD": "hunter2-Swordfish",
    "FIELD-API-KEY": "k-9f8e7d6c5b4a",
    "ENV-TOKEN": "abcd1234efgh",
    "QUERY-KEY": "QWERTY123456",
    "EMAIL": "dana.okafor@example.com",
    "PHONE-INTL": "+44 20 7946 0958",
    "PHONE-US": "(415) 555-0132",
    "PHONE-NATIONAL": "030 12345678",
    "IPV4": "203.0.113.42",
    "IPV6": "2001:db8:85a3::8a2e:370:7334",
    "CARD": "4111 1111 1111 1111",
    "SSN": "123-45-6789",
    "IBAN": "GB82 WEST 1234 5698 7654 32",
}

KEEP = [
    "INC-2026-014",
    "2026-03-02T09:00:00+01:00",
    "2026-03-02",
    "v1.2.3",
    "0.10.4",
    "HTTP 503",
    "429 Too Many Requests",
    "ERR_CONN_RESET",
    "3f786850e387550fdab836ed7e6dc881de23001b",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "123e4567-e89b-12d3-a456-426614174000",
    "exit code 137",
    "port 8080",
    "1700000000000",
    "4111 1111 1111 1112",
    "000-12-3456",
    "666-12-3456",
    "127.0.0.1",
    "max_tokens=4096",
]


def secret_lines() -> list[str]:
    s = SECRETS
    return [
        f"Keys {s['AWS-KEY']} and {s['AWS-SECRET']} leaked.",
        f"Tokens {s['GITHUB-TOKEN']}, {s['GITHUB-PAT']}, {s['OPENAI-KEY']}, {s['OPENAI-PROJ']}.",
        f"Also {s['ANTHROPIC-KEY']}, {s['SLACK-TOKEN']}, {s['STRIPE-KEY']}, {s['GOOGLE-API-KEY']}.",
        f"Header Authorization: Bearer {s['BEARER-TOKEN']} and session {s['JWT']}.",
        f"Database postgres://app:{s['URL-PASSWORD']}@db.internal:5432/app and Server=db;Password={s['CONN-PASSWORD']};",
        f"Env TOKEN={s['ENV-TOKEN']} and https://api.example.com/v1/x?api_key={s['QUERY-KEY']}&page=2",
        f"Ask {s['EMAIL']} or call {s['PHONE-INTL']}, {s['PHONE-US']} or {s['PHONE-NATIONAL']}.",
        f"Hosts {s['IPV4']} and {s['IPV6']}; card {s['CARD']}, SSN {s['SSN']}, IBAN {s['IBAN']}.",
        f"Again {s['EMAIL']} and {s['IPV4']}.",
        "Kept: " + ", ".join(KEEP) + ".",
    ]


PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['PRIVATE-KEY']}\n-----END RSA PRIVATE KEY-----"


def check_set(folder: Path) -> None:
    """The same planted secrets in all four formats, in front matter/fields and prose alike."""
    prose = "\n".join(secret_lines())
    write(
        folder,
        "2026-03-02-front-matter.md",
        f"""---
id: INC-2026-014
title: Refund agent leaked keys in its logs
date: 2026-03-02T09:00:00+01:00
severity: SEV2
owner: {SECRETS["EMAIL"]}
password: {SECRETS["FIELD-PASSWORD"]}
systems: [refund-agent, {SECRETS["IPV4"]}]
action_items:
  - {{title: Rotate {SECRETS["AWS-KEY"]}, owner: {SECRETS["EMAIL"]}, due: 2026-03-20, kind: prevent}}
---
# Refund agent leaked keys in its logs

## Summary
{prose}

## Logs
```
{PEM}
```
""",
    )
    write(
        folder,
        "2026-03-03-plain.md",
        f"# Plain Markdown report with secrets\n\nSeverity: SEV3\n\n## Summary\n{prose}\n\n{PEM}\n",
    )
    yaml_prose = "\n".join("  " + line for line in (prose + "\n" + PEM).split("\n"))
    write(
        folder,
        "inc-yaml.yaml",
        f"""id: INC-2026-015
title: YAML record with secrets
date: 2026-03-04
contact: {SECRETS["PHONE-INTL"]}
api_key: "{SECRETS["FIELD-API-KEY"]}"
password: {SECRETS["FIELD-PASSWORD"]}
summary: |
{yaml_prose}
""",
    )
    write(
        folder,
        "inc-json.json",
        json.dumps(
            {
                "id": "INC-2026-016",
                "title": "JSON record with secrets",
                "date": "2026-03-05",
                "reporter": SECRETS["EMAIL"],
                "api_key": SECRETS["FIELD-API-KEY"],
                "password": SECRETS["FIELD-PASSWORD"],
                "summary": prose + "\n" + PEM,
            },
            indent=2,
        ),
    )


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    check_set(folder)
    return folder


def test_check_set_is_valid_before_redaction(planted):
    assert run_cli("validate", str(planted)).code == 0


def test_redact_removes_every_secret_keeps_the_rest_and_the_files_stay_valid(planted, tmp_path):
    out = tmp_path / "out"
    result = run_cli("redact", str(planted), "-o", str(out), "--format", "json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["statuses"] == {"redacted": 4}
    files = sorted(out.iterdir())
    assert [path.name for path in files] == sorted(path.name for path in planted.iterdir())
    for path in files:
        text = path.read_text(encoding="utf-8")
        leaked = [kind for kind, secret in SECRETS.items() if secret in text]
        assert not leaked, f"{path.name}: {leaked}"
        for kept in KEEP:
            assert kept in text, f"{path.name}: lost {kept!r}"
    assert run_cli("validate", str(out)).code == 0
    # No secret appears in what the command printed either.
    assert not [secret for secret in SECRETS.values() if secret in result.stdout + result.stderr]


def test_redact_counts_every_kind(planted, tmp_path):
    result = run_cli("redact", str(planted), "-o", str(tmp_path / "out"), "--format", "json")
    counts = json.loads(result.stdout)["counts"]
    expected = {
        "AWS-KEY",
        "AWS-SECRET",
        "GITHUB-TOKEN",
        "OPENAI-KEY",
        "ANTHROPIC-KEY",
        "SLACK-TOKEN",
        "STRIPE-KEY",
        "GOOGLE-API-KEY",
        "BEARER-TOKEN",
        "JWT",
        "PRIVATE-KEY",
        "PASSWORD",
        "SECRET",
        "EMAIL",
        "PHONE",
        "IPV4",
        "IPV6",
        "CARD",
        "SSN",
        "IBAN",
    }
    assert expected <= set(counts), expected - set(counts)


def test_check_exits_1_on_the_originals_and_0_on_the_output(planted, tmp_path):
    out = tmp_path / "out"
    before = {path.name: path.read_bytes() for path in planted.iterdir()}
    check = run_cli("redact", str(planted), "--check")
    assert check.code == 1
    assert "would be redacted" in check.stderr
    assert {path.name: path.read_bytes() for path in planted.iterdir()} == before  # --check writes nothing
    assert run_cli("redact", str(planted), "-o", str(out)).code == 0
    assert run_cli("redact", str(out), "--check").code == 0


def test_placeholders_are_consistent_within_a_file(planted, tmp_path):
    out = tmp_path / "out"
    run_cli("redact", str(planted), "-o", str(out))
    text = (out / "2026-03-02-front-matter.md").read_text(encoding="utf-8")
    # The same e-mail address (front matter, action item, prose twice) is one placeholder.
    assert '"[EMAIL-1]"' in text and "Ask [EMAIL-1]" in text and "Again [EMAIL-1]" in text
    assert "[EMAIL-2]" not in text
    assert "Hosts [IPV4-1]" in text and "and [IPV4-1]." in text
    # A stand-alone YAML value is quoted so it stays text, not a list.
    incident = parse_file(out / "2026-03-02-front-matter.md").incident
    assert incident is not None
    assert incident.model_extra["owner"] == "[EMAIL-1]"
    assert incident.systems == ["refund-agent", "[IPV4-1]"]
    assert incident.action_items[0].owner == "[EMAIL-1]"


def test_in_place_is_atomic_and_never_with_o(planted, tmp_path):
    target = planted / "inc-json.json"
    assert run_cli("redact", str(target), "--in-place").code == 0
    data = json.loads(target.read_text(encoding="utf-8"))
    assert data["reporter"] == "[EMAIL-1]" and data["password"] == "[PASSWORD-1]"
    assert not list(planted.glob(".*.tmp"))
    assert run_cli("redact", str(target), "--in-place", "-o", str(tmp_path / "o")).code == 2
    assert run_cli("redact", str(target)).code == 2  # no mode given


def test_redact_never_overwrites_without_force(planted, tmp_path):
    out = tmp_path / "out"
    assert run_cli("redact", str(planted), "-o", str(out)).code == 0
    again = run_cli("redact", str(planted), "-o", str(out))
    assert again.code == 1 and "already exists" in again.stderr
    assert run_cli("redact", str(planted), "-o", str(out), "--force").code == 0


def test_a_value_holding_a_secret_mid_text_is_quoted_whole(tmp_path):
    # `[` inside a plain scalar of a flow list is not YAML: the whole value becomes one string.
    source = write(
        tmp_path / "in", "x.md", "---\ntitle: T\nsystems: [db 203.0.113.9 primary, cache]\n---\nBody\n"
    )
    assert run_cli("redact", str(source), "-o", str(tmp_path / "out")).code == 0
    incident = parse_file(tmp_path / "out" / "x.md").incident
    assert incident is not None and incident.systems == ["db [IPV4-1] primary", "cache"]


def test_a_redaction_that_would_break_the_record_is_refused(tmp_path):
    # A secret as a YAML key cannot become a placeholder without changing the record.
    source = write(tmp_path / "in", "x.md", "---\ntitle: T\nhosts:\n  203.0.113.9: primary\n---\nBody\n")
    result = run_cli("redact", str(source), "-o", str(tmp_path / "out"))
    assert result.code == 1
    assert "not written" in result.stderr and "203.0.113.9" not in result.stderr
    assert not (tmp_path / "out" / "x.md").exists()


def test_custom_patterns_and_allow_list_from_agentpm_toml(tmp_path):
    write(
        tmp_path,
        "agentpm.toml",
        '[redact]\npatterns = { employee_id = "EMP-[0-9]{6}" }\nallow = ["noc@example.com"]\n',
    )
    rules = load_rules(tmp_path)
    text = "Paged noc@example.com and dana@example.com about EMP-123456.\n"
    redacted = redact_text(text, "x.md", rules).text
    assert redacted == "Paged noc@example.com and [EMAIL-1] about [EMPLOYEE-ID-1].\n"


def test_a_bad_custom_regex_is_a_config_error_naming_the_file(tmp_path):
    write(tmp_path, "agentpm.toml", '[redact]\npatterns = { broken = "(" }\n')
    write(tmp_path, "x.md", "# T\n")
    result = run_cli("redact", "x.md", "--check", cwd=tmp_path)
    assert result.code == 2
    assert "agentpm.toml" in result.stderr and "broken" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "version v1.2.3.4 build",  # a four-part version after a v is not an IPv4
        "at 09:00:00 and 10:30",
        "mac aa:bb:cc:dd:ee:ff",
        "std::vector and a::b",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "https://status.openai.com/incidents/01JMYB4QKS6C5AQVW4069X4T8T",
        "invalid_token: token expired",
        "epoch 1700000000000 ms",
        "INC-2026-014 on 2026-03-02",
        "password: ${DB_PASSWORD}",
    ],
)
def test_things_that_are_not_secrets(text):
    assert find_secrets(text, RedactRules()) == []


def test_redaction_is_linear_on_pathological_text():
    import time

    for line in (
        "a" * 50_000,
        "1-" * 25_000,
        "a@" * 25_000,
        "::" * 25_000,
        "sk-" + "a" * 60_000,
        "+1 " * 20_000,
    ):
        started = time.perf_counter()
        find_secrets(line)
        assert time.perf_counter() - started < 2.0, line[:10]
    many = "".join(
        f"user{number}@example.com 10.0.{number % 250}.{number % 200 + 1}\n" for number in range(10_000)
    )
    started = time.perf_counter()
    redacted = redact_text(many, "many.md")
    assert redacted.counts["EMAIL"] == 10_000 and time.perf_counter() - started < 5.0


# -- import -------------------------------------------------------------------------------


def imported(folder: Path) -> dict[str, dict]:
    return {
        path.name: parse_file(path).incident.model_dump(mode="json")  # type: ignore[union-attr]
        for path in sorted(folder.glob("*.md"))
    }


def test_import_jira_csv_with_the_preset(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "import", "csv", str(DATA / "jira.csv"), "--preset", "jira", "-o", str(out), "--format", "json"
    )
    assert result.code == 1, result.stderr  # one row has no summary
    summary = json.loads(result.stdout)
    assert summary["written"] == 3 and summary["skipped"] == 1
    assert summary["skip_reasons"][0]["reason"].startswith("no title")
    records = imported(out)
    first = records["2024-03-12-support-agent-quoted-a-retired-refund-policy.md"]
    assert first["id"] == "OPS-101"
    assert first["date"] == "2024-03-12T15:04:00" and first["date_as_given"] == "12/Mar/24 3:04 PM"
    assert first["severity"] == "SEV2" and first["severity_as_given"] == "High"
    assert first["tags"] == ["agents", "support"]  # both Labels columns
    assert first["source_status"] == "Done"  # Jira's status is not ours
    assert first["issue_type"] == "Incident" and first["licence"].startswith("unknown")
    assert "category" not in first or first["category"] is None
    assert first["imported_at"].endswith("Z") and "label_source" not in first
    undated = records["ticket-triage-agent-mislabelled-outage-tickets.md"]
    assert undated["date_as_given"] == "not a date" and undated["severity"] == "SEV1"
    assert run_cli("validate", str(out)).code == 0


def test_import_pagerduty_csv(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "import",
        "csv",
        str(DATA / "pagerduty.csv"),
        "--preset",
        "pagerduty",
        "-o",
        str(out),
        "--format",
        "json",
    )
    assert result.code == 1
    reasons = json.loads(result.stdout)["skip_reasons"]
    assert "resolved is before" in reasons[0]["reason"]
    records = imported(out)
    checkout = records["2024-05-06-checkout-agent-timed-out-calling-the-payment-tool.md"]
    assert (
        checkout["id"] == "PD-4711"
        and checkout["severity"] == "SEV1"
        and checkout["severity_as_given"] == "P1"
    )
    assert checkout["systems"] == ["checkout-agent"] and checkout["urgency"] == "high"
    assert checkout["resolved"] == "2024-05-06T09:30:00Z"


def test_import_json_and_jsonl_with_a_mapping(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "import", "json", str(DATA / "incident-io.json"), "--preset", "incident-io", "-o", str(out)
    )
    assert result.code == 1  # "not an object"
    records = imported(out)
    research = records["2024-06-01-research-agent-summarised-an-injected-web-page.md"]
    assert research["severity"] == "SEV2" and research["custom_fields"] == {"team": "research"}
    out2 = tmp_path / "out2"
    mapped = run_cli(
        "import",
        "jsonl",
        str(DATA / "generic.jsonl"),
        "--map",
        "title=Headline,date=When,severity=Sev,category=Label,summary=Notes",
        "-o",
        str(out2),
        "--licence",
        "CC0-1.0",
        "--format",
        "json",
    )
    assert mapped.code == 1
    reasons = {item["reason"] for item in json.loads(mapped.stdout)["skip_reasons"]}
    assert any(reason.startswith("malformed JSON line") for reason in reasons)
    assert any(reason.startswith("no title") for reason in reasons)
    records = imported(out2)
    labelled = records["2024-07-01-scheduler-agent-double-booked-rooms.md"]
    assert labelled["category"] == "cascading-multi-agent" and labelled["label_source"] == "imported"
    assert labelled["licence"] == "CC0-1.0"
    unlabelled = records["2024-07-02-browser-agent-followed-a-phishing-link.md"]
    assert unlabelled["category"] is None and unlabelled["source_label"] == "phishing"
    assert "label_source" not in unlabelled


def test_import_aiid_incidents_with_reports(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "import",
        "aiid",
        str(DATA / "aiid-incidents.json"),
        str(DATA / "aiid-reports.csv"),
        str(DATA / "aiid-incidents.csv"),
        "-o",
        str(out),
        "--format",
        "json",
    )
    assert result.code == 1
    summary = json.loads(result.stdout)
    assert summary["written"] == 3 and summary["skipped"] == 2
    records = imported(out)
    first = records["2022-11-15-chatbot-gave-invented-legal-citations.md"]
    assert first["id"] == "AIID-9001" and first["source"] == "https://incidentdatabase.ai/cite/9001/"
    assert first["attribution"] == "AI Incident Database (incidentdatabase.ai), CC BY-SA 4.0"
    text = (out / "2022-11-15-chatbot-gave-invented-legal-citations.md").read_text(encoding="utf-8")
    assert "[Lawyers cite cases that never existed](https://news.example.org/a)" in text
    assert records["2023-02-07-image-model-mislabelled-street-signs.md"]["date"] == "2023-02-07T00:00:00Z"
    assert (
        records["2021-05-04-pricing-bot-raised-prices-during-a-storm.md"]["alleged_deployer_of_ai_system"]
        == "example-retailer"
    )


def test_import_plain_markdown(tmp_path):
    out = tmp_path / "out"
    result = run_cli("import", "markdown", str(DATA / "markdown"), "-o", str(out), "--format", "json")
    assert result.code == 1
    reasons = {item["reason"] for item in json.loads(result.stdout)["skip_reasons"]}
    assert any("already has front matter" in reason for reason in reasons)
    assert "no heading to take a title from" in reasons
    records = imported(out)
    outage = records["2024-08-09-support-bot-went-silent-after-a-provider-outage.md"]
    assert outage["severity"] == "SEV2" and outage["category"] == "inadequate-fallback"
    assert outage["label_source"] == "imported"
    router = records["2024-09-10-router-agent-sent-tickets-to-a-deleted-queue.md"]
    assert router["date"] == "2024-09-10"
    incident = parse_file(out / "2024-08-09-support-bot-went-silent-after-a-provider-outage.md").incident
    assert incident is not None
    assert "No timeout or fallback" in incident.sections["root_cause"]
    assert "things we tried" in incident.sections  # unknown headings kept
    original = (DATA / "markdown" / "2024-08-09-support-bot-outage.md").read_text(encoding="utf-8")
    assert (
        (out / "2024-08-09-support-bot-went-silent-after-a-provider-outage.md")
        .read_text(encoding="utf-8")
        .endswith(original)
    )


def test_import_never_overwrites_and_a_second_run_adds_nothing(tmp_path):
    out = tmp_path / "out"
    clash = write(
        out, "2024-05-06-checkout-agent-timed-out-calling-the-payment-tool.md", "not mine to replace\n"
    )
    args = (
        "import",
        "csv",
        str(DATA / "pagerduty.csv"),
        "--preset",
        "pagerduty",
        "-o",
        str(out),
        "--format",
        "json",
    )
    first = json.loads(run_cli(*args).stdout)
    assert clash.read_text(encoding="utf-8") == "not mine to replace\n"
    assert any(name.endswith("payment-tool-2.md") for name in first["files"])
    before = sorted(path.name for path in out.iterdir())
    second = json.loads(run_cli(*args).stdout)
    assert second["written"] == 0
    assert {item["reason"] for item in second["skip_reasons"]} >= {
        "already imported (its id is in the output folder)"
    }
    assert sorted(path.name for path in out.iterdir()) == before


def test_import_usage_and_unreadable_sources(tmp_path):
    out = tmp_path / "out"
    assert run_cli("import", "csv", str(tmp_path / "missing.csv"), "-o", str(out)).code == 2
    assert (
        run_cli("import", "csv", str(DATA / "jira.csv"), "--map", "colour=Summary", "-o", str(out)).code == 2
    )
    assert run_cli("import", "aiid", "-o", str(out)).code == 2
    bad = write(tmp_path, "bad.json", "{not json")
    result = run_cli("import", "json", str(bad), "-o", str(out))
    assert result.code == 2 and "malformed JSON" in result.stderr


def test_imported_files_feed_trends(tmp_path):
    out = tmp_path / "out"
    run_cli("import", "csv", str(DATA / "jira.csv"), "--preset", "jira", "-o", str(out))
    run_cli("import", "aiid", str(DATA / "aiid-incidents.json"), "-o", str(out))
    assert run_cli("validate", str(out)).code == 0
    trends = run_cli("trends", str(out), "--format", "json", "--labels", "human")
    assert trends.code == 0, trends.stderr
    # Five files; the Jira row whose Created is "not a date" is counted on stderr, not in a period.
    assert sum(row["count"] for row in json.loads(trends.stdout)) == 4


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2023-04", ("2023-04-01", "2023-04")),
        ("2023", ("2023-01-01", "2023")),
        ("2023-04-05", ("2023-04-05", None)),
        ("12/Mar/24 3:04 PM", ("2024-03-12T15:04:00", "12/Mar/24 3:04 PM")),
        ("soon", (None, "soon")),
    ],
)
def test_dates_are_normalised_with_the_original_kept(given, expected):
    assert normalise_when(given) == expected


def test_severity_and_column_names():
    assert [
        normalise_severity(word) for word in ("Critical", "High", "Medium", "Low", "P2", "sev 3", "odd")
    ] == [
        "SEV1",
        "SEV2",
        "SEV3",
        "SEV4",
        "SEV2",
        "SEV3",
        None,
    ]
    assert snake_case("Issue key") == "issue_key" and snake_case("createdAt") == "created_at"


def test_genai_incidents_without_the_package_is_a_clean_usage_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "genai_incidents", None)
    result = run_cli("import", "genai-incidents", "-o", str(tmp_path / "out"))
    assert result.code == 2
    assert "pip install 'agentpm[genai]'" in result.stderr


def test_genai_incidents_from_a_data_file(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "import", "genai-incidents", str(DATA / "genai-sample.json"), "-o", str(out), "--format", "json"
    )
    assert result.code == 1  # the retracted row
    summary = json.loads(result.stdout)
    assert summary["written"] == 2 and summary["skip_reasons"][0]["reason"] == "retracted by the dataset"
    records = imported(out)
    agent = records["2025-03-01-invented-coding-agent-ran-a-command-from-a-readme.md"]
    assert agent["date"] == "2025-03-01" and agent["date_as_given"] == "2025-03"
    assert agent["severity"] == "SEV2" and agent["severity_as_given"] == "High"
    assert agent["tags"] == ["prompt-injection", "agentic"] and agent["category"] is None
    assert agent["id"] == "GENAI-INC-90001" and agent["external_id"] == "INC-90001"
    assert (
        agent["source"] == "https://example.org/advisory/1"
        and agent["source_dataset"] == "genai-incidents 0.0-test"
    )
    assert agent["licence"].startswith("CC-BY") and agent["attribution"]
    leak = records["2024-01-01-invented-chatbot-leaked-a-customer-list.md"]
    assert (
        leak["severity"] == "SEV1"
        and leak["licence"] == "CC-BY-SA-4.0"
        and leak["source_status"] == "disputed"
    )
    assert "AIAAIC Repository" in leak["attribution"]
    assert run_cli("validate", str(out)).code == 0


def test_genai_incidents_all_rows(tmp_path):
    genai = pytest.importorskip("genai_incidents")
    rows = genai.load_incidents()
    out = tmp_path / "out"
    result = run_cli("import", "genai-incidents", "-o", str(out), "--format", "json")
    summary = json.loads(result.stdout)
    retracted = sum(row.get("status") == "retracted" for row in rows)
    assert summary["written"] == len(rows) - retracted
    assert {item["reason"] for item in summary["skip_reasons"]} <= {"retracted by the dataset"}
    # Every file read the way trends and reports read them (the quick reader gives the full
    # parser's records and problems, in a fraction of the time); one checked field by field.
    records = load_records([out])
    assert not records.problems and len(records.records) == summary["written"]
    assert all(record.category is None for record in records.records)  # the dataset's labels are tags
    sample_path = next(
        path
        for path in sorted(out.iterdir())
        if "\ndate_as_given: 2023-04\n" in path.read_text(encoding="utf-8")
    )
    sample = parse_file(sample_path).incident
    assert sample is not None and not parse_file(sample_path).problems
    assert str(sample.date) == "2023-04-01"
    extra = sample.model_extra
    assert extra["licence"] and extra["source_dataset"].startswith("genai-incidents")
    assert sample.severity in ("SEV1", "SEV2", "SEV3", "SEV4") and extra["severity_as_given"]


# -- export -------------------------------------------------------------------------------

EXPORT_MD = """---
id: INC-1
title: "=HYPERLINK(\\"http://evil.invalid\\") refund agent"
date: 2026-03-02T09:00:00+01:00
detected: 2026-03-02T11:30:00+01:00
resolved: 2026-03-02T15:00:00Z
severity: SEV2
category: tool-api-drift
label_source: human
owner_team: "+payments"
systems: [refund-agent, ledger]
prediction: {category: tool-api-drift, confidence: 0.91, model: m1, at: 2026-03-03T00:00:00Z}
action_items:
  - {title: Pin the ledger schema, owner: payments, due: 2026-03-20, status: open, kind: prevent}
  - {title: "@channel alert", owner: sre, due: 2026-12-01, status: done, kind: detect}
---
## Summary
-1 refunds.
"""
DATE_ONLY_MD = (
    "---\nid: INC-2\ntitle: Date-only start\ndate: 2026-03-02\nresolved: 2026-03-02T15:00:00Z\n---\n"
)


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    write(folder, "a.md", EXPORT_MD)
    return folder


def test_export_csv_neutralises_formulas_and_computes_durations(small_corpus, tmp_path):
    write(small_corpus, "b.md", DATE_ONLY_MD)
    result = run_cli("export", str(small_corpus), "--format", "csv", "-o", "-")
    # b.md is exported, and its date-only start is reported as a warning (exit 1).
    assert result.code == 1 and "date has no time of day" in result.stderr
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    first = rows["INC-1"]
    assert first["title"].startswith("'=HYPERLINK")
    assert first["owner_team"] == "'+payments" and first["summary"] == "'-1 refunds."
    assert first["time_to_detect_s"] == "9000.0" and first["time_to_resolve_s"] == "25200.0"
    assert first["prediction_category"] == "tool-api-drift" and first["prediction_confidence"] == "0.91"
    assert first["systems"] == "refund-agent;ledger" and first["label_source"] == "human"
    assert first["action_items_total"] == "2" and first["action_items_open"] == "1"
    assert rows["INC-2"]["time_to_resolve_s"] == ""  # a date-only start is not midnight


def test_export_action_items_and_never_overwrite(small_corpus, tmp_path):
    target = tmp_path / "items.jsonl"
    args = (
        "export",
        str(small_corpus),
        "--table",
        "action-items",
        "-o",
        str(target),
        "--as-of",
        "2026-06-01",
    )
    assert run_cli(*args).code == 0
    items = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [(item["title"], item["overdue"]) for item in items] == [
        ("Pin the ledger schema", True),
        ("@channel alert", False),
    ]
    assert items[0]["incident_id"] == "INC-1" and items[0]["path"].endswith("a.md")
    again = run_cli(*args)
    assert again.code == 2 and "already exists" in again.stderr
    assert run_cli(*args, "--force").code == 0
    csv_out = run_cli("export", str(small_corpus), "--table", "action-items", "--format", "csv", "-o", "-")
    assert "'@channel alert" in csv_out.stdout


def test_export_parquet_reads_back_one_row_per_valid_incident(tmp_path):
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    target = tmp_path / "x.parquet"
    result = run_cli("export", str(CORPUS), "--format", "parquet", "-o", str(target))
    assert result.code == 0, result.stderr
    frame = pd.read_parquet(target)
    assert len(frame) == len(load_corpus([CORPUS]).incidents)
    assert {"id", "category", "time_to_resolve_s", "prediction_category", "label_source"} <= set(
        frame.columns
    )


def test_export_rows_keep_unknown_fields():
    incident = parse_file(CORPUS / sorted(path.name for path in CORPUS.glob("*.md"))[0]).incident
    rows, columns = incident_rows([incident])
    assert set(rows[0]) <= set(columns) and columns[:3] == ["path", "id", "title"]


def test_export_parquet_to_stdout_is_refused(small_corpus):
    result = run_cli("export", str(small_corpus), "--format", "parquet", "-o", "-")
    assert result.code == 2 and "Parquet is binary" in result.stderr


def test_help_examples():
    for command in ("redact", "import", "export"):
        result = run_cli(command, "--help")
        assert result.code == 0 and "Example: agentpm " + command in " ".join(result.stdout.split())


@pytest.mark.parametrize("args", [["--help"], ["redact", "{path}", "--check"], ["export", "--help"]])
def test_redact_and_help_do_not_import_heavy_libraries(tmp_path, args):
    path = write(tmp_path, "a.md", "# T\n\nCall +44 20 7946 0958.\n")
    argv = [arg.replace("{path}", str(path)) for arg in args]
    probe = (
        "import sys\n"
        "import agentpm.cli.exchange\n"
        "from agentpm.cli import main\n"
        f"sys.argv = ['agentpm', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'pyarrow', 'sklearn', 'matplotlib') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_files_created_in_a_batch_never_replace_and_leave_no_temporary_files(tmp_path):
    from agentpm.errors import WriteError
    from agentpm.records.writing import create_new_files

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.md").write_text("the user's own file\n")
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")

    def names(*candidates: str):
        yield from candidates

    results = create_new_files(
        folder,
        [
            (names("a.md", "a-2.md"), b"first\n"),
            (names("b.md"), b"second\n"),
            (names("b.md", "b-2.md"), b"third\n"),  # the name the item before took
            (names("dangling.md"), b"fourth\n"),
        ],
    )
    assert results[:3] == [folder / "a-2.md", folder / "b.md", folder / "b-2.md"]
    assert isinstance(results[3], WriteError)
    assert (folder / "a.md").read_text() == "the user's own file\n"
    assert [(folder / name).read_text() for name in ("a-2.md", "b.md", "b-2.md")] == [
        "first\n",
        "second\n",
        "third\n",
    ]
    assert (folder / "dangling.md").is_symlink() and not (tmp_path / "nowhere.md").exists()
    assert sorted(path.name for path in folder.iterdir()) == [
        "a-2.md",
        "a.md",
        "b-2.md",
        "b.md",
        "dangling.md",
    ]


def test_an_import_larger_than_a_batch_writes_every_record_once(tmp_path, monkeypatch):
    from agentpm.exchange import importing

    monkeypatch.setattr(importing, "WRITE_BATCH", 7)
    source = tmp_path / "rows.csv"
    lines = (
        ["id,title,date"]
        + [f"R-{n},Same title,2026-03-{n % 28 + 1:02d}" for n in range(30)]
        + ["R-3,Repeat,2026-03-01"]
    )
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    mapping = ("--map", "id=id,title=title,date=date")
    first = json.loads(
        run_cli("import", "csv", str(source), *mapping, "-o", str(out), "--format", "json").stdout
    )
    assert first["skip_reasons"][0]["reason"].startswith("already imported")
    assert first["written"] == 30 and len({Path(name).name for name in first["files"]}) == 30
    assert len(list(out.iterdir())) == 30 and not load_corpus([out]).problems
    again = json.loads(
        run_cli("import", "csv", str(source), *mapping, "-o", str(out), "--format", "json").stdout
    )
    assert again["written"] == 0 and len(list(out.iterdir())) == 30

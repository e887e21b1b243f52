"""One Incident from every format; sections, dates and unknown fields as a user expects."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from conftest import GOOD_MD, write

from agentpm.records.parsing import canonical_section, parse_bytes, parse_file


def test_markdown_with_front_matter(tmp_path):
    result = parse_file(write(tmp_path, "a.md", GOOD_MD))
    assert result.problems == []
    incident = result.incident
    assert incident.title == "Refund agent read a renamed field as zero"
    assert incident.severity == "SEV2"  # case normalised
    assert incident.source_format == "markdown"
    # datetimes keep their time zone
    assert incident.date.utcoffset() == timedelta(hours=1)
    assert incident.model_extra["owner_team"] == "payments"
    sections = incident.sections
    assert "renamed `amount`" in sections["summary"]
    assert sections["root_cause"] == "No schema validation on tool output."
    assert sections["fix"] == "Pinned the API version."
    assert incident.line_of("category") == 9
    assert incident.time_to_resolve == timedelta(hours=7)


def test_plain_markdown_title_metadata_and_filename_date(tmp_path):
    text = "# Checkout bot loops on 503\n\nCategory: inadequate-fallback\nSeverity: SEV3\nSecondary: other\n\nWe saw 40 retries a second.\n\n**Root cause:** no backoff.\n"
    incident = parse_file(write(tmp_path, "2025-07-04-checkout-loop.md", text)).incident
    assert incident.title == "Checkout bot loops on 503"
    assert incident.date == date(2025, 7, 4)
    assert incident.category == "inadequate-fallback"
    assert incident.secondary == ["other"]
    assert incident.severity == "SEV3"
    assert incident.source_format == "markdown-plain"
    # the metadata block is not prose
    assert "Category" not in incident.body
    assert incident.sections["root_cause"] == "no backoff."
    assert "40 retries" in incident.sections["preamble"]


def test_plain_markdown_without_date_prefix_has_no_date(tmp_path):
    incident = parse_file(write(tmp_path, "notes.md", "# Title only\n\nSome text.\n")).incident
    assert incident.date is None and incident.title == "Title only"


def test_yaml_and_json_records(tmp_path):
    yaml_text = "id: Y1\ntitle: Voice agent hung up\ndate: 2025-05-01\ncategory: other\nroot_cause: |\n  DNS change.\nresolution: Reverted.\n"
    json_text = (
        '{"id": "J1", "title": "PR bot", "date": "2025-05-02T10:00:00Z", "summary": "x", "tags": "a, b"}'
    )
    y = parse_file(write(tmp_path, "y.yml", yaml_text)).incident
    j = parse_file(write(tmp_path, "j.json", json_text)).incident
    assert y.sections["root_cause"].strip() == "DNS change."
    assert y.sections["fix"] == "Reverted."
    assert y.line_of("category") == 4
    assert j.tags == ["a", "b"]
    assert isinstance(j.date, datetime) and j.date.tzinfo is not None
    assert j.line_of("summary") == 1


def test_utf8_bom_is_fine(tmp_path):
    result = parse_bytes(b"\xef\xbb\xbf---\ntitle: with bom\n---\n", tmp_path / "b.md")
    assert result.incident.title == "with bom"


def test_heading_variants_map_to_canonical_sections():
    assert canonical_section("Root Cause Analysis") == "root_cause"
    assert canonical_section("3. Root cause") == "root_cause"
    assert canonical_section("RESOLUTION") == "fix"
    assert canonical_section("Fix implemented") == "fix"
    assert canonical_section("Timeline (UTC)") == "timeline"
    assert canonical_section("Lessons Learned") == "lessons_learned"
    assert canonical_section("Follow-up actions") == "action_items"
    assert canonical_section("Contributing Factors") == "contributing_factors"
    assert canonical_section("Appendix: raw logs") is None


def test_headings_inside_code_fences_are_not_sections(tmp_path):
    text = "---\ntitle: t\n---\n## Summary\n```bash\n# Root cause\necho hi\n```\nafter\n"
    incident = parse_file(write(tmp_path, "f.md", text)).incident
    assert "root_cause" not in incident.sections
    assert "# Root cause" in incident.sections["summary"]


def test_unknown_headings_are_kept(tmp_path):
    text = "---\ntitle: t\n---\n## What the logs said\nstack trace here\n"
    incident = parse_file(write(tmp_path, "u.md", text)).incident
    assert incident.sections["what the logs said"] == "stack trace here"


def test_action_items_and_overdue(tmp_path):
    text = (
        "---\ntitle: t\naction_items:\n  - title: add schema check\n    owner: '@ana'\n    due: 2026-01-10\n"
        "    kind: prevent\n  - title: dashboard\n    status: done\n---\n"
    )
    incident = parse_file(write(tmp_path, "ai.md", text)).incident
    first, second = incident.action_items
    assert first.status == "open" and first.is_overdue(date(2026, 2, 1))
    assert not first.is_overdue(date(2026, 1, 1))
    assert not second.is_overdue(date(2030, 1, 1))

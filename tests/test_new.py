"""`agentpm new`: the scaffold, its ids and file names, safety with hostile titles, and the
new → lint → fill → lint loop the issue's "done when" describes."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import write

from agentpm.postmortem.scaffold import MAX_SLUG, slugify
from agentpm.records.incident import SECTIONS
from agentpm.records.parsing import parse_file

SECTION_HEADINGS = [
    "Summary",
    "Impact",
    "Detection",
    "Timeline",
    "Root cause",
    "Contributing factors",
    "Fix implemented",
    "Prevention",
    "Action items",
    "Lessons learned",
]


def new(cli, folder: Path, *args: str, **options):
    return cli("new", *args, "--dir", str(folder), **options)


def created(result) -> Path:
    assert result.code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return Path(lines[0])


def test_scaffold_has_front_matter_every_section_and_the_category_guidance(cli, tmp_path):
    result = new(
        cli,
        tmp_path,
        "Refund agent read a renamed field as zero",
        "--category",
        "tool-api-drift",
        "--severity",
        "sev2",
        "--date",
        "2026-03-02",
    )
    path = created(result)
    assert path == tmp_path / "2026-03-02-refund-agent-read-a-renamed-field-as-zero.md"
    incident = parse_file(path).incident
    assert incident is not None
    assert (
        incident.id,
        incident.title,
        incident.date.isoformat(),
        incident.severity,
        incident.status,
        incident.category,
    ) == (
        "INC-2026-001",
        "Refund agent read a renamed field as zero",
        "2026-03-02",
        "SEV2",
        "draft",
        "tool-api-drift",
    )
    [item] = incident.action_items
    assert {"owner", "due", "kind"} <= set(item.model_dump()) and item.owner is None and item.due is None
    text = path.read_text(encoding="utf-8")
    for heading in SECTION_HEADINGS:
        block = re.search(rf"^## {heading}\n\n<!-- guidance: (.+?)-->", text, re.MULTILINE | re.DOTALL)
        assert block and len(block.group(1).strip()) > 20, heading
    assert set(incident.sections) >= set(SECTIONS)
    assert "Validate every tool response against a pinned schema" in text  # prevention checklist
    assert "Which API, tool, SDK or MCP server changed." in text  # what to record
    assert "not about people" in text


def test_without_category_there_is_no_checklist_and_the_file_validates(cli, tmp_path):
    path = created(new(cli, tmp_path, "Planner looped on a 429"))
    text = path.read_text(encoding="utf-8")
    assert "Prevention checklist" not in text and "category:   #" in text
    assert cli("validate", str(path)).code == 0


def test_default_date_is_today_utc_and_default_folder_is_the_corpus(cli, tmp_path):
    result = cli("new", "Agent forgot the order number", cwd=tmp_path)
    path = created(result)
    today = datetime.now(timezone.utc).date().isoformat()
    assert path == Path("corpus") / f"{today}-agent-forgot-the-order-number.md"
    assert (tmp_path / path).is_file()


def test_ids_are_the_next_free_number_of_the_year(cli, tmp_path):
    write(tmp_path, "old.md", "---\nid: INC-2026-007\ntitle: Old\n---\n")
    write(tmp_path, "older.json", json.dumps({"id": "INC-2026-002", "title": "Older"}))
    write(tmp_path, "other-year.yaml", "id: INC-2025-040\ntitle: Last year\n")
    first = created(new(cli, tmp_path, "First", "--date", "2026-05-01"))
    second = created(new(cli, tmp_path, "Second", "--date", "2026-05-01"))
    earlier_year = created(new(cli, tmp_path, "Third", "--date", "2025-05-01"))
    assert [parse_file(p).incident.id for p in (first, second, earlier_year)] == [
        "INC-2026-008",
        "INC-2026-009",
        "INC-2025-041",
    ]


def test_refuses_to_overwrite_with_exit_2(cli, tmp_path):
    path = created(new(cli, tmp_path, "Same title", "--date", "2026-03-02"))
    path.write_text("my edits", encoding="utf-8")
    again = new(cli, tmp_path, "Same title", "--date", "2026-03-02")
    assert again.code == 2 and again.stdout == ""
    assert "already exists" in again.stderr and "never overwrites" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
    assert path.read_text(encoding="utf-8") == "my edits"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--date", "2026-02-30"], "--date: '2026-02-30' is not a calendar date"),
        (["--date", "yesterday"], "--date: 'yesterday' is not a calendar date"),
        (["--severity", "SEV9"], "--severity: 'SEV9' is not a severity"),
        (["--category", "api-weirdness"], "--category: unknown category 'api-weirdness'"),
    ],
)
def test_bad_options_give_one_line_errors(cli, tmp_path, args, message):
    result = new(cli, tmp_path, "A title", *args)
    assert result.code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "title, slug",
    [
        ("../x", "x"),
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        ("x\x1b[31m\r\nid: evil\x07\u202e", "x-31m-id-evil"),
        ("?!... --- ///", None),
        ("Überfälle im Zahlungsagent", "uberfalle-im-zahlungsagent"),
        ("決済エージェントが二重に返金した", None),
        ('title: "quoted" # not a comment', "title-quoted-not-a-comment"),
    ],
)
def test_hostile_and_non_ascii_titles_stay_inside_the_folder(cli, tmp_path, title, slug):
    folder = tmp_path / "pm"
    path = created(new(cli, folder, title, "--date", "2026-03-02"))
    assert path.resolve().parent == folder.resolve()
    assert [p.name for p in folder.iterdir()] == [path.name] and list(tmp_path.iterdir()) == [folder]
    assert re.fullmatch(r"2026-03-02-[a-z0-9-]+\.md", path.name)
    incident = parse_file(path).incident
    expected_slug = slug or incident.id.lower()  # no Latin letters: the id names the file
    assert path.name == f"2026-03-02-{expected_slug}.md"
    # The title is stored as data: control characters dropped, nothing else changed, no field injected.
    assert incident.title == " ".join("".join(c for c in title if c.isprintable() or c in "\r\n").split())
    assert incident.id.startswith("INC-2026-") and incident.status == "draft"


def test_a_title_of_only_control_characters_is_refused(cli, tmp_path):
    result = new(cli, tmp_path, "\x1b\t\x07\u200b")
    assert result.code == 2 and "title is empty" in result.stderr


def test_long_titles_are_cut_at_a_word(cli, tmp_path):
    title = "The research agent cited a retracted study because the vector index kept superseded chunks for months"
    path = created(new(cli, tmp_path, title, "--date", "2026-03-02"))
    slug = path.stem.removeprefix("2026-03-02-")
    assert (
        len(slug) <= MAX_SLUG and title.lower().replace(" ", "-").startswith(slug) and not slug.endswith("-")
    )
    assert slugify("word" * 30) == ("word" * 30)[:MAX_SLUG]


def test_yaml_format(cli, tmp_path):
    path = created(
        new(
            cli,
            tmp_path,
            "Loader ran early",
            "--format",
            "yaml",
            "--category",
            "other",
            "--date",
            "2026-01-21",
        )
    )
    assert path.name == "2026-01-21-loader-ran-early.yaml"
    incident = parse_file(path).incident
    assert incident.status == "draft" and incident.category == "other"
    text = path.read_text(encoding="utf-8")
    assert "# guidance:" in text and "Prevention checklist for Other" in text
    lint = cli("lint", str(path), "--format", "json")
    assert lint.code == 1 and {"PM011", "PM012"} <= {f["rule"] for f in json.loads(lint.stdout)}


def _fill(text: str) -> str:
    """What an author does: replace every guidance comment with prose, complete the action item."""
    prose = {
        "Summary": "On 2 March the ledger API (v3) renamed the `amount` field; the refund agent read it as zero.",
        "Impact": "212 refund proposals were zero for six hours; all were corrected the same day.",
        "Detection": "A support lead saw three zero refunds in a row at 11:30 and paged the on-call engineer.",
        "Timeline": "- 09:00 ledger v3 rolled out\n- 11:30 detected\n- 15:00 fixed",
        "Root cause": "The tool definition assumed the `amount` field and nothing validated responses.",
        "Contributing factors": "The vendor changelog had no subscriber.",
        "Fix implemented": "Pinned the ledger API version and mapped the new field.",
        "Prevention": "Responses are now validated against a pinned schema.",
        "Action items": "See the front matter.",
        "Lessons learned": "A missing field must be an error, not a default.",
    }
    for heading, sentence in prose.items():
        text = re.sub(
            rf"(## {heading}\n\n)<!-- guidance:.*?-->",
            lambda m, sentence=sentence: m.group(1) + sentence,
            text,
            flags=re.DOTALL,
        )
    text = text.replace(
        '"TODO: one change to the system that prevents, detects or mitigates a recurrence"',
        "Validate ledger responses against a pinned schema",
    )
    text = re.sub(r"owner:.*", "owner: payments-platform", text)
    text = re.sub(r"due:.*", "due: 2099-04-01", text)
    text = re.sub(r"kind:.*", "kind: prevent", text)
    return text


def test_new_then_lint_flags_the_template_and_the_filled_post_mortem_is_clean(cli, tmp_path):
    path = created(
        new(
            cli,
            tmp_path,
            "Refund agent read a renamed field as zero",
            "--category",
            "tool-api-drift",
            "--severity",
            "SEV2",
            "--date",
            "2026-03-02",
        )
    )
    draft = cli("lint", str(path), "--format", "json")
    assert draft.code == 1
    unfilled = [f for f in json.loads(draft.stdout) if f["rule"] == "PM011"]
    assert len(unfilled) == len(SECTION_HEADINGS) + 1  # every section, and the placeholder action item
    path.write_text(_fill(path.read_text(encoding="utf-8")), encoding="utf-8")
    filled = cli("lint", str(path))
    assert filled.code == 0, filled.stdout
    final = path.read_text(encoding="utf-8").replace("status: draft", "status: final")
    # Once detection has a time, the start needs one too (PM022: no durations from midnight).
    final = final.replace("date: 2026-03-02\n", "date: 2026-03-02T09:00:00+01:00\n")
    final = final.replace("detected:   #", "detected: 2026-03-02T11:30:00+01:00 #")
    final = final.replace("resolved:   #", "resolved: 2026-03-02T15:00:00+01:00 #")
    path.write_text(final, encoding="utf-8")
    assert cli("lint", str(path)).code == 0


def test_user_templates_are_used_and_sandboxed(cli, tmp_path):
    templates = write(
        tmp_path,
        "tpl/postmortem.md.j2",
        "---\nid: {{ id_yaml }}\ntitle: {{ title_yaml }}\nstatus: draft\n---\n# {{ title }}\nOurs.\n",
    ).parent
    path = created(new(cli, tmp_path / "pm", "Custom", env={"AGENTPM_TEMPLATES": str(templates)}))
    assert path.read_text(encoding="utf-8").endswith("# Custom\nOurs.\n")
    write(templates, "postmortem.md.j2", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    escape = new(cli, tmp_path / "pm", "Escape", env={"AGENTPM_TEMPLATES": str(templates)})
    assert escape.code == 2 and "SecurityError" in escape.stderr and "Traceback" not in escape.stderr
    assert not list((tmp_path / "pm").glob("*escape*"))

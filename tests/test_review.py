"""`agentpm review`: byte-preserving label writes, the queue order, the scripted session
(injected keys, and a real pseudo-terminal), CSV export/apply, bulk accept, provenance."""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, run_cli, write

import agentpm.cli.review  # noqa: F401  (registers `review` and `model agreement`)
from agentpm.classifier.predictor import Prediction
from agentpm.classifier.review import (
    ACCEPTED,
    HUMAN,
    LABEL_FIELDS,
    Labeller,
    ReviewSession,
    label_provenance,
    review_queue,
)
from agentpm.errors import WriteError
from agentpm.records.labels import FrontMatterMissing, add_front_matter, set_fields, undo_edit
from agentpm.records.parsing import parse_file

CLASSES = [
    "context-pollution",
    "tool-api-drift",
    "cascading-multi-agent",
    "inadequate-fallback",
    "prompt-injection",
    "other",
]
FIELDS = {
    "category": "tool-api-drift",
    "secondary": ["other", "prompt-injection"],
    "labelled_by": "Dana Smith",
    "labelled_at": "2026-12-06T19:00:00Z",
    "label_source": "human",
}
BLOCK_ITEM = re.compile(r"^\s*- [a-z-]+$")
LABEL_LINE = re.compile(r"""^\s*["']?(""" + "|".join(LABEL_FIELDS) + r""")["']?\s*:""")

MARKDOWN = (
    "\ufeff---\r\n"
    "id: INC-7\r\n"
    'title: "Refund agent: zero credits"   # quoted, with a comment\r\n'
    "'category': other\r\n"
    "secondary:\r\n"
    "  - inadequate-fallback\r\n"
    "# a comment the user wrote\r\n"
    "tags: [a, b]\r\n"
    "---\r\n"
    "# Refund agent\r\n\r\n## Summary\r\nThe ledger API renamed `amount`.\r\n"
)
YAML = "title: Loader cron typo\nsecondary:\n- other\n# keep me\nseverity: SEV3\n...\n"
JSON = '{\n    "title": "Search 502 retry loop",\n    "category": "other",\n    "tags": ["x"]\n}\n'
PLAIN = "# Plain report\n\nSeverity: SEV2\n\n## Summary\nThe planner looped on 429s.\n"


def field(incident, name: str):
    """A label field, whether the schema declares it or keeps it as an unknown field."""
    return getattr(incident, name, None) or (incident.model_extra or {}).get(name)


def changed_lines(before: bytes, after: bytes) -> tuple[set[str], set[str]]:
    """(lines removed, lines added) between two versions of a file, a JSON member's trailing
    comma aside (adding a member after the last one must add a comma to it)."""
    old = {line.rstrip(",") for line in before.decode("utf-8-sig").splitlines()}
    new = {line.rstrip(",") for line in after.decode("utf-8-sig").splitlines()}
    return old - new, new - old


def only_label_lines_changed(before: bytes, after: bytes) -> bool:
    """Added lines are label fields; removed lines are label fields or the items of a block
    list a label field replaced (``secondary:`` followed by ``- id`` lines)."""
    removed, added = changed_lines(before, after)
    return all(LABEL_LINE.match(line) for line in added) and all(
        LABEL_LINE.match(line) or BLOCK_ITEM.match(line) for line in removed
    )


# -- labels.py --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [("a.md", MARKDOWN), ("b.yaml", YAML), ("c.json", JSON)],
)
def test_set_fields_changes_only_the_label_lines_and_undo_restores_the_bytes(tmp_path, name, content):
    path = write(tmp_path, name, content.encode("utf-8"))
    original = path.read_bytes()
    edit = set_fields(path, FIELDS)
    after = path.read_bytes()
    assert only_label_lines_changed(original, after)
    incident = parse_file(path).incident
    assert incident.category == "tool-api-drift"
    assert incident.secondary == ["other", "prompt-injection"]
    assert field(incident, "labelled_by") == "Dana Smith"
    assert field(incident, "label_source") == "human"
    assert incident.title == parse_file_title(content, name, tmp_path)
    if name == "a.md":
        assert after.startswith(b"\xef\xbb\xbf---\r\n") and b"\n" not in after.replace(b"\r\n", b"")
        assert b"# a comment the user wrote" in after and b"# quoted, with a comment" in after
        assert b"secondary: [other, prompt-injection]\r\n" in after
    if name == "b.yaml":
        assert after.endswith(b"...\n") and b"# keep me" in after
    if name == "c.json":
        assert b'"secondary": ["other", "prompt-injection"]' in after
    # Writing the same labels again is a no-op on the bytes apart from nothing at all.
    set_fields(path, FIELDS)
    assert path.read_bytes() == after
    undo_edit(edit)
    assert path.read_bytes() == original


def parse_file_title(content: str, name: str, folder: Path) -> str:
    copy = write(folder / "copy", name, content.encode("utf-8"))
    return parse_file(copy).incident.title


def test_plain_markdown_needs_front_matter_and_gets_it_only_when_asked(tmp_path):
    path = write(tmp_path, "2026-01-05-plain.md", PLAIN)
    with pytest.raises(FrontMatterMissing, match="--add-front-matter"):
        set_fields(path, FIELDS)
    assert path.read_text() == PLAIN
    edit = add_front_matter(path, FIELDS)
    text = path.read_text()
    assert text.endswith(PLAIN)  # the rest of the file, byte for byte
    incident = parse_file(path).incident
    # What the title line, the Key: value line and the file name said is kept.
    assert (incident.title, incident.severity, str(incident.date)) == ("Plain report", "SEV2", "2026-01-05")
    assert incident.category == "tool-api-drift"
    undo_edit(edit)
    assert path.read_text() == PLAIN


def test_a_write_that_would_break_the_file_is_refused(tmp_path):
    # A flow list continued on the next line is a shape the textual edit does not own: the
    # result would not parse, so the file is left as it was.
    content = "---\ntitle: T\nsecondary: [other,\n  tool-api-drift]\nseverity: SEV2\n---\nbody\n"
    path = write(tmp_path, "odd.md", content)
    with pytest.raises(WriteError, match="file left unchanged"):
        set_fields(path, {"secondary": ["other"]})
    assert path.read_text() == content


def test_undo_refuses_to_overwrite_a_later_edit(tmp_path):
    path = write(tmp_path, "a.md", MARKDOWN.encode("utf-8"))
    edit = set_fields(path, FIELDS)
    path.write_bytes(path.read_bytes() + b"\r\nMore text.\r\n")
    with pytest.raises(WriteError, match="changed while"):
        undo_edit(edit)


# -- the queue and the session ----------------------------------------------------------------


def prediction(path: Path, probabilities: list[float], abstained: bool = False) -> Prediction:
    table = dict(zip(CLASSES, probabilities, strict=True))
    ranked = sorted(table, key=table.get, reverse=True)
    return Prediction(
        path=str(path),
        id=None,
        category=None if abstained else ranked[0],
        confidence=table[ranked[0]],
        probabilities=table,
        abstained=abstained,
        reason="ambiguous" if abstained else None,
        runner_up=ranked[1],
    )


def incident_file(folder: Path, name: str, category: str | None = None, extra: str = "") -> Path:
    label = f"category: {category}\n" if category else ""
    text = f"---\ntitle: Incident {name}\n{label}{extra}---\n## Summary\nThe agent failed.\n"
    return write(folder, f"{name}.md", text)


@pytest.fixture
def queue_files(tmp_path):
    paths = {
        "confident": incident_file(tmp_path, "confident"),
        "close": incident_file(tmp_path, "close"),
        "abstained": incident_file(tmp_path, "abstained"),
        "disagrees": incident_file(tmp_path, "disagrees", "other"),
        "agrees": incident_file(tmp_path, "agrees", "tool-api-drift"),
        "reviewed": incident_file(tmp_path, "reviewed", "other", "label_source: human\n"),
    }
    probabilities = {
        "confident": [0.9, 0.05, 0.02, 0.01, 0.01, 0.01],
        "close": [0.5, 0.4, 0.04, 0.03, 0.02, 0.01],
        "abstained": [0.3, 0.28, 0.22, 0.1, 0.05, 0.05],
        "disagrees": [0.8, 0.1, 0.05, 0.03, 0.01, 0.01],
        "agrees": [0.05, 0.9, 0.02, 0.01, 0.01, 0.01],
        "reviewed": [0.05, 0.9, 0.02, 0.01, 0.01, 0.01],
    }
    incidents = [parse_file(path).incident for path in paths.values()]
    predictions = [
        prediction(path, probabilities[name], abstained=name == "abstained") for name, path in paths.items()
    ]
    return paths, incidents, predictions


def names(queue) -> list[str]:
    return [Path(item.incident.path).stem for item in queue.items]


def test_queue_puts_abstentions_and_disagreements_first_then_the_closest_calls(queue_files):
    _, incidents, predictions = queue_files
    assert names(review_queue(incidents, predictions)) == ["abstained", "disagrees", "close", "confident"]
    everything = names(review_queue(incidents, predictions, include_all=True))
    assert set(everything) == {"abstained", "disagrees", "close", "confident", "agrees", "reviewed"}


def test_queue_skips_plain_markdown_with_a_note_unless_front_matter_may_be_added(tmp_path):
    path = write(tmp_path, "plain.md", PLAIN)
    incidents = [parse_file(path).incident]
    predictions = [prediction(path, [0.5, 0.4, 0.04, 0.03, 0.02, 0.01])]
    skipped = review_queue(incidents, predictions)
    assert not skipped.items and "--add-front-matter" in str(skipped.skipped[0])
    assert len(review_queue(incidents, predictions, add_front_matter=True).items) == 1


class RecordingScreen:
    def __init__(self):
        self.cards: list[dict] = []
        self.messages: list[str] = []

    def show(self, card):
        self.cards.append(card)

    def say(self, message):
        self.messages.append(message)


def scripted(keys: str):
    pending = iter(keys)
    return lambda: next(pending, "")


def test_session_accepts_corrects_adds_secondary_undoes_and_resumes(queue_files):
    paths, incidents, predictions = queue_files
    originals = {name: path.read_bytes() for name, path in paths.items()}
    queue = review_queue(incidents, predictions)
    labeller = Labeller("tester", clock=lambda: "2026-12-06T19:00:00Z")
    screen = RecordingScreen()
    # abstained: "a" is refused (nothing to accept), then 5; disagrees: secondary 6 and 1,
    # undo, secondary 6 and 2; close: skip; then quit before confident.
    session = ReviewSession(queue.items, CLASSES, labeller, scripted("a5s61us62kq"), screen)
    summary = session.run()
    assert summary == {"labelled": 2, "accepted": 0, "skipped": 1, "refused": 0, "left": 1}
    assert any("abstained" in message for message in screen.messages)
    assert any(message.startswith("undone") for message in screen.messages)
    first = screen.cards[0]
    assert first["why"] == "abstained" and len(first["top"]) == 3 and first["summary"] == "The agent failed."
    assert first["choices"][0] == "1 context-pollution"

    abstained = parse_file(paths["abstained"]).incident
    assert abstained.category == "prompt-injection"
    assert field(abstained, "label_source") == HUMAN
    assert field(abstained, "labelled_by") == "tester"
    disagrees = parse_file(paths["disagrees"]).incident
    assert (disagrees.category, disagrees.secondary) == ("tool-api-drift", ["other"])
    for name in ("abstained", "disagrees"):
        assert only_label_lines_changed(originals[name], paths[name].read_bytes())
    for name in ("close", "confident", "agrees", "reviewed"):
        assert paths[name].read_bytes() == originals[name]

    # A second run resumes: decided files are reviewed now and leave the queue.
    again = [parse_file(path).incident for path in paths.values()]
    resumed = review_queue(again, predictions)
    assert names(resumed) == ["close", "confident"]
    ReviewSession(resumed.items, CLASSES, labeller, scripted("ka"), RecordingScreen()).run()
    confident = parse_file(paths["confident"]).incident
    assert (confident.category, field(confident, "label_source")) == ("context-pollution", ACCEPTED)


def test_undo_of_the_first_decision_restores_the_exact_bytes(queue_files):
    paths, incidents, predictions = queue_files
    queue = review_queue(incidents, predictions)
    before = paths["abstained"].read_bytes()
    screen = RecordingScreen()
    ReviewSession(queue.items, CLASSES, Labeller("t"), scripted("3uq"), screen).run()
    assert paths["abstained"].read_bytes() == before
    shown = [Path(card["path"]).stem for card in screen.cards]
    assert shown == ["abstained", "disagrees", "abstained"]


# -- the command ------------------------------------------------------------------------------


@pytest.fixture
def small_corpus(tmp_path):
    """Real reports (the model is sure of them), one too short to classify, one mislabelled."""
    folder = tmp_path / "incidents"
    folder.mkdir()
    for source in sorted(CORPUS.glob("2025-01-*.md"))[:4]:
        shutil.copy(source, folder / source.name)
    write(folder, "short.md", "---\nid: SHORT-1\ntitle: =HYPERLINK(x)\n---\nIt broke.\n")
    for path in list(folder.glob("2025-*.md"))[:2]:
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"(?m)^category: .*$", "", text, count=1), encoding="utf-8")
    return folder


def test_export_writes_the_queue_with_safe_cells(small_corpus, tmp_path):
    out = tmp_path / "queue.csv"
    result = run_cli("review", str(small_corpus), "--export", str(out))
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["title"] == "'=HYPERLINK(x)" and rows[0]["prediction"] == "needs-review"
    assert all(row["category"] == "" for row in rows)
    assert len(rows) == 3  # the short one and the two without a label
    assert run_cli("review", str(small_corpus), "--export", str(out)).code == 2  # never overwrites


def test_apply_checks_every_row_first_and_applies_nothing_if_one_is_wrong(small_corpus, tmp_path):
    before = {path: path.read_bytes() for path in small_corpus.iterdir()}
    bad = write(
        tmp_path,
        "bad.csv",
        "id,category,secondary\n"
        "SHORT-1,other,\n"
        "NOPE-9,other,\n"
        "SHORT-1,tool-api-drift,\n"
        f"{small_corpus / 'short.md'},made-up,\n",
    )
    result = run_cli("review", str(small_corpus), "--apply", str(bad))
    assert result.code == 2
    assert "NOPE-9" in result.stderr and "conflicts with line 2" in result.stderr
    assert "made-up" in result.stderr and "nothing was applied" in result.stderr
    assert {path: path.read_bytes() for path in small_corpus.iterdir()} == before

    good = write(
        tmp_path, "good.csv", "path,category,secondary\nincidents/short.md,other,tool-api-drift;other\n"
    )
    result = run_cli("review", str(small_corpus), "--apply", str(good), "--by", "lee", cwd=tmp_path)
    assert result.code == 0, result.stderr
    incident = parse_file(small_corpus / "short.md").incident
    assert (incident.category, incident.secondary) == ("other", ["tool-api-drift"])
    assert field(incident, "labelled_by") == "lee" and field(incident, "label_source") == "human"


def test_accept_above_labels_only_confident_unlabelled_files(small_corpus):
    labelled = {
        path: path.read_bytes() for path in small_corpus.glob("*.md") if b"\ncategory:" in path.read_bytes()
    }
    result = run_cli("review", str(small_corpus), "--accept-above", "0.9", "--by", "bot")
    assert result.code == 0, result.stderr
    assert "2 labels written" in result.stderr
    for path, data in labelled.items():
        assert path.read_bytes() == data
    sources = [field(parse_file(path).incident, "label_source") for path in small_corpus.glob("*.md")]
    assert sources.count(ACCEPTED) == 2
    assert parse_file(small_corpus / "short.md").incident.category is None  # abstained: never accepted


def test_modes_exclude_each_other_and_the_session_needs_a_terminal(small_corpus, tmp_path):
    both = run_cli("review", str(small_corpus), "--export", "-", "--accept-above", "0.9")
    assert both.code == 2 and "choose one of" in both.stderr
    piped = run_cli("review", str(small_corpus), stdin="a\n")
    assert piped.code == 2 and "needs a terminal" in piped.stderr


def test_review_help_has_an_example():
    result = run_cli("review", "--help")
    assert result.code == 0 and "Example: agentpm review" in result.stdout


# -- a real terminal --------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A child process on a pseudo-terminal, read until a text appears, written a key at a time."""

    def __init__(self, args: list[str], cwd: Path):
        master, slave = pty.openpty()
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", "TERM": "xterm"}
        env = {key: value for key, value in env.items() if not key.startswith("AGENTPM_")}
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
        )
        os.close(slave)
        self.master, self.seen, self.mark = master, "", 0

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.mark :]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; output so far:\n{self.seen[-3000:]}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk and self.process.poll() is not None:
                    raise AssertionError(f"exited before {text!r}:\n{self.seen[-3000:]}")
                self.seen += ANSI.sub("", chunk.decode("utf-8", "replace"))
        start = self.seen.index(text, self.mark)
        before, self.mark = self.seen[self.mark : start], start + len(text)
        return before

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            os.close(self.master)


def test_a_scripted_session_in_a_real_terminal(small_corpus, tmp_path):
    originals = {path: path.read_bytes() for path in small_corpus.glob("*.md")}
    command = "import sys, agentpm.cli.review; from agentpm.cli.app import main; main()"
    terminal = Terminal(
        [sys.executable, "-c", command, "review", str(small_corpus), "--by", "pty-tester"], tmp_path
    )
    try:
        terminal.expect("u undo")  # card 1: the report too short to classify
        terminal.press("a")
        terminal.expect("the model abstained")
        terminal.press("6")  # correct it by hand: other
        terminal.expect("(human)")
        terminal.expect("u undo")  # card 2
        terminal.press("a")
        decided = terminal.expect("(accepted-prediction)")
        terminal.expect("u undo")  # card 3
        terminal.press("s")
        terminal.expect("secondary category")
        terminal.press("4")
        terminal.press("2")
        terminal.expect("(human)")
        terminal.press("u")
        undone = terminal.expect(" is as it was")
        terminal.expect("u undo")  # card 3 again
        terminal.press("q")
        terminal.expect("review: 1 labelled, 1 accepted")
    finally:
        code = terminal.close()
    assert code == 0
    undone_path = Path(undone.split("undone: ")[-1].strip())
    accepted_path = Path(decided.strip().splitlines()[-1].rsplit(": ", 1)[0].strip())
    assert undone_path.read_bytes() == originals[undone_path]
    changed = [path for path, data in originals.items() if path.read_bytes() != data]
    assert sorted(changed) == sorted([small_corpus / "short.md", accepted_path])
    for path in changed:
        assert only_label_lines_changed(originals[path], path.read_bytes())
    short = parse_file(small_corpus / "short.md").incident
    assert (short.category, field(short, "labelled_by")) == ("other", "pty-tester")
    assert field(parse_file(accepted_path).incident, "label_source") == ACCEPTED


# -- provenance -------------------------------------------------------------------------------


def test_label_provenance_counts_every_source(tmp_path):
    files = [
        incident_file(tmp_path, "h", "other"),
        incident_file(tmp_path, "h2", "other", "label_source: human\n"),
        incident_file(tmp_path, "acc", "other", "label_source: accepted-prediction\n"),
        incident_file(tmp_path, "imp", "tool-api-drift", "label_source: imported\n"),
        incident_file(tmp_path, "model", None, "prediction: {category: other, confidence: 0.9}\n"),
        incident_file(tmp_path, "none"),
    ]
    table = label_provenance([parse_file(path).incident for path in files], CLASSES)
    assert list(table)[:6] == CLASSES and list(table)[-1] == "unclassified"
    assert table["other"] == {"human": 2, "accepted-prediction": 1, "imported": 0, "model-only": 1, "none": 0}
    assert table["tool-api-drift"]["imported"] == 1
    assert table["unclassified"]["none"] == 1
    assert table["context-pollution"] == dict.fromkeys(table["other"], 0)


def test_a_block_scalar_label_is_replaced_whole(tmp_path):
    path = write(tmp_path, "b.md", "---\ntitle: T\ncategory: >\n  other\nseverity: SEV2\n---\nbody\n")
    set_fields(path, {"category": "tool-api-drift"})
    assert path.read_text() == "---\ntitle: T\ncategory: tool-api-drift\nseverity: SEV2\n---\nbody\n"


def test_plain_markdown_is_labelled_only_with_add_front_matter(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    source = CORPUS / "2025-01-29-release-agent-helm-upgrade-loop.md"
    text = source.read_text(encoding="utf-8")
    write(folder, "2025-01-29-helm.md", re.sub(r"(?mi)^category: .*\n", "", text))
    original = (folder / "2025-01-29-helm.md").read_bytes()
    skipped = run_cli("review", str(folder), "--accept-above", "0.5")
    assert skipped.code == 0 and "--add-front-matter" in skipped.stderr
    assert (folder / "2025-01-29-helm.md").read_bytes() == original
    added = run_cli("review", str(folder), "--accept-above", "0.5", "--add-front-matter", "--by", "x")
    assert added.code == 0, added.stderr
    after = (folder / "2025-01-29-helm.md").read_bytes()
    assert after.startswith(b"---\n") and after.endswith(original)
    incident = parse_file(folder / "2025-01-29-helm.md").incident
    assert field(incident, "label_source") == ACCEPTED and str(incident.date) == "2025-01-29"

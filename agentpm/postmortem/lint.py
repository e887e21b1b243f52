"""Lint post-mortems: complete, consistent and blameless.

Every rule has a stable id (``PM001``...), a fixed severity and a one-line reason, listed
in :data:`RULES`. Findings carry the file, the line and, for wording rules, a suggested
blameless rewording. Parsing and schema checks are those of ``agentpm validate``; this
module adds what a reviewer would ask of a post-mortem on top.

This module runs in a pre-commit hook on every commit: it imports nothing heavy (no
pandas, scikit-learn or numpy) and nothing from the CLI.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from agentpm.errors import UsageError
from agentpm.records.corpus import check_against_taxonomy, discover
from agentpm.records.incident import SECTION_FIELD_ALIASES, SECTIONS, Incident
from agentpm.records.parsing import canonical_section, decode_text, match_heading, parse_file
from agentpm.taxonomy import Taxonomy

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    why: str


_RULE_LIST = [
    Rule(
        "PM001",
        "unreadable",
        "error",
        "A file agentpm cannot read (encoding, size, malformed YAML/JSON) is invisible to every report.",
    ),
    Rule(
        "PM002",
        "invalid-record",
        "error",
        "A record that breaks the incident schema is left out of classification, trends and reports.",
    ),
    Rule(
        "PM003",
        "unknown-category",
        "error",
        "A category id the taxonomy does not know cannot be counted, trended or trained on.",
    ),
    Rule(
        "PM004",
        "duplicate-id",
        "error",
        "Two incidents with one id make links, similarity results and action-item tracking ambiguous.",
    ),
    Rule(
        "PM005",
        "final-fields-missing",
        "error",
        "A final post-mortem needs id, date, severity and category, or it cannot be counted or trended.",
    ),
    Rule(
        "PM006",
        "timing-missing",
        "warning",
        "Without detected and resolved times a final post-mortem gives no time to detect or resolve.",
    ),
    Rule(
        "PM007",
        "time-order",
        "error",
        "Detection before the start, or resolution before detection, makes every duration wrong.",
    ),
    Rule(
        "PM008",
        "timezone-missing",
        "warning",
        "A time without a time zone is read as UTC, which silently shifts durations written in local time.",
    ),
    Rule(
        "PM009",
        "root-cause-missing",
        "error",
        "A final post-mortem written in sections but without a Root cause section has not established what to "
        "fix or how to label it (drafts and free-form write-ups get the PM010 warning instead).",
    ),
    Rule(
        "PM010",
        "section-missing",
        "warning",
        "A post-mortem (a file with a status) should state summary, impact, root cause and what was changed; "
        "a warning because real write-ups vary and drafts are still being written.",
    ),
    Rule(
        "PM011",
        "section-unfilled",
        "error",
        "A section that still holds only the template guidance (or TODO) reads as written but says nothing.",
    ),
    Rule(
        "PM012",
        "action-item-incomplete",
        "error",
        "An action item without an owner, a due date and a kind (prevent/detect/mitigate) tends not to get done.",
    ),
    Rule(
        "PM013",
        "action-item-overdue",
        "warning",
        "Open action items past their due date are how the same incident happens twice.",
    ),
    Rule(
        "PM014",
        "counterfactual",
        "warning",
        "Counterfactuals ('should have', 'could have prevented', 'we failed to') judge with hindsight instead of "
        "explaining why the decision made sense at the time.",
    ),
    Rule(
        "PM015",
        "blame-adjective",
        "error",
        "Words like careless or negligent judge people; people who feel judged stop reporting incidents.",
    ),
    Rule(
        "PM016",
        "human-error-cause",
        "error",
        "'Human error' as a cause ends the analysis where it should start: what made the error easy to make?",
    ),
    Rule(
        "PM017",
        "person-blamed",
        "error",
        "A named person or @handle as the subject of a failure turns a system's gap into one person's fault.",
    ),
    Rule(
        "PM018",
        "record-hint-missing",
        "warning",
        "Each category's taxonomy entry says what a post-mortem of that kind must record to be learned from.",
    ),
    Rule(
        "PM019",
        "severity-understated",
        "warning",
        "Impact that mentions data loss, all users, money or exposed personal data rarely fits SEV3/SEV4; "
        "understated severity hides the incident from reviews.",
    ),
    Rule(
        "PM020",
        "unknown-suppression",
        "warning",
        "A suppression comment naming an unknown rule suppresses nothing, probably by mistake.",
    ),
    Rule(
        "PM021",
        "field-typo",
        "warning",
        "A field whose name is one letter off a known one (rootcause, sumary) is kept but never read as that field.",
    ),
    Rule(
        "PM022",
        "date-only-start",
        "warning",
        "A start with no time of day against timed detection would count from midnight; durations are left out.",
    ),
    Rule(
        "PM023",
        "unknown-value",
        "warning",
        "A severity, status or action-item kind agentpm does not know is kept as written but left out of counts.",
    ),
]
RULES: dict[str, Rule] = {rule.id: rule for rule in _RULE_LIST}
_BY_NAME = {rule.name: rule.id for rule in _RULE_LIST}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int | None
    rule: str
    severity: Severity
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.rule} {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "rule": self.rule,
            "name": RULES[self.rule].name,
            "severity": self.severity,
            "message": self.message,
            "suggestion": self.suggestion,
        }


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == "warning")

    def text(self) -> str:
        """The findings one per line, compiler style, each followed by its suggestion."""
        lines = []
        for finding in self.findings:
            lines.append(str(finding))
            if finding.suggestion:
                lines.append(f"    suggestion: {finding.suggestion}")
        return "".join(line + "\n" for line in lines)

    def exit_code(self, fail_on: Severity = "warning") -> int:
        """2 when a file could not be read; 1 for findings at or above ``fail_on``; else 0."""
        if any(finding.rule == "PM001" for finding in self.findings):
            return 2
        counted = (
            self.findings if fail_on == "warning" else [f for f in self.findings if f.severity == "error"]
        )
        return 1 if counted else 0


def rules_text() -> str:
    """`lint --rules`: one line per rule (id, severity, name, why)."""
    return "".join(f"{rule.id}  {rule.severity:<7}  {rule.name:<22}  {rule.why}\n" for rule in RULES.values())


def rule_ids(spec: Iterable[str] | None) -> set[str]:
    """Rule ids from ``--select``/``--ignore`` values: ids or names, comma-separated, any case."""
    chosen: set[str] = set()
    for value in spec or ():
        for part in value.split(","):
            token = part.strip()
            if not token:
                continue
            rule_id = token.upper() if token.upper() in RULES else _BY_NAME.get(token.lower())
            if rule_id is None:
                raise UsageError(
                    f"unknown lint rule {token!r}; see `agentpm lint --rules` (ids PM001-PM{len(RULES):03d})"
                )
            chosen.add(rule_id)
    return chosen


# -- text helpers -------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# Reported speech and quoted error messages are someone else's words, not the write-up's.
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”")
_SUPPRESS = re.compile(
    r"(?:<!--|#)[ \t]*agentpm:[ \t]*disable[ \t]*=[ \t]*([A-Za-z0-9_, \t-]+?)[ \t]*(?:-->|$)", re.MULTILINE
)
_PLACEHOLDER = re.compile(r"^\s*(?:tbd|todo|fixme|xxx|\.\.\.|…|-)\s*[.:!]?\s*$", re.IGNORECASE)
TEMPLATE_TODO = "TODO"


def _blank(text: str) -> str:
    """The same text with every character but newlines turned into spaces (offsets stay valid)."""
    return re.sub(r"[^\n]", " ", text)


def _mask(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda match: _blank(match.group(0)), text)


def _strip_comments(text: str) -> str:
    return _HTML_COMMENT.sub("", text)


@dataclass
class _Block:
    """A run of prose under one heading (Markdown) or in one field (YAML/JSON)."""

    section: str
    heading_line: int  # 1-based line of the heading or field key (0: none)
    level: int  # heading level; 0 for the preamble and for fields
    first_line: int  # file line of the first line of ``prose``
    prose: str = ""  # masked for wording rules: no code, quotes or comments; newlines kept
    raw: str = ""  # as written, for the filled/unfilled check
    has_guidance: bool = False
    field_key: str | None = None  # YAML/JSON: the field the text came from
    label: str = ""  # the heading as written, for messages


def _front_matter_end(lines: list[str]) -> int:
    """Index of the first body line (0 when there is no front matter)."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return index + 1
    return len(lines)


def _markdown_blocks(text: str, title: str) -> list[_Block]:
    lines = text.split("\n")
    start = _front_matter_end(lines)
    body = "\n".join(lines[start:])
    no_comments = _mask(_HTML_COMMENT, body).split("\n")
    raw_lines = body.split("\n")
    blocks = [_Block("preamble", 0, 0, start + 1)]
    prose_lines: list[list[str]] = [[]]
    raw_parts: list[list[str]] = [[]]
    in_fence = False
    for offset, (raw, masked) in enumerate(zip(raw_lines, no_comments, strict=False)):
        number = start + offset + 1
        if _FENCE.match(masked):
            in_fence = not in_fence
            prose_lines[-1].append("")
            raw_parts[-1].append(raw)
            continue
        heading = None if in_fence else match_heading(masked)
        if heading:
            heading_text = heading[1].strip()
            is_title = heading[0] == 1 and heading_text.lower() == title.strip().lower()
            section = (
                "title"
                if is_title
                else (canonical_section(heading_text) or " ".join(heading_text.lower().split()))
            )
            blocks.append(_Block(section, number, heading[0], number + 1, label=heading_text))
            prose_lines.append([])
            raw_parts.append([])
            continue
        if in_fence or masked.lstrip().startswith(">"):
            prose_lines[-1].append("")
        else:
            prose_lines[-1].append(_mask(_QUOTED, _mask(_INLINE_CODE, masked)))
        raw_parts[-1].append(raw)
    for block, prose, raw in zip(blocks, prose_lines, raw_parts, strict=False):
        block.prose = "\n".join(prose)
        block.raw = "\n".join(raw)
        block.has_guidance = "<!-- guidance:" in block.raw
    return blocks


_PROSE_FIELDS = tuple(SECTIONS) + tuple(SECTION_FIELD_ALIASES)


def _field_blocks(incident: Incident) -> list[_Block]:
    blocks = []
    extra = incident.model_extra or {}
    for key in _PROSE_FIELDS:
        value = getattr(incident, key, None) if key in type(incident).model_fields else extra.get(key)
        if not isinstance(value, str):
            continue
        masked = _mask(_QUOTED, _mask(_INLINE_CODE, _mask(_HTML_COMMENT, value)))
        section = SECTION_FIELD_ALIASES.get(key, key)
        line = incident.line_of(key) or 0
        blocks.append(_Block(section, line, 0, line, masked, value, "guidance:" in value, key))
    return blocks


def _line_in(block: _Block, position: int) -> int:
    return block.first_line + block.prose.count("\n", 0, position)


@lru_cache(maxsize=8)
def _line_starts(text: str) -> list[int]:
    """Offsets where each line of ``text`` starts (a str caches its hash, so a hit costs nothing)."""
    starts = [0]
    position = text.find("\n")
    while position >= 0:
        starts.append(position + 1)
        position = text.find("\n", position + 1)
    return starts


def _line_at(text: str, offset: int) -> int:
    return bisect_right(_line_starts(text), offset)


def _locate(raw_text: str, phrase: str, from_line: int) -> int | None:
    """The file line where ``phrase`` occurs at or after ``from_line``, across YAML folding and JSON escapes."""
    words = phrase.split()
    if not words:
        return None
    pattern = re.compile(r"(?:\s|\\n|\\t)+".join(re.escape(word) for word in words), re.IGNORECASE)
    starts = _line_starts(raw_text)
    offset = starts[min(from_line, len(starts)) - 1] if from_line > 1 else 0
    found = pattern.search(raw_text, offset) or pattern.search(raw_text)
    return _line_at(raw_text, found.start()) if found else None


# -- wording rules ------------------------------------------------------------------------

_GAP = r"(?:\s+(?:had|has|have|just|simply|also|then|again|completely|totally|clearly|obviously))?"
_COUNTERFACTUAL = re.compile(
    r"\b(?:should(?:\s+not|n['’]t)?\s+have(?:\s+been)?\s+(?P<should>[\w'’-]+(?: [\w'’-]+){0,3})"
    r"|(?P<could>could\s+(?:easily\s+)?have\s+(?:been\s+)?(?:prevented|avoided|caught|stopped)))",
    re.IGNORECASE,
)
_ROLES = (
    r"(?:we|i|you|he|she|they|someone|somebody|nobody|no\s+one|(?:the|our|an?|one|that|this)\s+"
    r"(?:on-?call(?:\s+engineer)?|engineer|developer|dev|operator|reviewer|admin(?:istrator)?|author|sre|"
    r"analyst|intern|contractor|tester|lead|manager|team|person|human|user|staff|employee))"
)
_ROLE_FAILED = re.compile(
    r"\b(?P<who>" + _ROLES + r")" + _GAP + r"\s+(?P<verb>failed|forgot|neglected)\s+to\b", re.IGNORECASE
)
_BLAME_ADJECTIVE = re.compile(
    r"\b(careless(?:ly|ness)?|negligen(?:t|tly|ce)|sloppy|sloppiness|incompeten(?:t|ce)|lazy|laziness|reckless(?:ly)?"
    r"|stupid|stupidity|dumb|idiot(?:ic)?|inexcusable)\b",
    re.IGNORECASE,
)
_HUMAN_ERROR = re.compile(
    r"\b(human|operator|user|engineer|manual)\s+(error|mistake)s?\b|\bpebkac\b|\bfat[- ]finger(?:ed|s)?\b",
    re.IGNORECASE,
)
_CAUSAL = re.compile(
    r"(?:due\s+to|caused\s+by|because\s+of|result\s+of|blame[ds]?\s+(?:on)?|root\s+cause\s*(?:was|is|:|were)"
    r"|cause\s+(?:was|is|:)|attributed\s+to|comes?\s+down\s+to|boils\s+down\s+to|simply)\s*(?:an?\s+|the\s+)?$",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:not|no|never|rather\s+than|instead\s+of|isn['’]t|wasn['’]t|beyond|without)\b[\w\s,'’-]{0,25}$",
    re.IGNORECASE,
)
_HANDLE = r"@[A-Za-z0-9][\w.-]*[A-Za-z0-9_]|@[A-Za-z0-9]"
# "did not" alone is not a failure ("@sam didn't run the restart" averted one); only with a verb of diligence.
_ANY_FAILURE = (
    r"failed\s+to|forgot|neglected|overlooked|missed|ignored|broke|should\s+have|messed\s+up|screwed\s+up|"
    r"dropped\s+the\s+ball|(?:did\s+not|didn['’]t)\s+(?:check|notice|test|review|read|follow|verify|"
    r"escalate|respond|update|catch|bother|look)"
)
# Capitalised words are often products ("Redis failed to..."), so a name only counts as a
# person with verbs that only people do.
_HUMAN_ONLY = (
    r"forgot|neglected|overlooked|messed\s+up|screwed\s+up|dropped\s+the\s+ball|didn['’]t\s+bother|"
    r"did\s+not\s+bother|should\s+have\s+known|was\s+careless"
)
_PERSON_HANDLE = re.compile(
    r"(?<![\w@])(?P<who>" + _HANDLE + r")" + _GAP + r"\s+(?P<verb>" + _ANY_FAILURE + r")\b", re.IGNORECASE
)
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+"
_PERSON_NAME = re.compile(
    r"(?<![\w@.-])(?P<who>"
    + _NAME_WORD
    + r"(?:\s+"
    + _NAME_WORD
    + r")?)"
    + _GAP
    + r"\s+(?P<verb>"
    + _HUMAN_ONLY
    + r")\b"
)
_NOT_NAMES = {
    "the",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "we",
    "they",
    "he",
    "she",
    "i",
    "you",
    "our",
    "their",
    "his",
    "her",
    "nobody",
    "someone",
    "somebody",
    "everyone",
    "everybody",
    "no",
    "one",
    "there",
    "then",
    "when",
    "if",
    "and",
    "but",
    "so",
    "also",
    "who",
    "which",
    "what",
    "a",
    "an",
    "team",
    "engineering",
    "support",
    "ops",
    "on",
    "in",
    "at",
    "after",
    "before",
    "because",
    "agent",
    "bot",
    "model",
    "system",
}

_SUGGEST_SHOULD = (
    "replace '{phrase}' with what was true at the time and why it made sense then, e.g. "
    "'X was not in place' or 'the process did not require X', and the condition that allowed it"
)
_SUGGEST_COULD = (
    "name the control that was missing and why it was missing, e.g. 'no test covered X because …', "
    "instead of what could have prevented it"
)
_SUGGEST_FAILED = (
    "make the system the subject: 'the runbook did not include this step' or 'nothing checked that it "
    "happened', not '{who} {verb} to'"
)
_SUGGEST_ADJECTIVE = (
    "describe the action and its conditions (time pressure, a missing guardrail, an unclear interface) "
    "instead of judging the person"
)
_SUGGEST_HUMAN_ERROR = (
    "describe the system condition that allowed the action: which check, default, interface or "
    "missing guardrail made the mistake easy to make and hard to notice"
)
_SUGGEST_PERSON = (
    "make the system or the decision the subject: 'the deploy tool allowed this without a check' "
    "rather than '{who} {verb}'; refer to people by role, if at all"
)


def _wording_findings(
    path: str,
    blocks: Sequence[_Block],
    raw_text: str,
    located: bool,
    system_words: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Blame-language findings; ``system_words`` are words of the incident's systems and tools,
    which are never people ("Claude forgot the instructions" is about a model)."""
    findings: list[Finding] = []
    for block in blocks:
        if block.section == "title":
            continue
        taken: list[tuple[int, int]] = []

        def line_of(match: re.Match[str], block: Any = block) -> int | None:
            if located:
                return _line_in(block, match.start())
            return _locate(raw_text, match.group(0), block.first_line) or block.first_line or None

        def add(rule: str, match: re.Match[str], message: str, suggestion: str, taken: list = taken) -> None:
            span = (match.start(), match.end())
            if any(start < span[1] and span[0] < end for start, end in taken):
                return  # one phrase, one finding: the most specific rule wins
            taken.append(span)
            findings.append(Finding(path, line_of(match), rule, RULES[rule].severity, message, suggestion))

        text = block.prose
        for match in _PERSON_HANDLE.finditer(text):
            who, verb = match.group("who"), " ".join(match.group("verb").split())
            add(
                "PM017",
                match,
                f"{who} is the subject of '{verb}'",
                _SUGGEST_PERSON.format(who=who, verb=verb),
            )
        for match in _PERSON_NAME.finditer(text):
            words = match.group("who").split()
            while words and words[0].lower() in _NOT_NAMES:
                words.pop(0)  # "Then Alice forgot": the name is the word after the sentence opener
            if not words or any(word.lower() in system_words for word in words):
                continue
            who, verb = " ".join(words), " ".join(match.group("verb").split())
            add(
                "PM017",
                match,
                f"a named person ({who}) is the subject of '{verb}'",
                _SUGGEST_PERSON.format(who=who, verb=verb),
            )
        for match in _HUMAN_ERROR.finditer(text):
            before = text[max(0, match.start() - 60) : match.start()]
            if _NEGATED.search(before):
                continue
            if block.section == "root_cause" or _CAUSAL.search(before):
                add(
                    "PM016",
                    match,
                    f"'{' '.join(match.group(0).split())}' given as a cause",
                    _SUGGEST_HUMAN_ERROR,
                )
        for match in _BLAME_ADJECTIVE.finditer(text):
            add("PM015", match, f"blame word '{match.group(0)}'", _SUGGEST_ADJECTIVE)
        for match in _ROLE_FAILED.finditer(text):
            who, verb = " ".join(match.group("who").split()), match.group("verb").lower()
            add(
                "PM014",
                match,
                f"counterfactual '{who} {verb} to'",
                _SUGGEST_FAILED.format(who=who, verb=verb),
            )
        for match in _COUNTERFACTUAL.finditer(text):
            phrase = " ".join(match.group(0).split())
            if match.group("could"):
                add("PM014", match, f"counterfactual '{phrase}'", _SUGGEST_COULD)
            else:
                add("PM014", match, f"counterfactual '{phrase}'", _SUGGEST_SHOULD.format(phrase=phrase))
    return findings


# -- severity versus impact ---------------------------------------------------------------

_SERIOUS_IMPACT = {
    "data loss": re.compile(
        r"\bdata\s+loss\b|\blost\s+(?:\w+\s+)?(?:data|records|files)\b|\b(?:data|records|files)\s+"
        r"(?:was|were)\s+(?:permanently\s+)?(?:lost|deleted|destroyed|corrupted)\b|\bunrecoverabl|"
        r"\birrecoverabl|\bpermanently\s+deleted\b",
        re.IGNORECASE,
    ),
    "all users": re.compile(
        r"\ball\s+(?:of\s+(?:our|the)\s+)?(?:users|customers|tenants|accounts|traffic|requests)\b|"
        r"\bevery\s+(?:user|customer|tenant|request)\b|\bentire\s+(?:user|customer)\s+base\b|"
        r"\b100\s?%\s+of\s+(?:users|customers|traffic|requests)\b|\bcomplete\s+outage\b",
        re.IGNORECASE,
    ),
    "money": re.compile(
        r"[$€£¥]\s?\d(?:[\d,.]*\d)?(?:\s?(?:k|m|bn|million|billion)\b)?|\b\d[\d,.]*\s?(?:k|m|bn)?\s?(?:usd|eur|gbp|dollars|euros|pounds)\b|"
        r"\b(?:revenue|financial)\s+loss|\blost\s+revenue\b|\bovercharg|\bdouble[- ]charg|"
        r"\b(?:incorrect|wrong|duplicate)\s+(?:payments?|refunds?|charges?|payouts?)\b",
        re.IGNORECASE,
    ),
    "personal data exposure": re.compile(
        r"\bpersonal\s+data\b|\bpii\b|\bphi\b|\bdata\s+breach\b|\bgdpr\b|\bhipaa\b|\b(?:exposed|leaked|disclosed)\s+"
        r"(?:\w+\s+){0,3}(?:personal|customer|patient|employee|user)\s+(?:data|details|records|information)\b|"
        r"\banother\s+(?:customer|user|patient|candidate|student)['’]s\b",
        re.IGNORECASE,
    ),
}
_IMPACT_NEGATION = re.compile(r"\b(?:no|not|never|without|zero|none|nor)\b[^.;\n]{0,30}$", re.IGNORECASE)


def _impact_findings(
    path: str, incident: Incident, impact_blocks: Sequence[_Block], raw_text: str
) -> list[Finding]:
    if incident.severity not in ("SEV3", "SEV4"):
        return []
    texts: list[tuple[str, int]] = []
    if incident.impact:
        texts.append((incident.impact, incident.line_of("impact") or 0))
    texts += [(block.prose, block.first_line) for block in impact_blocks]
    for text, line in texts:
        for kind, pattern in _SERIOUS_IMPACT.items():
            for match in pattern.finditer(text):
                if _IMPACT_NEGATION.search(text[max(0, match.start() - 40) : match.start()]):
                    continue
                where = _locate(raw_text, match.group(0), line) or line or None
                return [
                    Finding(
                        path,
                        where,
                        "PM019",
                        "warning",
                        f"impact mentions {kind} ('{' '.join(match.group(0).split())}') but severity is "
                        f"{incident.severity}",
                        "raise the severity, or say in the impact why it stayed small (e.g. 'no personal data "
                        "left the system')",
                    )
                ]
    return []


# -- one file ------------------------------------------------------------------------------

_FINAL_FIELDS = ("id", "date", "severity", "category")
_FOLLOW_UP = ("fix", "prevention", "action_items")
_POST_MORTEM_STATUSES = ("final", "in-review", "draft")


def _suppressed(text: str, path: str) -> tuple[set[str], list[Finding]]:
    disabled: set[str] = set()
    unknown: list[Finding] = []
    for match in _SUPPRESS.finditer(text):
        line = _line_at(text, match.start())
        for token in re.split(r"[,\s]+", match.group(1).strip()):
            if not token:
                continue
            rule_id = token.upper() if token.upper() in RULES else _BY_NAME.get(token.lower())
            if rule_id:
                disabled.add(rule_id)
            else:
                unknown.append(
                    Finding(
                        path,
                        line,
                        "PM020",
                        "warning",
                        f"suppression names unknown rule {token!r}",
                        "use an id from `agentpm lint --rules`, e.g. disable=PM014",
                    )
                )
    return disabled, unknown


def _is_placeholder_item(title: str) -> bool:
    return title.strip().upper().startswith(TEMPLATE_TODO)


def lint_incident(incident: Incident, text: str, taxonomy: Taxonomy | None, today: date) -> list[Finding]:
    """Findings for one parsed incident and the text it was parsed from (no suppression applied)."""
    path = str(incident.path)
    findings: list[Finding] = []

    def add(rule: str, message: str, line: int | None = None, suggestion: str | None = None) -> None:
        findings.append(Finding(path, line or None, rule, RULES[rule].severity, message, suggestion))

    markdown = incident.source_format.startswith("markdown")
    blocks = _markdown_blocks(text, incident.title) if markdown else _field_blocks(incident)
    status = incident.status

    # Front matter of a final post-mortem.
    if status == "final":
        for name in _FINAL_FIELDS:
            if getattr(incident, name) in (None, ""):
                add(
                    "PM005",
                    f"final post-mortem has no `{name}`",
                    1,
                    f"add `{name}:` to the front matter"
                    + (" (a taxonomy id, see `agentpm taxonomy show`)" if name == "category" else ""),
                )
        missing = [name for name in ("detected", "resolved") if getattr(incident, name) is None]
        if missing:
            add(
                "PM006",
                f"final post-mortem has no `{'` or `'.join(missing)}` time",
                incident.line_of("date") or 1,
                "add ISO datetimes with a time zone, e.g. detected: 2026-03-02T11:30:00+01:00",
            )

    for name in ("date", "detected", "resolved"):
        value = getattr(incident, name)
        if isinstance(value, datetime) and value.tzinfo is None:
            add(
                "PM008",
                f"`{name}` {value.isoformat()} has no time zone (read as UTC)",
                incident.line_of(name),
                "append the offset, e.g. +01:00, or Z for UTC",
            )

    # Sections: present, and filled.
    # A heading counts as present even when empty: PM011 reports it as unfilled, not PM010 as missing.
    present = {block.section for block in blocks if block.section not in ("preamble", "title")}
    filled_items = [item for item in incident.action_items if not _is_placeholder_item(item.title)]
    for index, block in enumerate(blocks):
        if block.section in ("title",) or (block.section == "preamble" and not block.has_guidance):
            continue
        if _has_subsections(index, blocks):
            continue
        content = _strip_comments(block.raw).strip()
        known = block.section in SECTIONS
        if block.section == "action_items" and filled_items:
            continue  # the list lives in the front matter
        if not content and (known or block.has_guidance):
            what = "still holds only the template guidance" if block.has_guidance else "is empty"
            add(
                "PM011",
                f"section {_section_label(block)} {what}",
                block.heading_line or block.first_line,
                "write what happened in this section, or delete the heading if it does not apply",
            )
        elif content and _PLACEHOLDER.match(content) and known:
            add(
                "PM011",
                f"section {_section_label(block)} holds only a placeholder ({content!r})",
                block.heading_line or block.first_line,
                "replace the placeholder with the facts",
            )
    if status in _POST_MORTEM_STATUSES:
        has = set(present) | set(incident.sections)
        if "root_cause" not in has:
            # Three or more standard sections: a post-mortem written to the skeleton, not a free-form note.
            structured = len(has & set(SECTIONS)) >= 3
            if status == "final" and structured:
                add(
                    "PM009",
                    "final post-mortem has no Root cause section",
                    1,
                    "add '## Root cause': the conditions that made the failure possible, not who triggered it",
                )
            else:
                add("PM010", "no Root cause section yet", 1, "add '## Root cause' before the review")
        if "summary" not in has and "preamble" not in has:
            add("PM010", "no Summary section", 1, "add '## Summary': two or three sentences on what happened")
        if "impact" not in has and not incident.impact:
            add(
                "PM010",
                "no Impact section or `impact` field",
                1,
                "add '## Impact': who was affected, how many, for how long, and what it cost",
            )
        if not (has & set(_FOLLOW_UP)) and not incident.action_items:
            add(
                "PM010",
                "nothing says what was changed (no Fix implemented, Prevention or Action items)",
                1,
                "add '## Fix implemented' and action items with owner, due and kind",
            )

    # Action items.
    items_line = incident.line_of("action_items")
    # Items are written in order: each is looked for from the line of the one before, so a
    # long list costs one pass over the file, not one pass per item.
    search_from = items_line
    for number, item in enumerate(incident.action_items, 1):
        label = f"action item {number} ({_short(item.title)})"
        line = _item_line(text, item.title, search_from)
        search_from = line or search_from
        if _is_placeholder_item(item.title):
            add(
                "PM011",
                f"{label} is still the template placeholder",
                line,
                "replace it with one change to the system, or delete the item",
            )
        absent = [name for name in ("owner", "due", "kind") if getattr(item, name) in (None, "")]
        if absent:
            add(
                "PM012",
                f"{label} has no {', '.join(absent)}",
                line,
                "give every item an owner (team or @handle), a due date and a kind: prevent, detect or mitigate",
            )
        if item.is_overdue(today):
            due = item.due.date() if isinstance(item.due, datetime) else item.due
            add(
                "PM013",
                f"{label} is open and was due {due.isoformat()}",
                line,
                "finish it, move the due date with a reason, or mark it wontfix",
            )

    # Wording.
    system_words = frozenset(
        word
        for name in [*incident.systems, *incident.tools]
        for word in re.split(r"[^a-z]+", name.lower())
        if word
    )
    findings.extend(_wording_findings(path, blocks, text, located=markdown, system_words=system_words))

    # Category hints.
    if taxonomy is not None and incident.category in taxonomy and status in _POST_MORTEM_STATUSES:
        category = taxonomy.get(incident.category)
        prose = "\n".join(_strip_comments(block.raw) for block in blocks)
        searchable = "\n".join(
            [
                incident.title,
                incident.impact or "",
                " ".join(incident.systems),
                " ".join(incident.tools),
                prose,
            ]
        )
        for hint in category.record:
            if not hint.is_met_by(searchable):
                add(
                    "PM018",
                    f"{category.name} post-mortems record: {hint.hint[0].lower() + hint.hint[1:]}",
                    incident.line_of("category"),
                    f"state it in the Summary or Root cause ({hint.id})",
                )

    impact_blocks = [block for block in blocks if block.section == "impact"]
    findings.extend(_impact_findings(path, incident, impact_blocks, text))
    return findings


def _has_subsections(index: int, blocks: Sequence[_Block]) -> bool:
    """True when a deeper heading follows before the next heading of the same level: a
    '## Timeline' holding only '### Day 1' and '### Day 2' is filled (the sub-sections are checked on their own)."""
    block = blocks[index]
    if block.level == 0:
        return False
    return index + 1 < len(blocks) and blocks[index + 1].level > block.level


def _section_label(block: _Block) -> str:
    if block.field_key:
        return f"`{block.field_key}`"
    return repr(block.label or block.section.replace("_", " ").capitalize())


def _short(text: str, limit: int = 50) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _item_line(text: str, title: str, fallback: int | None) -> int | None:
    words = title.split()[:6]
    return (_locate(text, " ".join(words), fallback or 1) if words else None) or fallback


# -- many files ---------------------------------------------------------------------------


def lint_paths(
    paths: Sequence[Path | str],
    taxonomy: Taxonomy | None = None,
    today: date | None = None,
    select: set[str] | None = None,
    ignore: set[str] | None = None,
    corpus: Path | None = None,
) -> LintResult:
    """Lint every incident file under ``paths``; one bad file never stops the rest.

    With ``corpus`` (the configured corpus folder), ids are also checked against every file
    there, so a pre-commit run on a few staged files still catches an id that is taken."""
    today = today or datetime.now(timezone.utc).date()
    files, missing = discover(paths)
    result = LintResult()
    for problem in missing:
        result.findings.append(Finding(problem.path, None, "PM001", "error", problem.message))
    first_with_id: dict[str, tuple[str, int | None]] = {}
    if corpus is not None and Path(corpus).is_dir():
        from agentpm.postmortem.scaffold import ids_by_file

        linted = {os.path.realpath(path) for path in files}
        for incident_id, owner in ids_by_file(Path(corpus)).items():
            if os.path.realpath(owner) not in linted:
                first_with_id.setdefault(incident_id, (owner, None))
    for path in files:
        result.files_checked += 1
        found = _lint_one(path, taxonomy, today, first_with_id)
        result.findings.extend(_filtered(found, select, ignore))
    result.findings.sort(key=lambda f: (f.file, f.line or 0, f.rule))
    return result


def _filtered(findings: list[Finding], select: set[str] | None, ignore: set[str] | None) -> list[Finding]:
    return [
        finding
        for finding in findings
        if (not select or finding.rule in select) and not (ignore and finding.rule in ignore)
    ]


#: The lint rule, and its suggestion, for each kind of problem a readable record can have.
_PROBLEM_RULES = {
    "field-typo": ("PM021", "rename the field to the one it was meant to be"),
    "date-only-start": ("PM022", "give `date` a time of day and a time zone"),
    "unknown-value": ("PM023", "use one of the values the message lists"),
    "time-order": ("PM007", "dates are compared in UTC: check both values and their time zones"),
}


def _finding_for(shown: str, problem: Any) -> Finding:
    """The lint finding for a parse problem of the file."""
    if problem.kind == "unreadable":
        return Finding(shown, problem.line, "PM001", "error", problem.message)
    if problem.code in _PROBLEM_RULES:
        rule, suggestion = _PROBLEM_RULES[problem.code]
        return Finding(
            shown,
            problem.line,
            rule,
            RULES[rule].severity,
            problem.message.removeprefix("warning: "),
            suggestion,
        )
    return Finding(shown, problem.line, "PM002", "error", problem.message)


def _lint_one(
    path: Path, taxonomy: Taxonomy | None, today: date, first_with_id: dict[str, tuple[str, int | None]]
) -> list[Finding]:
    shown = str(path)
    parsed = parse_file(path)
    findings = [_finding_for(shown, problem) for problem in parsed.problems]
    if parsed.incident is None:
        if any(finding.rule == "PM001" for finding in findings):
            return findings  # nothing could be read, so there are no suppressions to honour
        disabled, _ = _suppressed(decode_text(path.read_bytes()), shown)
        return [finding for finding in findings if finding.rule not in disabled]
    # Whatever parsed is linted in full: a broken field costs that field, not the other rules.
    incident = parsed.incident
    text = decode_text(path.read_bytes())
    if taxonomy is not None:
        for problem in check_against_taxonomy(incident, taxonomy):
            findings.append(Finding(shown, problem.line, "PM003", "error", problem.message))
    if incident.id is not None:
        earlier = first_with_id.get(incident.id)
        if earlier is None:
            first_with_id[incident.id] = (shown, incident.line_of("id"))
        else:
            where = f"{earlier[0]}:{earlier[1]}" if earlier[1] else earlier[0]
            findings.append(
                Finding(
                    shown,
                    incident.line_of("id"),
                    "PM004",
                    "error",
                    f"id {incident.id!r} is already used by {where}",
                    "give this incident a new id (`agentpm new` picks the next free one)",
                )
            )
    findings += lint_incident(incident, text, taxonomy, today)
    disabled, unknown = _suppressed(text, shown)
    return [finding for finding in findings if finding.rule not in disabled] + unknown


__all__ = ["RULES", "Rule", "Finding", "LintResult", "lint_paths", "lint_incident", "rule_ids"]

"""Secrets and personal data out of incident files, the rest kept byte for byte.

Each detector finds one kind of secret (an AWS key, an e-mail address, a Luhn-valid card
number...) and each finding is replaced by a typed placeholder, numbered per kind and
consistent within a file: the same secret twice gives the same ``[EMAIL-1]``. Detectors run
in priority order (custom patterns, then specific token formats, then field rules, then
personal data); a span already claimed is never claimed again, so ``token: ghp_...`` becomes
``[GITHUB-TOKEN-1]``, not ``[SECRET-1]``.

Rules:

- Linear time: every pattern uses bounded repetition only, with no nested or adjacent
  unbounded repetition over user text; a PEM block's end is found with ``str.find``.
- Validity: in YAML and JSON (front matter included), a placeholder that would stand alone as
  a plain value is written quoted (``owner: "[EMAIL-1]"``), since ``[`` would start a list. The
  result is parsed again; a file that parsed before and would not parse (or whose fields would
  change shape) is refused with a message, never written.
- Nothing here prints or returns a secret: results carry kinds, counts and line numbers only.
- Custom patterns and an allow-list come from ``[redact]`` in ``agentpm.toml``.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentpm.errors import ConfigError, WriteError
from agentpm.records.corpus import discover
from agentpm.records.parsing import JSON_SUFFIXES, MAX_FILE_BYTES, YAML_SUFFIXES, decode_text, parse_text
from agentpm.records.writing import atomic_write, fingerprint, write_new_file
from agentpm.safeload import UnreadableInput, read_regular_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: What a placeholder looks like; text that already is one is never redacted again.
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9-]{0,40}-\d{1,6}\]")

Validator = Callable[[str], bool]


@dataclass(frozen=True)
class Detector:
    """One kind of secret: a pattern, the group that holds the secret, and a check on it."""

    kind: str
    pattern: re.Pattern[str]
    group: int | str = 0
    valid: Validator | None = None


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str


# -- checks -------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return total % 10 == 0


def card_number(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    separators = set(re.sub(r"\d", "", text))
    # Card networks start with 2-6; a 13-digit epoch in milliseconds starts with 1.
    return (
        13 <= len(digits) <= 19
        and digits[0] in "23456"
        and len(separators) <= 1
        and len(set(digits)) > 1
        and luhn_valid(digits)
    )


def iban(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 is 1."""
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def ipv4(text: str) -> bool:
    address = ipaddress.IPv4Address(text)
    # Loopback, "any" and broadcast say nothing about anyone.
    return not (address.is_loopback or address.is_unspecified or text == "255.255.255.255")


def ipv6(text: str) -> bool:
    # At least three groups: `a::b` (C++ scopes, Rust paths) parses as an address but is not one.
    if sum(1 for group in text.split(":") if group) < 3:
        return False
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False  # times (09:00:00) and MAC addresses look alike
    return not (address.is_loopback or address.is_unspecified)


def phone(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 8 <= len(digits) <= 15 and len(set(digits)) > 2


def aws_secret(text: str) -> bool:
    # Forty characters of base64 with both cases and a digit; a SHA-1 (git) is hex, one case.
    return (
        any(char.isupper() for char in text)
        and any(char.islower() for char in text)
        and any(char.isdigit() for char in text)
        and not re.fullmatch(r"[0-9A-Fa-f]{40}", text)
    )


#: Field values that are not secrets: empty markers, booleans, references to the environment.
_NOT_SECRET_VALUES = {"null", "none", "true", "false", "redacted", "~", "n/a", "na", "tbd", "todo", "xxx"}


def field_value(text: str, password: bool = False) -> bool:
    """A value under a secret-sounding key that looks like a secret: a password of six or more
    characters; a token, key or secret of eight or more with a digit (prose such as
    ``invalid_token: token expired`` is not one)."""
    stripped = text.strip("\"' ")
    long_enough = (
        len(stripped) >= 6 if password else len(stripped) >= 8 and any(c.isdigit() for c in stripped)
    )
    return (
        long_enough
        and stripped.lower() not in _NOT_SECRET_VALUES
        and not stripped.startswith(("$", "<", "{{", "%(", "*"))
        and not set(stripped) <= {"*", "x", "X", "."}
    )


# -- detectors ----------------------------------------------------------------------------

_WORD_BEFORE = r"(?<![A-Za-z0-9_-])"
_WORD_AFTER = r"(?![A-Za-z0-9_-])"

# Key names whose value is a secret, with an optional prefix (db_password, AWS_SECRET_ACCESS_KEY).
_SECRET_KEY = (
    r"(?:[A-Za-z0-9]{1,24}[_-])?"
    r"(?:secret[_-]?access[_-]?key|client[_-]?secret|private[_-]?key|secret[_-]?key|access[_-]?key|"
    r"api[_-]?key|apikey|auth[_-]?token|access[_-]?token|refresh[_-]?token|token|secret|"
    r"password|passwd|pwd)"
)
_PASSWORD_KEY = re.compile(r"(?i)(?:password|passwd|pwd)$")
_FIELD_VALUE = r"""(?:"(?P<dq>[^"\n]{1,512})"|'(?P<sq>[^'\n]{1,512})'|(?P<bare>[^\s"',;&#]{1,512}))"""

# `key: value` where a key starts a line (YAML, logs) or follows { or , (flow YAML, JSON);
# `key=value` anywhere (env files, connection strings, command lines).
_FIELD = re.compile(
    r"(?im)(?:^[ \t]{0,40}(?:-[ \t]{1,8})?|[{,][ \t]{0,8}|(?<![A-Za-z0-9_-]))"
    r"[\"']?(?P<key>" + _SECRET_KEY + r")[\"']?"
    r"(?:[ \t]{0,8}:[ \t]{1,8}|[ \t]{0,4}=[ \t]{0,4}|:(?=[\"']))" + _FIELD_VALUE
)

BUILT_IN: tuple[Detector, ...] = (
    Detector(
        "JWT",
        re.compile(
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.[A-Za-z0-9_-]{8,4096}"
        ),
    ),
    Detector("ANTHROPIC-KEY", re.compile(_WORD_BEFORE + r"sk-ant-[A-Za-z0-9_-]{20,256}")),
    Detector(
        "OPENAI-KEY",
        re.compile(_WORD_BEFORE + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,256}" + _WORD_AFTER),
    ),
    Detector("STRIPE-KEY", re.compile(_WORD_BEFORE + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,256}")),
    Detector(
        "GITHUB-TOKEN",
        re.compile(_WORD_BEFORE + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
    ),
    Detector("SLACK-TOKEN", re.compile(_WORD_BEFORE + r"xox[abpr]-[A-Za-z0-9-]{10,255}")),
    Detector("GOOGLE-API-KEY", re.compile(_WORD_BEFORE + r"AIza[0-9A-Za-z_-]{35}" + _WORD_AFTER)),
    Detector(
        "AWS-KEY",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
    ),
    Detector(
        "AWS-SECRET",
        # only as a word of its own: inside a URL path or a dotted name it is not a key
        re.compile(r"(?<![^\s\"'=:])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=.])"),
        valid=aws_secret,
    ),
    Detector(
        "BEARER-TOKEN",
        re.compile(
            r"(?:\bBearer|(?i:authorization)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?:Basic|Token))"
            r"[ \t]{1,4}([A-Za-z0-9._~+/=-]{8,4096})"
        ),
        group=1,
    ),
    Detector(
        # scheme://user:password@host: the password goes, the user and host stay.
        "PASSWORD",
        re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@\"'<>]{1,256}:([^\s/@\"'<>]{1,256})@"),
        group=1,
    ),
    Detector(
        "SECRET",
        re.compile(
            r"(?i)[?&](?:api[_-]?key|apikey|key|token|access[_-]?token|auth|sig|signature|"
            r"password|secret|client[_-]?secret|code)=([^&#\s\"'<>]{4,1024})"
        ),
        group=1,
    ),
    Detector("FIELD", _FIELD),
    Detector(
        "EMAIL",
        re.compile(
            r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}"
            r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
        ),
        valid=lambda text: not text.lower().startswith("git@"),
    ),
    Detector(
        "CARD",
        re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-]|\.\d)"),
        valid=card_number,
    ),
    Detector("SSN", re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")),
    Detector(
        "IBAN",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        valid=iban,
    ),
    Detector(
        "IPV4",
        re.compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
            r"(?![\w]|\.\d)"
        ),
        valid=ipv4,
    ),
    Detector(
        "IPV6",
        re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:]|\.\d)"),
        valid=ipv6,
    ),
    Detector(
        "PHONE",
        re.compile(
            # international: +44 20 7946 0958, +1 (415) 555-0132
            r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}(?![\w-])"
            # North American: (415) 555-0132, 415-555-0132, 415.555.0132
            r"|(?<![\w(])\(\d{3}\)[ ]?\d{3}[ .-]\d{4}(?![\w-])"
            r"|(?<![\w.-])\d{3}[.-]\d{3}[.-]\d{4}(?![\w-]|\.\d)"
            # national with a trunk zero: 030 12345678, 020 7946 0958
            r"|(?<![\w.-])0\d{1,4}[ /-]\d{3,8}(?:[ -]\d{3,4})?(?![\w-]|\.\d)"
        ),
        valid=phone,
    ),
)

# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class RedactRules:
    """The detectors to run (custom ones first) and the literals never to redact."""

    detectors: tuple[Detector, ...] = BUILT_IN
    allow: tuple[str, ...] = ()
    source: str | None = None


def kind_name(name: str) -> str:
    """A custom pattern's name as a placeholder kind: ``internal host`` -> ``INTERNAL-HOST``."""
    return re.sub(r"[^A-Z0-9]+", "-", name.upper()).strip("-") or "CUSTOM"


def load_rules(folder: Path | str = ".") -> RedactRules:
    """``[redact]`` from ``agentpm.toml`` in ``folder``: ``patterns = {NAME = "regex"}`` and
    ``allow = ["literal", ...]``. No file or no table: the built-in detectors alone."""
    path = Path(folder) / "agentpm.toml"
    if not path.is_file():
        return RedactRules()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    table = data.get("redact", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [redact] must be a table (patterns = {{...}}, allow = [...])")
    unknown = sorted(set(table) - {"patterns", "allow"})
    if unknown:
        raise ConfigError(f"{path}: redact.{unknown[0]} is not a setting; use patterns and allow")
    patterns = table.get("patterns", {})
    if not isinstance(patterns, dict):
        raise ConfigError(f'{path}: redact.patterns must be a table of NAME = "regex"')
    custom = []
    for name, regex in patterns.items():
        if not isinstance(regex, str) or not regex:
            raise ConfigError(f"{path}: redact.patterns.{name} must be a regular expression string")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise ConfigError(
                f"{path}: redact.patterns.{name}: invalid regular expression ({exc}); fix or remove it"
            ) from None
        # A named group `secret` marks the part to replace; otherwise the whole match goes.
        custom.append(Detector(kind_name(name), compiled, "secret" if "secret" in compiled.groupindex else 0))
    allow = table.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(item, str) and item for item in allow):
        raise ConfigError(f'{path}: redact.allow must be a list of strings, e.g. allow = ["noc@example.com"]')
    return RedactRules(tuple(custom) + BUILT_IN, tuple(allow), str(path))


# -- finding and replacing ----------------------------------------------------------------


def _secret_span(detector: Detector, found: re.Match[str]) -> tuple[int, int, str] | None:
    """(start, end, kind) of the secret in a match, or None when the check rejects it."""
    if detector.kind == "FIELD":
        group = next(name for name in ("dq", "sq", "bare") if found.group(name) is not None)
        kind = "PASSWORD" if _PASSWORD_KEY.search(found.group("key")) else "SECRET"
    else:
        group, kind = detector.group, detector.kind
    start, end = found.span(group)
    if start < 0 or start == end:
        return None
    text = found.string[start:end]
    if PLACEHOLDER.fullmatch(text):
        return None
    if detector.kind == "FIELD":
        if not field_value(text, password=kind == "PASSWORD"):
            return None
    elif detector.valid is not None and not detector.valid(text):
        return None
    return start, end, kind


def _allowed_spans(text: str, allow: Iterable[str]) -> list[tuple[int, int]]:
    spans = []
    for literal in allow:
        at = text.find(literal)
        while at >= 0:
            spans.append((at, at + len(literal)))
            at = text.find(literal, at + 1)
    return spans


def _pem_blocks(text: str) -> list[tuple[int, int]]:
    """PEM private-key blocks, BEGIN to END; the END is found with str.find (linear time)."""
    spans = []
    begin = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY-----")
    position = 0
    while True:
        found = begin.search(text, position)
        if not found:
            return spans
        end_at = text.find("PRIVATE KEY-----", found.end())
        marker = text.rfind("-----END", found.end(), end_at) if end_at >= 0 else -1
        # Without its END line, the header and the rest of its line go: better too much than a key.
        stop = end_at + len("PRIVATE KEY-----") if marker >= 0 else _line_end(text, found.end())
        spans.append((found.start(), stop))
        position = stop


def _line_end(text: str, at: int) -> int:
    end = text.find("\n", at)
    return len(text) if end < 0 else end


def find_secrets(text: str, rules: RedactRules = RedactRules()) -> list[Finding]:
    """Every secret in ``text``, in text order, no two overlapping (earlier detectors win)."""
    # Claimed spans never overlap, so sorted starts and a look at the two neighbours decide
    # whether a new span is free: logarithmic per candidate, however many secrets a file has.
    starts: list[int] = []
    ends: list[int] = []
    findings: list[Finding] = []
    allowed = _allowed_spans(text, rules.allow)

    def claim(start: int, end: int) -> bool:
        at = bisect.bisect_right(starts, start)
        if (at > 0 and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
            return False
        starts.insert(at, start)
        ends.insert(at, end)
        return True

    for start, end in _pem_blocks(text):
        claim(start, end)
        findings.append(Finding(start, end, "PRIVATE-KEY"))
    for detector in rules.detectors:
        for found in detector.pattern.finditer(text):
            span = _secret_span(detector, found)
            if span is None:
                continue
            start, end, kind = span
            if any(a <= start and end <= b for a, b in allowed) or text[start:end] in rules.allow:
                continue
            if claim(start, end):
                findings.append(Finding(start, end, kind))
    return sorted(findings, key=lambda finding: finding.start)


def structured_end(text: str, path: Path) -> int:
    """Where the YAML/JSON part of the file ends: all of a YAML/JSON file, the front matter of
    Markdown, nothing of plain Markdown."""
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES or suffix in JSON_SUFFIXES:
        return len(text)
    if text.startswith("---\n"):
        for closing in ("\n---\n", "\n...\n", "\n---", "\n..."):
            at = text.find(closing, 3)
            if at >= 0 and (closing.endswith("\n") or at + len(closing) == len(text)):
                return at
    return 0


_BLOCK_SCALAR = re.compile(
    r"(?:^|:[ \t]{1,8}|^[ \t]{0,40}-[ \t]{1,8})[|>][-+0-9]{0,3}[ \t]{0,8}(?:#[^\n]{0,200})?$"
)


def block_scalar_lines(text: str, structured: int) -> set[int]:
    """Line numbers (0-based) inside YAML block scalars (``summary: |``) of the structured part:
    their text is prose, so a placeholder there is never quoted."""
    inside: set[int] = set()
    opener_indent: int | None = None
    for number, line in enumerate(text[:structured].split("\n")):
        indent = len(line) - len(line.lstrip(" "))
        if opener_indent is not None:
            if not line.strip() or indent > opener_indent:
                inside.add(number)
                continue
            opener_indent = None
        if _BLOCK_SCALAR.search(line.rstrip()):
            opener_indent = indent
    return inside


def _in_double_quotes(before: str) -> bool:
    """Whether the end of ``before`` (one line, up to a finding) is inside a "string"."""
    quotes = 0
    escaped = False
    for char in before:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quotes += 1
    return quotes % 2 == 1


@dataclass(frozen=True)
class Context:
    """Where a finding sits: in YAML/JSON (not prose), inside a string, standing alone as a value."""

    structured: bool
    quoted: bool
    alone: bool
    scalar: tuple[int, int] | None  # the enclosing plain scalar (start, end), when structured


def line_starts(text: str) -> list[int]:
    """Offsets where each line starts, for line numbers by bisection."""
    return [0] + [found.end() for found in re.finditer("\n", text)]


def finding_context(
    text: str, finding: Finding, structured: int, prose_lines: set[int], starts: list[int]
) -> Context:
    line_number = bisect.bisect_right(starts, finding.start) - 1
    if finding.start >= structured or line_number in prose_lines:
        return Context(False, False, False, None)
    line_start = text.rfind("\n", 0, finding.start) + 1
    line_end = _line_end(text, finding.end)
    before = text[line_start : finding.start]
    after = text[finding.end : line_end]
    stripped_before, stripped_after = before.rstrip(" \t"), after.lstrip(" \t")
    if _in_double_quotes(before) or stripped_before.endswith("'"):
        return Context(True, True, False, None)
    alone = (not stripped_before or stripped_before[-1] in ":-[{,") and (
        not stripped_after or stripped_after[0] in ",]}#"
    )
    # The plain scalar around the finding: from after the last `: `, `- `, `[`, `{` or `,` (in a
    # flow collection) to before the next `,`, `]`, `}` or ` #` (in block context: to the line end).
    in_flow = before.count("[") + before.count("{") > before.count("]") + before.count("}")
    openers = (": ", "- ", "[", "{", ",") if in_flow else (": ", "- ")
    begin = max((before.rfind(mark) + len(mark) for mark in openers if mark in before), default=0)
    while begin < len(before) and before[begin] in " \t":
        begin += 1
    closers = (",", "]", "}", " #") if in_flow else (" #",)
    stop = min((after.find(mark) for mark in closers if mark in after), default=len(after))
    while stop > 0 and after[stop - 1] in " \t":
        stop -= 1
    return Context(True, False, alone, (line_start + begin, finding.end + stop))


@dataclass
class Redacted:
    """The redacted text and what was found (kinds, counts, lines; never the secrets)."""

    text: str
    counts: Counter[str] = field(default_factory=Counter)
    lines: list[tuple[int, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def redact_text(
    text: str, path: Path | str, rules: RedactRules = RedactRules(), quote_scalars: bool = False
) -> Redacted:
    """``text`` with every secret replaced by its typed placeholder (numbered per kind in order
    of first appearance, the same secret the same placeholder).

    In YAML and JSON a placeholder standing alone as a value is written quoted. With
    ``quote_scalars`` (the second try when the first would break the record) every plain YAML
    value that holds a placeholder is written as one double-quoted string instead."""
    path = Path(path)
    findings = find_secrets(text, rules)
    if not findings:
        return Redacted(text)
    structured = structured_end(text, path)
    prose_lines = block_scalar_lines(text, structured) if structured else set()
    starts = line_starts(text)
    numbers: dict[tuple[str, str], str] = {}
    per_kind: Counter[str] = Counter()
    result = Redacted("")
    replacements: list[tuple[int, int, str]] = []
    for finding in findings:
        secret = text[finding.start : finding.end]
        placeholder = numbers.get((finding.kind, secret))
        if placeholder is None:
            per_kind[finding.kind] += 1
            placeholder = numbers[(finding.kind, secret)] = f"[{finding.kind}-{per_kind[finding.kind]}]"
        result.counts[finding.kind] += 1
        result.lines.append((bisect.bisect_right(starts, finding.start), finding.kind))
        context = finding_context(text, finding, structured, prose_lines, starts)
        if context.alone:
            placeholder = f'"{placeholder}"'
        if quote_scalars and context.structured and not context.quoted and not context.alone:
            replacements.append((*context.scalar, ""))  # type: ignore[misc]
        replacements.append((finding.start, finding.end, placeholder))
    result.text = _apply(text, replacements)
    return result


def _apply(text: str, replacements: list[tuple[int, int, str]]) -> str:
    """Apply placeholder replacements; a scalar marker (empty replacement around placeholders)
    makes the whole scalar one JSON-style double-quoted string."""
    scalars = sorted({(start, end) for start, end, placeholder in replacements if placeholder == ""})
    placeholders = sorted(
        (start, end, placeholder) for start, end, placeholder in replacements if placeholder
    )
    parts: list[str] = []
    position = 0
    index = 0
    while index < len(placeholders):
        start, end, placeholder = placeholders[index]
        scalar = next((span for span in scalars if span[0] <= start and end <= span[1]), None)
        if scalar is None:
            parts += [text[position:start], placeholder]
            position = end
            index += 1
            continue
        inner, cursor = [], scalar[0]
        while index < len(placeholders) and placeholders[index][1] <= scalar[1]:
            start, end, placeholder = placeholders[index]
            inner += [text[cursor:start], placeholder.strip('"')]
            cursor = end
            index += 1
        inner.append(text[cursor : scalar[1]])
        parts += [text[position : scalar[0]], json.dumps("".join(inner), ensure_ascii=False)]
        position = scalar[1]
    parts.append(text[position:])
    return "".join(parts)


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return "value"


def breaks_record(before: str, after: str, path: Path) -> str | None:
    """Why the redacted text is no longer the same record (it no longer parses, has a problem
    the original did not have, or a field changed shape), or None when it is fine. A file that
    could not be read as an incident before is not judged."""
    original = parse_text(before, path)
    if original.incident is None:
        return None
    redacted = parse_text(after, path)
    if redacted.incident is None:
        return "; ".join(problem.message for problem in redacted.problems[:2])
    known = {(problem.kind, problem.field) for problem in original.problems}
    new = [problem for problem in redacted.problems if (problem.kind, problem.field) not in known]
    if new:
        return "; ".join(f"line {problem.line}: {problem.message}" for problem in new[:2])
    old, changed = original.incident.model_dump(), redacted.incident.model_dump()
    for key in old:
        if _shape(old[key]) != _shape(changed.get(key)):
            return f"field {key} would change shape"
    return None


# -- files --------------------------------------------------------------------------------


@dataclass
class FileResult:
    """What happened to one file: written, unchanged, refused or unreadable, with counts."""

    path: str
    status: str  # "redacted", "clean", "would-redact", "refused", "unreadable"
    counts: Counter[str] = field(default_factory=Counter)
    lines: list[tuple[int, str]] = field(default_factory=list)
    output: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "output": self.output,
            "counts": dict(sorted(self.counts.items())),
            "lines": [{"line": line, "kind": kind} for line, kind in self.lines],
            "message": self.message,
        }


@dataclass
class RedactRun:
    files: list[FileResult] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for result in self.files:
            total.update(result.counts)
        return total

    def exit_code(self, check: bool) -> int:
        """2 unreadable input; 1 a file refused, or (with --check) anything to redact; else 0."""
        statuses = {result.status for result in self.files}
        if "unreadable" in statuses:
            return 2
        if "refused" in statuses or (check and "would-redact" in statuses):
            return 1
        return 0

    def kind_rows(self) -> list[dict[str, Any]]:
        """One row per kind: how many replacements, in how many files."""
        files_with: Counter[str] = Counter()
        for result in self.files:
            files_with.update(set(result.counts))
        return [
            {"kind": kind, "count": count, "files": files_with[kind]}
            for kind, count in sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        ]

    def to_dict(self) -> dict[str, Any]:
        statuses = Counter(result.status for result in self.files)
        return {
            "files": len(self.files),
            "statuses": dict(sorted(statuses.items())),
            "counts": dict(sorted(self.counts.items())),
            "results": [result.to_dict() for result in self.files],
        }


def output_path(path: Path, root: Path, out_dir: Path) -> Path:
    """Where the redacted copy of ``path`` (found under ``root``) goes in ``out_dir``."""
    return out_dir / path.relative_to(root) if root.is_dir() else out_dir / path.name


def redact_file(
    path: Path,
    rules: RedactRules,
    target: Path | None = None,
    in_place: bool = False,
    overwrite: bool = False,
) -> FileResult:
    """Redact one file into ``target``, in place, or (neither) only count what would go."""
    shown = str(path)
    try:
        before_write = fingerprint(path) if in_place else None
        text = decode_text(read_regular_file(path, MAX_FILE_BYTES))
    except UnreadableInput as exc:
        return FileResult(shown, "unreadable", message=f"{shown}: {exc}")
    redacted = redact_text(text, path, rules)
    result = FileResult(shown, "clean", redacted.counts, redacted.lines)
    if target is None and not in_place:
        result.status = "would-redact" if redacted.total else "clean"
        return result
    if redacted.total and breaks_record(text, redacted.text, path):
        # Second try: every YAML value holding a placeholder becomes one quoted string.
        redacted = redact_text(text, path, rules, quote_scalars=True)
        broken = breaks_record(text, redacted.text, path)
        if broken:
            result.status = "refused"
            result.message = (
                f"{shown}: not written: redacting would break the record ({broken}); quote the values "
                'that hold secrets (owner: "...") and run again, or redact this file by hand'
            )
            return result
    if in_place:
        if redacted.total:
            atomic_write(path, redacted.text, expected=before_write)
            result.status, result.output = "redacted", shown
        return result
    assert target is not None
    try:
        write_new_file(target, redacted.text, overwrite=overwrite)
    except WriteError as exc:
        result.status, result.message = "refused", str(exc)
        return result
    result.status, result.output = ("redacted" if redacted.total else "clean"), str(target)
    return result


def redact_paths(
    paths: Iterable[Path],
    rules: RedactRules,
    out_dir: Path | None = None,
    in_place: bool = False,
    overwrite: bool = False,
) -> RedactRun:
    """Redact every incident file under ``paths``: into ``out_dir`` (the same relative layout),
    in place, or, with neither, only count (``--check``). One bad file never stops the rest."""
    run = RedactRun()
    for root in paths:
        files, problems = discover([root])
        run.files += [FileResult(problem.path, "unreadable", message=str(problem)) for problem in problems]
        for path in files:
            target = output_path(path, Path(root), out_dir) if out_dir is not None else None
            if target is not None and target.resolve() == path.resolve():
                run.files.append(
                    FileResult(
                        str(path), "refused", message=f"{path}: -o would replace the input; use --in-place"
                    )
                )
                continue
            run.files.append(redact_file(path, rules, target, in_place, overwrite))
    return run

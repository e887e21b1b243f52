"""Safe readers for YAML and JSON text: plain data only, bounded, errors with line numbers.

Shared by the incident parser and the taxonomy loader. No YAML tag constructs an object,
alias bombs are refused before they expand, and every failure is an ``UnreadableInput``
with the line where it was found, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from agentpm.plainyaml import load_plain

#: A YAML document may expand (through aliases) to at most this many nodes. Real front
#: matter has a few dozen; "billion laughs" documents have billions.
MAX_YAML_NODES = 20_000


class UnreadableInput(Exception):
    """No document could be read from the text (the file is unreadable as given)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


# -- YAML ---------------------------------------------------------------------------------

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _IncidentLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that leaves timestamps as text, so dates are checked (and reported)
    by the incident schema with the value as written, not by PyYAML with a traceback."""

    # PyYAML's resolver also handles path resolvers and wildcard implicit resolvers, which
    # the safe loader has none of; without them it is one dict look-up per scalar. The
    # composer calls this for every node, so it is a fifth of front-matter parsing time.
    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, pattern in self.yaml_implicit_resolvers.get(value[:1], ()):
                    if pattern.match(value):
                        return tag
            return self.DEFAULT_SCALAR_TAG
        return self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else self.DEFAULT_MAPPING_TAG

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_IncidentLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# The fast resolve above relies on these being absent.
assert None not in _IncidentLoader.yaml_implicit_resolvers and not _IncidentLoader.yaml_path_resolvers


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse documents whose aliases expand past MAX_YAML_NODES (or refer to themselves).

    Counting with a memo over the composed graph is linear in its size, however large the
    expansion would be, so a billion-laughs file is refused in microseconds.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in sizes:
            stack.pop()
            continue
        children = _node_children(node)
        pending = [child for child in children if id(child) not in sizes]
        if pending and key not in in_progress:
            in_progress.add(key)
            for child in pending:
                if id(child) in in_progress:
                    raise UnreadableInput(
                        "YAML aliases refer to themselves (a recursive structure); remove the alias",
                        child.start_mark.line + 1,
                    )
            stack.extend(pending)
            continue
        if pending:  # revisited while a child is still open: only a cycle does that
            raise UnreadableInput(
                "YAML aliases refer to themselves (a recursive structure); remove the alias",
                node.start_mark.line + 1,
            )
        total = 1 + sum(sizes[id(child)] for child in children)
        if total > MAX_YAML_NODES:
            raise UnreadableInput(
                f"YAML expands to more than {MAX_YAML_NODES:,} values through aliases (an 'alias bomb'); "
                "write the values out instead of using anchors",
                node.start_mark.line + 1,
            )
        sizes[key] = total
        in_progress.discard(key)
        stack.pop()


def load_yaml(text: str, line_offset: int = 0, plain_first: bool = True) -> tuple[Any, dict[str, int]]:
    """Parse one YAML document safely; return the data and the 1-based line of each top-level key.

    Plain block YAML is read by :mod:`agentpm.plainyaml` (same results, several times faster);
    everything else, and ``plain_first=False``, goes through PyYAML.
    """
    if plain_first:
        found = load_plain(text, line_offset)
        if found is not None:
            return found
    loader = _IncidentLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 + line_offset if mark else None
            reason = " ".join(str(exc.problem or exc).split())
            raise UnreadableInput(f"malformed YAML: {reason}", line) from None
        except yaml.YAMLError as exc:
            raise UnreadableInput(f"malformed YAML: {' '.join(str(exc).split())}") from None
        if node is None:
            return None, {}
        if "*" in text and "&" in text:  # without an anchor and an alias nothing can expand
            _check_expansion(node)
        try:
            data = _construct_plain(node)
        except _NeedsFullConstructor:
            data = None
        except RecursionError:
            raise UnreadableInput("YAML is nested too deeply to be an incident record") from None
        except (ValueError, OverflowError) as exc:
            # e.g. an integer of thousands of digits (Python refuses to convert it)
            raise UnreadableInput(
                f"a YAML value cannot be read: {' '.join(str(exc).split())[:160]}"
            ) from None
        else:
            return data, _key_lines(node, line_offset)
        try:
            data = loader.construct_document(node)
        except yaml.constructor.ConstructorError as exc:
            mark = exc.problem_mark
            line = mark.line + 1 + line_offset if mark else None
            tag = re.search(r"tag '([^']+)'", str(exc.problem or ""))
            if tag:
                shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
                raise UnreadableInput(
                    f"YAML tag {shown} is not allowed (agentpm reads plain YAML only); remove the tag", line
                ) from None
            raise UnreadableInput(
                f"malformed YAML: {' '.join(str(exc.problem or exc).split())}", line
            ) from None
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # Explicit tags such as !!timestamp or !!binary with bad values end up here.
            raise UnreadableInput(f"malformed YAML value: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
    return data, _key_lines(node, line_offset)


def _key_lines(node: yaml.Node, line_offset: int) -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                lines.setdefault(str(key_node.value), key_node.start_mark.line + 1 + line_offset)
    return lines


class _NeedsFullConstructor(Exception):
    """The document uses something the plain constructor leaves to PyYAML (tags, merge keys)."""


_SCALARS = yaml.constructor.SafeConstructor()
_PLAIN_SCALAR = {
    "tag:yaml.org,2002:str": lambda node: node.value,
    "tag:yaml.org,2002:int": _SCALARS.construct_yaml_int,
    "tag:yaml.org,2002:float": _SCALARS.construct_yaml_float,
    "tag:yaml.org,2002:bool": _SCALARS.construct_yaml_bool,
    "tag:yaml.org,2002:null": _SCALARS.construct_yaml_null,
}
_SEQ, _MAP, _STR = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map", "tag:yaml.org,2002:str"


def _construct_plain(node: yaml.Node) -> Any:
    """Build Python data from plain YAML (untagged scalars, lists, string-keyed maps).

    Front matter is almost always this simple; building it directly is about three times
    faster than PyYAML's general constructor, which is kept for everything else.
    """
    if isinstance(node, yaml.ScalarNode):
        convert = _PLAIN_SCALAR.get(node.tag)
        if convert is None:
            raise _NeedsFullConstructor
        return convert(node)
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        return [_construct_plain(child) for child in node.value]
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
        built = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise _NeedsFullConstructor
            # Most values are plain strings: skip the call for them.
            value = (
                value_node.value
                if value_node.tag == _STR and isinstance(value_node, yaml.ScalarNode)
                else _construct_plain(value_node)
            )
            built[_construct_plain(key_node)] = value
        return built
    raise _NeedsFullConstructor


# -- JSON ---------------------------------------------------------------------------------


def load_json(text: str) -> tuple[Any, dict[str, int]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableInput(f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except RecursionError:
        raise UnreadableInput("JSON is nested too deeply to be an incident record") from None
    lines: dict[str, int] = {}
    if isinstance(data, dict):
        for key in data:
            found = re.search(r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:', text)
            if found:
                lines[key] = text.count("\n", 0, found.start()) + 1
    return data, lines


# -- files ----------------------------------------------------------------------------------


def read_regular_file(path: Path | str, limit: int, what: str = "an incident report") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or ``UnreadableInput``.

    Opened without blocking and checked with ``fstat`` on the open descriptor, so a FIFO, a
    device or a socket is refused unread (a FIFO would hang the run, ``/dev/zero`` would fill
    memory), and a symlink counts only when it leads to a regular file. At most ``limit + 1``
    bytes are ever read, whatever the file claims its size is.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise UnreadableInput("is a directory, not a file") from None
    except FileNotFoundError:
        raise UnreadableInput("no such file (or a symlink to nothing)") from None
    except OSError as exc:
        raise UnreadableInput(f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(descriptor)
        mode = info.st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "a directory"
                if stat.S_ISDIR(mode)
                else "not a regular file"
            )
            raise UnreadableInput(f"is {kind}, not a regular file; agentpm reads only regular files")
        if info.st_size > limit:
            raise UnreadableInput(
                f"file is {info.st_size / 1048576:.1f} MiB, over the {limit / 1048576:g} MiB limit for {what}; "
                "split it or remove pasted logs"
            )
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(descriptor, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise UnreadableInput(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)
    if total > limit:
        raise UnreadableInput(
            f"file is over the {limit / 1048576:g} MiB limit for {what}; split it or remove pasted logs"
        )
    return b"".join(chunks)

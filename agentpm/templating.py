"""The one jinja2 Environment of agentpm: package templates, StrictUndefined.

User template folders (for `agentpm new`) are rendered in jinja2's sandbox, never the
package environment, so a template from a corpus repo cannot reach Python internals; the
sandbox here also bounds what a template can cost (output size, loop ranges, string and
list multiplication, powers, render time) and reads no file from outside its folder, even
through a symlink.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, PackageLoader, StrictUndefined, select_autoescape
from jinja2.exceptions import SecurityError, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

#: Limits for user templates: a post-mortem draft is a few KB.
MAX_OUTPUT_CHARS = 1_000_000
MAX_RANGE = 10_000
MAX_SEQUENCE = 100_000
MAX_EXPONENT = 64
RENDER_SECONDS = 10


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Templates shipped in ``agentpm/templates``; HTML templates are autoescaped."""
    return Environment(
        loader=PackageLoader("agentpm", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


class ContainedLoader(FileSystemLoader):
    """Loads templates only from files that really are inside the folder (symlinks resolved)."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        root = os.path.realpath(self.searchpath[0])
        if filename is None or os.path.commonpath([root, os.path.realpath(filename)]) != root:
            raise TemplateNotFound(f"{template} (it leads outside the template folder)")
        return source, filename, uptodate


def _limited_range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"range of {len(found):,} items is over the template limit of {MAX_RANGE:,}")
    return found


class LimitedSandbox(SandboxedEnvironment):
    """jinja2's sandbox with bounded multiplication and powers (``'A' * 10**10`` is refused)."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"power with exponent {right} is over the template limit of {MAX_EXPONENT}")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    hasattr(sequence, "__len__")
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_SEQUENCE
                ):
                    raise SecurityError(
                        "repeating a string or list that many times is over the template limit"
                    )
        return super().call_binop(context, operator, left, right)


def user_environment(folder: Path) -> SandboxedEnvironment:
    """A sandboxed, bounded environment for templates a user configured (`templates` setting)."""
    sandbox = LimitedSandbox(
        loader=ContainedLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    sandbox.globals["range"] = _limited_range
    return sandbox


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """SIGALRM-bounded block in the main thread (elsewhere, or off POSIX, unbounded in time)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise SecurityError(f"the template took longer than {seconds} s to render")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def render_user(folder: Path, name: str, context: dict[str, Any]) -> str:
    """Render a user template within the limits: output size is counted as it is produced."""
    parts: list[str] = []
    size = 0
    with _time_limit(RENDER_SECONDS):
        for part in user_environment(folder).get_template(name).generate(**context):
            size += len(part)
            if size > MAX_OUTPUT_CHARS:
                raise SecurityError(f"the template's output is over {MAX_OUTPUT_CHARS:,} characters")
            parts.append(part)
    return "".join(parts)


def render(name: str, context: dict[str, Any], folder: Path | None = None) -> str:
    """Render a template by name: from the user's folder (sandboxed) when it has one, else the package."""
    if folder is not None and (Path(folder) / name).is_file():
        return render_user(Path(folder), name, context)
    return environment().get_template(name).render(**context)

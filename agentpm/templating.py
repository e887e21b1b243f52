"""The one jinja2 Environment of agentpm: package templates, StrictUndefined.

User template folders (for `agentpm new`) are rendered in jinja2's sandbox, never the
package environment, so a template from a corpus repo cannot reach Python internals.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment


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


def user_environment(folder: Path) -> SandboxedEnvironment:
    """A sandboxed environment for templates a user configured (`templates` setting)."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(folder)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "html.j2"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, context: dict[str, Any], folder: Path | None = None) -> str:
    """Render a template by name: from the user's folder (sandboxed) when it has one, else the package."""
    if folder is not None and (Path(folder) / name).is_file():
        return user_environment(Path(folder)).get_template(name).render(**context)
    return environment().get_template(name).render(**context)

"""The failure taxonomy, as data.

Nothing in agentpm names the categories in code: every command reads them from a
taxonomy file (the shipped one, or the user's own). Loading checks the file's shape and
says precisely where it is wrong.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentpm.errors import TaxonomyError

RELATIONS = ("exact", "broader", "narrower", "overlaps")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mapping(_Strict):
    """One crosswalk entry: how our category relates to a code in another taxonomy.

    ``relation`` reads "our category is <relation> than/to theirs": ``broader`` means ours
    covers more than their code, ``narrower`` less.
    """

    scheme: str = Field(min_length=1)
    code: str = Field(min_length=1)
    name: str | None = None
    relation: Literal["exact", "broader", "narrower", "overlaps"]
    note: str = Field(min_length=1)


class RecordHint(_Strict):
    """Something a post-mortem of a category should state, and a pattern that shows it does."""

    id: str = Field(min_length=1)
    hint: str = Field(min_length=1)
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    def is_met_by(self, text: str) -> bool:
        return re.search(self.pattern, text, re.IGNORECASE | re.MULTILINE) is not None


class Category(_Strict):
    id: str
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    scenarios: list[str] = Field(min_length=1)
    prevention: list[str] = Field(min_length=1)
    typical_impact: str = Field(min_length=1)
    labelling_notes: list[str] = Field(min_length=1)
    record: list[RecordHint] = Field(default_factory=list)
    crosswalk: list[Mapping] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"{value!r} is not a valid id; use lower-case letters, digits and hyphens")
        return value


class Scheme(_Strict):
    name: str = Field(min_length=1)
    version: str | None = None
    reference: str | None = None


class Taxonomy(_Strict):
    """A versioned set of failure categories with their guidance and crosswalks."""

    version: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str | None = None
    schemes: dict[str, Scheme] = Field(default_factory=dict)
    categories: list[Category] = Field(min_length=1)
    # Set by the loader: identifies the exact file a model was trained against.
    sha256: str = ""
    path: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _consistent(self) -> Taxonomy:
        seen: set[str] = set()
        for index, category in enumerate(self.categories):
            if category.id in seen:
                raise ValueError(f"categories[{index}].id: duplicate id {category.id!r}; ids must be unique")
            seen.add(category.id)
            for position, mapping in enumerate(category.crosswalk):
                if self.schemes and mapping.scheme not in self.schemes:
                    raise ValueError(
                        f"categories[{index}].crosswalk[{position}].scheme: unknown scheme {mapping.scheme!r}; "
                        f"declare it under 'schemes' (known: {', '.join(self.schemes)})"
                    )
        return self

    @property
    def ids(self) -> list[str]:
        return [category.id for category in self.categories]

    def get(self, category_id: str) -> Category:
        for category in self.categories:
            if category.id == category_id:
                return category
        raise TaxonomyError(f"unknown category {category_id!r}; known ids: {', '.join(self.ids)}")

    def summary_rows(self) -> list[dict]:
        """One row per category for `taxonomy show`'s table."""
        return [
            {
                "id": c.id,
                "name": c.name,
                "typical_impact": c.typical_impact,
                "crosswalk": sorted({m.scheme + ":" + m.code for m in c.crosswalk}),
            }
            for c in self.categories
        ]

    def payload(self, category_id: str | None = None) -> dict:
        """The taxonomy (or one category) as plain data, for JSON and YAML output."""
        if category_id:
            return self.get(category_id).model_dump()
        return {
            "version": self.version,
            "name": self.name,
            "categories": [category.model_dump() for category in self.categories],
        }

    def __contains__(self, category_id: object) -> bool:
        return category_id in self.ids


def _error_text(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ""
    for part in first.get("loc", ()):
        where += f"[{part}]" if isinstance(part, int) else (("." if where else "") + str(part))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "required key is missing"
    elif first.get("type") == "extra_forbidden":
        message = "unknown key (check the spelling)"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {message}{tail}" if where else f"{message}{tail}"


def load_taxonomy(path: Path | str) -> Taxonomy:
    """Read and check a taxonomy file; raise TaxonomyError saying where it is wrong."""
    return _load_cached(str(Path(path).resolve()))


@lru_cache(maxsize=8)
def _load_cached(resolved: str) -> Taxonomy:
    # Local import: the parsing module's loader is the one safe YAML reader of agentpm.
    from agentpm.safeload import UnreadableInput, load_yaml

    path = Path(resolved)
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise TaxonomyError(
            f"{path}: taxonomy file not found; pass --taxonomy or set AGENTPM_TAXONOMY"
        ) from None
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy ({exc.strerror})") from None
    try:
        data, _ = load_yaml(raw_bytes.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise TaxonomyError(f"{path}: not UTF-8 text; re-save the taxonomy as UTF-8") from None
    except UnreadableInput as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise TaxonomyError(f"{where}: {exc}") from None
    if not isinstance(data, dict):
        raise TaxonomyError(f"{path}: a taxonomy must be a mapping with 'version', 'name' and 'categories'")
    data = {**data, "sha256": hashlib.sha256(raw_bytes).hexdigest(), "path": str(path)}
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as exc:
        raise TaxonomyError(f"{path}: {_error_text(exc)}") from None


def category_markdown(category: Category) -> str:
    """One category with its guidance and crosswalk, as Markdown."""
    parts = [
        f"# {category.name} (`{category.id}`)",
        category.description,
        f"**Typical impact:** {category.typical_impact}",
        "## Common scenarios",
        *[f"- {s}" for s in category.scenarios],
        "## Prevention",
        *[f"- {s}" for s in category.prevention],
        "## Labelling notes",
        *[f"- {s}" for s in category.labelling_notes],
    ]
    if category.record:
        parts += ["## A post-mortem of this kind records", *[f"- {hint.hint}" for hint in category.record]]
    if category.crosswalk:
        parts += [
            "## Crosswalk",
            "| scheme | code | name | relation | note |",
            "|---|---|---|---|---|",
            *[
                f"| {m.scheme} | {m.code} | {m.name or ''} | {m.relation} | {m.note} |"
                for m in category.crosswalk
            ],
        ]
    return "\n\n".join(parts[:3]) + "\n\n" + "\n".join(parts[3:])

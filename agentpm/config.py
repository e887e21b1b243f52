"""Where the corpus, taxonomy, model and templates live.

Precedence, highest first: a command-line flag, an ``AGENTPM_<KEY>`` environment variable,
``agentpm.toml`` in the working folder (or ``[tool.agentpm]`` in its ``pyproject.toml``),
then the built-in default. Relative paths in a file are relative to that file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentpm.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

KEYS = ("corpus", "taxonomy", "model", "templates")
PACKAGE_DIR = Path(__file__).resolve().parent


def default_taxonomy_path() -> Path:
    """The taxonomy shipped with agentpm: inside the wheel, or in the source tree."""
    installed = PACKAGE_DIR / "_taxonomy" / "taxonomy.yaml"
    return installed if installed.exists() else PACKAGE_DIR.parent / "taxonomy" / "taxonomy.yaml"


def default_model_path() -> Path:
    return PACKAGE_DIR / "models" / "default"


DEFAULTS = {
    "corpus": lambda: Path("corpus"),
    "taxonomy": default_taxonomy_path,
    "model": default_model_path,
    "templates": lambda: None,
}


#: Tables of agentpm.toml that one command reads itself (not settings): [redact] (agentpm.exchange.redact).
COMMAND_TABLES = ("redact",)


@dataclass(frozen=True)
class Settings:
    corpus: Path
    taxonomy: Path
    model: Path
    templates: Path | None = None
    #: where each value came from: "flag", "env AGENTPM_X", a file path, or "default"
    origin: Mapping[str, str] = field(default_factory=dict)


def _read_file(folder: Path) -> tuple[dict[str, object], Path | None]:
    own = folder / "agentpm.toml"
    pyproject = folder / "pyproject.toml"
    for candidate, table in ((own, None), (pyproject, ("tool", "agentpm"))):
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{candidate}: not valid TOML ({exc}); fix the file or remove it") from None
        except OSError as exc:
            raise ConfigError(f"{candidate}: cannot read ({exc.strerror})") from None
        if table:
            for part in table:
                data = data.get(part, {}) if isinstance(data, dict) else {}
            if not data:
                continue
        if not isinstance(data, dict):
            # e.g. `[tool] agentpm = "corpus"`: a value where a table of settings belongs
            raise ConfigError(
                f'{candidate}: [tool.agentpm] must be a table of settings (corpus = "..."), '
                f"not {type(data).__name__} {data!r}"
            )
        return data, candidate
    return {}, None


def load_settings(
    overrides: Mapping[str, object | None] | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting once, in the documented order of precedence."""
    cwd = Path(".") if cwd is None else cwd  # "." keeps printed paths relative
    env = os.environ if env is None else env
    overrides = overrides or {}
    file_values, file_path = _read_file(cwd)
    where = (
        f"{file_path.name} [tool.agentpm]"
        if file_path and file_path.name == "pyproject.toml"
        else (file_path.name if file_path else "")
    )
    unknown = sorted(set(file_values) - set(KEYS) - set(COMMAND_TABLES))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}; known settings: {', '.join(KEYS)}")
    values: dict[str, Path | None] = {}
    origin: dict[str, str] = {}
    for key in KEYS:
        flag = overrides.get(key)
        env_value = env.get(f"AGENTPM_{key.upper()}")
        if flag is not None and str(flag) != "":
            values[key], origin[key] = Path(str(flag)), "flag"
        elif env_value:
            values[key], origin[key] = Path(env_value), f"env AGENTPM_{key.upper()}"
        elif key in file_values:
            raw = file_values[key]
            if not isinstance(raw, str) or not raw:
                raise ConfigError(f"{where}: {key} must be a path string, got {raw!r}")
            assert file_path is not None
            values[key], origin[key] = (file_path.parent / raw), str(file_path)
        else:
            values[key], origin[key] = DEFAULTS[key](), "default"
    return Settings(
        corpus=values["corpus"] or Path("corpus"),
        taxonomy=values["taxonomy"] or default_taxonomy_path(),
        model=values["model"] or default_model_path(),
        templates=values["templates"],
        origin=origin,
    )

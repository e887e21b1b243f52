"""The committed JSON Schema is current, and configuration precedence is as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from agentpm.config import load_settings
from agentpm.errors import ConfigError
from agentpm.records.incident import incident_json_schema
from agentpm.taxonomy import load_taxonomy


def test_committed_schema_matches_the_model():
    committed = json.loads((REPO / "taxonomy" / "incident.schema.json").read_text(encoding="utf-8"))
    ids = load_taxonomy(REPO / "taxonomy" / "taxonomy.yaml").ids
    assert committed == incident_json_schema(ids), (
        "run: agentpm schema -o taxonomy/incident.schema.json --force"
    )


def test_schema_describes_front_matter_fields():
    properties = incident_json_schema()["properties"]
    for field in (
        "id",
        "title",
        "date",
        "detected",
        "resolved",
        "severity",
        "status",
        "category",
        "secondary",
        "systems",
        "tools",
        "impact",
        "tags",
        "action_items",
        "prediction",
    ):
        assert field in properties
    assert incident_json_schema()["required"] == ["title"]


def test_precedence_flag_env_file_default(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.agentpm]\ncorpus = "from-pyproject"\nmodel = "m"\n')
    settings = load_settings(cwd=tmp_path, env={})
    assert settings.corpus == tmp_path / "from-pyproject" and settings.origin["corpus"].endswith(
        "pyproject.toml"
    )
    (tmp_path / "agentpm.toml").write_text('corpus = "from-file"\n')
    settings = load_settings(cwd=tmp_path, env={})
    assert settings.corpus == tmp_path / "from-file"  # agentpm.toml wins over pyproject
    assert settings.origin["model"] == "default"  # only one file is read
    settings = load_settings(cwd=tmp_path, env={"AGENTPM_CORPUS": "from-env"})
    assert settings.corpus == Path("from-env") and settings.origin["corpus"] == "env AGENTPM_CORPUS"
    settings = load_settings({"corpus": "from-flag"}, cwd=tmp_path, env={"AGENTPM_CORPUS": "from-env"})
    assert settings.corpus == Path("from-flag") and settings.origin["corpus"] == "flag"
    assert load_settings(cwd=tmp_path / "empty", env={}).corpus == Path("corpus")


def test_bad_config_is_a_clear_error(tmp_path):
    (tmp_path / "agentpm.toml").write_text('corpse = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'corpse'"):
        load_settings(cwd=tmp_path, env={})
    (tmp_path / "agentpm.toml").write_text("corpus = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cwd=tmp_path, env={})


def test_cli_uses_configured_corpus(cli, tmp_path):
    (tmp_path / "pm").mkdir()
    (tmp_path / "pm" / "a.md").write_text("---\ntitle: configured\n---\n")
    (tmp_path / "agentpm.toml").write_text('corpus = "pm"\n')
    result = cli("list", "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)[0]["title"] == "configured"
    result = cli("list", "--format", "json", cwd=tmp_path, env={"AGENTPM_CORPUS": str(tmp_path / "missing")})
    assert result.code == 2 and "does not exist" in result.stderr and "AGENTPM_CORPUS" in result.stderr
